"""Replay: logged served values recomputed by the offline engine over the events of the
state that answered (pushes included), compared exactly, and what cannot be replayed
counted with its reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.offline.publications import PUBLICATIONS_TABLE
from featurestore.offline.replay import REPLACED, REQUEST_FIELDS, _identical
from featurestore.offline.replay_report import MISMATCHES_KEPT
from featurestore.serving.served_log import (
    LOG_SAMPLE_RATE_ENV,
    SERVED_LOG_ENV,
    list_served_segments,
    read_served_log,
    served_log_dir,
)
from featurestore.serving.server import create_app
from tests.conftest import OnlineBackend
from tests.fits.helpers import training_spine
from tests.serving.conftest import DEMO_END, make_demo_store

AT = (DEMO_END + timedelta(hours=6)).isoformat()
FEATURES = ["user_txn:amount_sum_7d", "user_txn:amount_mean_30d", "user_txn:amount_std_30d",
            "user_txn:txn_count_1h", "user_txn:last_category", "user_txn:amount_max_1d"]


@pytest.fixture
def store(online_backend: OnlineBackend, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[FeatureStore]:
    """A materialized demo project on each backend; the stores where its registry says."""
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY",
                 SERVED_LOG_ENV, LOG_SAMPLE_RATE_ENV):
        monkeypatch.delenv(name, raising=False)
    demo = make_demo_store(tmp_path / "demo", online_backend.setting)
    yield demo
    demo.close()


def serve_lookups(store: FeatureStore, users: list[int], at: str = AT,
                  features: list[str] = FEATURES) -> dict[str, list]:
    """Lookups through the real app, each logged; written when the app shuts down."""
    with TestClient(create_app(store, log_sample_rate=1.0)) as client:
        answer = client.post("/online-features", json={
            "features": features, "entities": {"user_id": users}, "at": at})
    assert answer.status_code == 200, answer.text
    return answer.json()["features"]


def push(store: FeatureStore, user: int, when: timedelta, amount: float) -> None:
    store.push("transactions", [{"user_id": user, "event_ts": DEMO_END + when,
                                 "amount": amount, "merchant_category": "pushed"}])


def test_pushes_folded_at_publication_and_after_it_replay_exactly(store: FeatureStore) -> None:
    # Pushed after the end, then published again by a materialization at the same end:
    # the publication folds them in from the run's pinned segments.
    push(store, 1, timedelta(hours=1), 40.5)
    store.materialize(end=DEMO_END)
    # Pushed after that publication: folded into the published state by the push.
    push(store, 2, timedelta(hours=2), 7.25)
    push(store, 1, timedelta(hours=3), 1.125)
    served = serve_lookups(store, [1, 2, 3])
    assert served["last_category"][:2] == ["pushed", "pushed"]
    # A push after the lookup was logged is not in what it read: still no mismatch.
    push(store, 3, timedelta(hours=4), 99.0)
    report = store.replay()
    assert report.ok, report.render()
    assert (report.rows, report.checked, report.not_replayable) == (3, 3 * len(FEATURES), {})


LIST_AND_SKETCH_FEATURES = [
    f"user_txn:{name}" for name in (
        "recent_amounts", "first_categories_30d", "top_categories_30d", "amount_decayed_1d",
        "txn_decayed_1h", "distinct_categories_30d", "amount_quantiles_30d")]


def test_list_decayed_and_sketch_features_replay_exactly(store: FeatureStore) -> None:
    push(store, 2, timedelta(hours=2), 7.25)
    served = serve_lookups(store, [1, 2, 5_000], features=LIST_AND_SKETCH_FEATURES)
    assert served["recent_amounts"][1][0] == 7.25 and served["recent_amounts"][2] is None
    assert served["top_categories_30d"][2] is None and served["distinct_categories_30d"][2] == 0
    report = store.replay()
    assert report.ok, report.render()
    assert report.checked == 3 * len(LIST_AND_SKETCH_FEATURES)


def test_a_late_push_before_the_end_replays_exactly(store: FeatureStore) -> None:
    push(store, 4, -timedelta(days=2), 12.0)  # an event older than the end, pushed now
    serve_lookups(store, [4, 5])
    report = store.replay()
    assert report.ok, report.render()
    assert report.checked == 2 * len(FEATURES)


def test_values_of_a_replaced_state_replay_from_its_publication_record(
        store: FeatureStore) -> None:
    push(store, 1, timedelta(minutes=30), 8.5)  # folded into the first state by the push
    first = serve_lookups(store, [1, 2])
    assert first["last_category"][0] == "pushed"
    # A new state version whose end passes the pushed event: it is a materialized event now.
    store.materialize(end=DEMO_END + timedelta(hours=1))
    push(store, 2, timedelta(hours=2), 3.0)
    later_at = (DEMO_END + timedelta(hours=7)).isoformat()
    serve_lookups(store, [1, 2], at=later_at)
    report = store.replay()
    assert report.ok, report.render()
    assert (report.rows, report.checked, report.not_replayable) == (4, 4 * len(FEATURES), {})
    log = read_served_log(served_log_dir(store.offline_path))
    versions = {orjson.loads(text)["user_txn"] for text in log.column("state_version").to_pylist()}
    assert len(versions) == 2  # both states were replayed


def test_a_replaced_state_without_a_record_is_not_replayable(store: FeatureStore) -> None:
    serve_lookups(store, [1, 2])
    # As in an offline file from before publications were recorded.
    store.offline_database().run(lambda con: con.execute(
        f"DELETE FROM {PUBLICATIONS_TABLE}"))
    store.materialize(end=DEMO_END + timedelta(hours=1))
    serve_lookups(store, [3], at=(DEMO_END + timedelta(hours=7)).isoformat())
    report = store.replay()
    assert report.ok
    assert report.checked == len(FEATURES)
    assert report.not_replayable == {REPLACED: 2 * len(FEATURES)}
    assert f"not replayable: {2 * len(FEATURES)} values: {REPLACED}" in report.render()


def serve_requests(store: FeatureStore, bodies: list[dict]) -> list[dict[str, list]]:
    """Lookups with request fields through the real app, each logged."""
    answers = []
    with TestClient(create_app(store, log_sample_rate=1.0)) as client:
        for body in bodies:
            answer = client.post("/online-features", json={"at": AT, **body})
            assert answer.status_code == 200, answer.text
            answers.append(answer.json()["features"])
    return answers


SERVICE_LOOKUP = {"service": "fraud_v1", "entities": {"user_id": [1, 2, 3, 5_000]},
                  "request": {"amount_now": [5.0, None, 980.0, 12.5]}}


def test_request_features_replay_from_the_logged_request_fields(store: FeatureStore) -> None:
    served = serve_requests(store, [
        SERVICE_LOOKUP,
        # Request features alone (no entity), one of them reading a pushed-into state.
        {"features": ["txn_context:log_amount_now"], "request": {"amount_now": [1.5, 0]}},
        {"features": ["txn_context:amount_z", "txn_context:log_amount_now"],
         "entities": {"user_id": [2]}, "request": {"amount_now": [-3]}},
    ])
    assert served[0]["amount_z"][0] is not None and served[0]["amount_z"][1] is None
    report = store.replay()
    assert report.ok, report.render()
    # fraud_v1's four features (amount_z among them) for 4 rows, then 2 + 2 request values.
    assert (report.rows, report.checked, report.not_replayable) == (7, 4 * 4 + 2 + 2, {})


def test_rows_logged_without_request_fields_are_not_replayable(store: FeatureStore) -> None:
    serve_requests(store, [SERVICE_LOOKUP])
    # As segments written before the log held request fields.
    for path in list_served_segments(served_log_dir(store.offline_path)):
        pq.write_table(pq.read_table(path).drop_columns(["request_fields"]), path)
    report = store.replay()
    assert report.ok, report.render()
    assert report.checked == 4 * 3  # amount_sum_7d, txn_count_1h, last_category
    assert report.not_replayable == {REQUEST_FIELDS: 4}


def test_a_corrupted_state_makes_the_request_feature_reading_it_a_mismatch(
        store: FeatureStore) -> None:
    online = store.online_store()
    states = online.read([("user_txn", (1,)), ("user_txn", (2,))]).states
    online.update("user_txn", (1,), lambda _: states[1])  # user 1 gets user 2's state
    serve_requests(store, [{"features": ["txn_context:amount_z", "txn_context:log_amount_now"],
                            "entities": {"user_id": [1, 2]},
                            "request": {"amount_now": [50.0, 50.0]}}])
    report = store.replay()
    # amount_z reads user 1's (wrong) mean and deviation; log_amount_now reads no state.
    assert report.checked == 4
    assert [(mismatch.entity, mismatch.column) for mismatch in report.mismatches] == [
        ({"user_id": 1}, "amount_z")]
    mismatch = report.mismatches[0]
    assert mismatch.served != mismatch.expected
    assert mismatch.state_version == online.current_version()


def test_transformed_columns_reading_request_features_replay(store: FeatureStore) -> None:
    store.fit("fraud_v1", training_spine(store))
    [served] = serve_requests(store, [{**SERVICE_LOOKUP, "transformed": True}])
    assert {"amount_z", "amount_z_filled"} <= set(served)
    report = store.replay()
    assert report.ok, report.render()
    assert report.not_replayable == {}
    # Four features and every transformed column (one-hot columns included) per row.
    assert report.checked == 4 * (len(served) - 1)


def test_the_command_reports_as_text_and_json_and_filters_by_time(
        store: FeatureStore) -> None:
    registry = str(store.registry_path)
    runner = CliRunner()
    empty = runner.invoke(main, ["replay", "--registry", registry])
    assert empty.exit_code == 0, empty.output
    assert empty.stdout.startswith("no served values logged")
    serve_lookups(store, [1, 2, 3])
    passed = runner.invoke(main, ["replay", "--registry", registry])
    assert passed.exit_code == 0, passed.output
    assert passed.stdout == (f"3 logged rows, {3 * len(FEATURES)} values recomputed offline\n"
                             f"served == offline for all {3 * len(FEATURES)} values\n")
    # Every user gets another's state: more mismatches than a report keeps in full.
    online = store.online_store()
    states = online.read([("user_txn", (user,)) for user in range(1, 21)]).states
    for user in range(1, 21):
        online.update("user_txn", (user,), lambda _, user=user: states[user % 20])
    served = serve_lookups(store, list(range(1, 21)))
    assert served
    failed = runner.invoke(main, ["replay", "--registry", registry, "--json"])
    assert failed.exit_code == 1
    report = orjson.loads(failed.stdout)
    assert report["rows"] == 23 and report["checked"] == 23 * len(FEATURES)
    assert report["mismatches"] > MISMATCHES_KEPT
    assert len(report["first_mismatches"]) == MISMATCHES_KEPT
    first = report["first_mismatches"][0]
    assert set(first) == {"entity", "at", "column", "served", "expected", "state_version"}
    assert first["state_version"] == online.current_version()
    assert first["at"] == "2024-01-31T06:00:00+00:00"
    text = runner.invoke(main, ["replay", "--registry", registry])
    assert f"... and {report['mismatches'] - MISMATCHES_KEPT} more" in text.stdout
    later = runner.invoke(main, ["replay", "--registry", registry, "--since", "2999-01-01"])
    assert later.exit_code == 0 and later.stdout.startswith("no served values logged")
    bad = runner.invoke(main, ["replay", "--registry", registry, "--since", "yesterday"])
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: 'since': expected an ISO-8601 timestamp")


def test_comparison_is_exact() -> None:
    assert _identical(None, None)
    assert _identical(0.1 + 0.2, 0.30000000000000004)
    assert not _identical(0.1 + 0.2, 0.3)
    assert not _identical(0.0, -0.0)  # bit for bit
    assert not _identical(1, 1.0)
    assert not _identical(None, 0)
    assert _identical("grocery", "grocery")
