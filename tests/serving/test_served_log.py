"""The served-value log: sampled lookups written asynchronously, in the contract's format,
by a real server, and replayed against the offline engine."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.errors import InputError, RegistryError
from featurestore.serving.lookup_answer import LookupAnswer
from featurestore.serving.served_log import (
    LOG_SAMPLE_RATE_ENV,
    SCHEMA,
    SERVED_LOG_ENV,
    ServedLog,
    list_served_segments,
    read_served_log,
    sample_rate_from_environment,
    served_log_dir,
)
from featurestore.serving.server import create_app
from tests.projects import write_demo_project
from tests.serving.conftest import DEMO_END, ServerProcess, demo_text

AT = (DEMO_END + timedelta(hours=5)).isoformat()
FEATURES = ["user_txn:amount_sum_7d", "user_txn:txn_count_1h", "user_txn:amount_std_30d",
            "user_txn:last_category", "user_txn:amount_max_1d"]
SEGMENT_NAME = re.compile(r"served-\d{8}T\d{6}-(\d+)-\d+\.parquet")


@pytest.fixture(autouse=True)
def _log_beside_the_offline_file(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (SERVED_LOG_ENV, LOG_SAMPLE_RATE_ENV):
        monkeypatch.delenv(name, raising=False)


def log_dir(store: FeatureStore) -> Path:
    return served_log_dir(store.offline_path)


def lookup(client: TestClient, users: list[int], **body: object) -> dict[str, list]:
    body = {"features": FEATURES, "at": AT, **body}
    answer = client.post("/online-features", json={"entities": {"user_id": users}, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()["features"]


def logging_client(store: FeatureStore) -> TestClient:
    """The real app, logging every lookup; its lifespan runs while the client is open
    (`with`), and its end writes what was logged."""
    return TestClient(create_app(store, log_sample_rate=1.0))


def test_logged_lookups_follow_the_format_and_replay_exactly(demo_store: FeatureStore) -> None:
    with logging_client(demo_store) as client:
        before = lookup(client, [1, 2, 3])
        lookup(client, [4])
        answer = client.post("/online-features", json={
            "service": "fraud_v1", "entities": {"user_id": [5, 6]},
            "request": {"amount_now": [10.0, None]}})
        assert answer.status_code == 200
        # Pushed events after the end reach the states the next lookups read.
        pushed = client.post("/push", json={"source": "transactions", "rows": [
            {"user_id": 1, "event_ts": (DEMO_END + timedelta(hours=2)).isoformat(),
             "amount": 123.25, "merchant_category": "a-new-category"}]})
        assert pushed.status_code == 200 and pushed.json()["online"] is True
        after = lookup(client, [1, 2])
    assert after["amount_sum_7d"][0] == before["amount_sum_7d"][0] + 123.25
    assert after["last_category"][0] == "a-new-category"

    segments = list_served_segments(log_dir(demo_store))
    assert segments and all(SEGMENT_NAME.fullmatch(path.name) for path in segments)
    table = read_served_log(log_dir(demo_store))
    assert pq.read_schema(segments[0]).names == SCHEMA.names
    assert table.num_rows == 3 + 1 + 2 + 2
    first = table.slice(0, 1).to_pylist()[0]
    assert orjson.loads(first["request"]) == {"features": FEATURES}
    assert orjson.loads(first["entity"]) == {"user_id": 1}
    assert orjson.loads(first["values"]) == {name: values[0] for name, values in before.items()
                                             if name != "user_id"}
    assert first["registry_version"] == "1"
    version = demo_store.online_store().current_version()
    assert orjson.loads(first["state_version"]) == {"user_txn": version}
    assert first["at_us"] == int((DEMO_END + timedelta(hours=5)).timestamp() * 1_000_000)
    assert abs(first["logged_at_us"] / 1e6 - time.time()) < 120
    assert first["request_fields"] is None  # the lookup sent none
    service_rows = table.slice(4, 2).to_pylist()
    assert orjson.loads(service_rows[0]["request"]) == {
        "service": "fraud_v1", "transformed": False, "fit": None}
    assert [orjson.loads(row["entity"]) for row in service_rows] == [{"user_id": 5},
                                                                     {"user_id": 6}]
    assert [orjson.loads(row["request_fields"]) for row in service_rows] == [
        {"amount_now": 10.0}, {"amount_now": None}]

    report = demo_store.replay()
    assert report.ok, report.render()
    assert report.rows == 8
    # Five features for 6 rows, the service's four (amount_z from the logged request
    # field) for 2.
    assert report.checked == 5 * 6 + 4 * 2
    assert report.not_replayable == {}


def test_each_row_logs_the_request_fields_it_was_asked_with(tmp_path: Path) -> None:
    log = ServedLog(tmp_path / "log", 1.0)
    answer = LookupAnswer({"user_id": [1, 2], "amount_z": [0.5, None]}, at_us=7,
                          state_version="v", views=("user_txn",))
    # "other" is not read by the selection (the lookup did not check it): with one value
    # per row it is logged; "broken" has not that shape and is left out.
    log.offer({"service": "fraud_v1", "entities": {"user_id": [1, 2]},
               "request": {"amount_now": [12.5, None], "other": ["a", "b"], "broken": [1]}},
              answer, 1)
    log.offer({"features": ["txn_context:log_amount_now"],
               "request": {"amount_now": [3]}},
              LookupAnswer({"log_amount_now": [1.38]}, at_us=7), 1)
    log.flush()
    rows = read_served_log(tmp_path / "log").to_pylist()
    assert [orjson.loads(row["entity"]) for row in rows] == [{"user_id": 1}, {"user_id": 2}, {}]
    assert [orjson.loads(row["request_fields"]) for row in rows] == [
        {"amount_now": 12.5, "other": "a"}, {"amount_now": None, "other": "b"},
        {"amount_now": 3}]
    assert orjson.loads(rows[2]["values"]) == {"log_amount_now": 1.38}


def test_segments_written_before_request_fields_were_logged_still_read(
        tmp_path: Path) -> None:
    log = ServedLog(tmp_path, 1.0)
    log.offer({"features": ["user_txn:amount_sum_7d"], "entities": {"user_id": [0]}},
              answer_of(1), 1)
    path = log.flush()
    assert path is not None
    older = pq.read_table(path).drop_columns(["request_fields"])
    pq.write_table(older, path)
    table = read_served_log(tmp_path)
    assert table.schema == SCHEMA
    assert table.column("request_fields").to_pylist() == [None]
    assert orjson.loads(table.column("entity")[0].as_py()) == {"user_id": 0}


def test_a_corrupted_online_state_is_reported_value_by_value(demo_store: FeatureStore) -> None:
    online = demo_store.online_store()
    with logging_client(demo_store) as client:
        true_values = lookup(client, [1, 2])
        # Give user 1 the state of user 2: the skew replay exists to catch.
        states = online.read([("user_txn", (1,)), ("user_txn", (2,))]).states
        online.update("user_txn", (1,), lambda _: states[1])
        served = lookup(client, [1])
    differing = {name for name in FEATURES
                 if true_values[name.split(":")[1]][0] != served[name.split(":")[1]][0]}
    assert differing  # users 1 and 2 differ somewhere

    report = demo_store.replay()
    assert not report.ok
    assert report.mismatch_count == len(differing)
    version = online.current_version()
    assert [(m.column, m.served, m.expected, m.entity, m.state_version)
            for m in report.mismatches] == [
        (name.split(":")[1], served[name.split(":")[1]][0], true_values[name.split(":")[1]][0],
         {"user_id": 1}, version)
        for name in FEATURES if name in differing]
    assert report.checked == 3 * len(FEATURES)
    result = CliRunner().invoke(main, ["replay", "--registry", str(demo_store.registry_path)])
    assert result.exit_code == 1, (result.output, result.stderr, result.exception)
    assert f"{len(differing)} of {report.checked} values differ" in result.stdout


def test_sample_rate_zero_logs_nothing(demo_store: FeatureStore) -> None:
    for rate in (None, 0.0):  # the registry's default, and an explicit 0
        with TestClient(create_app(demo_store, log_sample_rate=rate)) as client:
            lookup(client, [1, 2])
    assert not log_dir(demo_store).exists()
    report = demo_store.replay()
    assert report.ok and report.rows == 0
    assert report.render().startswith("no served values logged")


def test_half_the_lookups_are_logged_at_rate_one_half(demo_store: FeatureStore) -> None:
    with TestClient(create_app(demo_store, log_sample_rate=0.5)) as client:
        for user in range(200):
            lookup(client, [user % 50 + 1])
    rows = read_served_log(log_dir(demo_store)).num_rows
    assert 60 <= rows <= 140  # 100 expected; six standard deviations either side


def test_the_registry_sets_the_rate_and_the_option_wins(tmp_path: Path) -> None:
    text = demo_text("local").replace("services:", "serving:\n  log_sample_rate: 1\n\nservices:")
    write_demo_project(tmp_path, text, events=500, users=10, days=30)
    store = FeatureStore(tmp_path)
    store.apply()
    store.materialize(end=DEMO_END)
    assert store.registry.serving.log_sample_rate == 1.0
    with TestClient(create_app(store, log_sample_rate=0.0)) as client:
        lookup(client, [1])
    assert not log_dir(store).exists()
    with TestClient(create_app(store)) as client:
        lookup(client, [1, 2])
    assert read_served_log(log_dir(store)).num_rows == 2
    store.close()


def answer_of(rows: int) -> LookupAnswer:
    users = list(range(rows))
    return LookupAnswer({"user_id": users, "amount_sum_7d": [1.5] * rows}, at_us=1,
                        state_version="m1-abc", views=("user_txn",))


def test_a_full_queue_drops_and_counts_without_waiting(tmp_path: Path) -> None:
    log = ServedLog(tmp_path / "log", 1.0, max_queue=5)  # no writer thread: nothing drains
    request = {"features": ["user_txn:amount_sum_7d"], "entities": {"user_id": [0, 1]}}
    started = time.perf_counter()
    for _ in range(1000):
        log.offer(request, answer_of(2), 1)
    assert time.perf_counter() - started < 0.5  # a thousand offers never wait on anything
    assert (log.logged, log.dropped) == (5, 995)
    segment = log.flush()
    assert segment is not None and segment.parent == tmp_path / "log"
    assert pq.read_table(segment).num_rows == 10
    assert log.flush() is None  # nothing left


def test_the_writer_flushes_by_time_and_by_rows(tmp_path: Path) -> None:
    request = {"features": ["user_txn:amount_sum_7d"], "entities": {"user_id": [0]}}
    by_time = ServedLog(tmp_path / "time", 1.0, flush_seconds=0.2)
    by_time.start()
    by_time.offer(request, answer_of(1), 1)
    deadline = time.monotonic() + 5
    while not list_served_segments(tmp_path / "time") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(list_served_segments(tmp_path / "time")) == 1
    by_time.stop()
    by_rows = ServedLog(tmp_path / "rows", 1.0, flush_rows=10, flush_seconds=3600)
    by_rows.start()
    for _ in range(12):
        by_rows.offer(request, answer_of(1), 1)
    deadline = time.monotonic() + 5
    while not list_served_segments(tmp_path / "rows") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pq.read_table(list_served_segments(tmp_path / "rows")[0]).num_rows == 12
    by_rows.stop()


def test_a_fixed_seed_samples_the_same_lookups(tmp_path: Path) -> None:
    request = {"features": ["user_txn:amount_sum_7d"], "entities": {"user_id": [0]}}
    counts = []
    for run in range(2):
        log = ServedLog(tmp_path / str(run), 0.5, seed=7)
        for _ in range(1000):
            log.offer(request, answer_of(1), 1)
        counts.append(log.logged)
    assert counts[0] == counts[1]
    assert 430 <= counts[0] <= 570


@pytest.mark.parametrize("rate", ["-0.1", "1.5", "many"])
def test_bad_sample_rates_are_clear_errors(rate: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(main, ["serve", "--registry", str(tmp_path),
                                       "--log-sample-rate", rate])
    assert result.exit_code == 2
    assert "Invalid value for '--log-sample-rate'" in result.output
    monkeypatch.setenv(LOG_SAMPLE_RATE_ENV, rate)
    with pytest.raises(InputError, match=f"{LOG_SAMPLE_RATE_ENV}: expected a number from 0 "
                                         "to 1"):
        sample_rate_from_environment()


def test_a_bad_registry_rate_is_located(tmp_path: Path) -> None:
    text = demo_text("local").replace("services:", "serving:\n  log_sample_rate: 2\n\nservices:")
    write_demo_project(tmp_path, text, events=100, users=5, days=30)
    with pytest.raises(RegistryError) as raised:
        FeatureStore(tmp_path)
    problem = "\n".join(raised.value.problems)
    assert "serving.log_sample_rate" in problem
    assert "less than or equal to 1" in problem


def test_worker_processes_write_their_own_segments(demo_store: FeatureStore,
                                                   tmp_path: Path) -> None:
    server = ServerProcess(demo_store.registry_path, tmp_path / "server.log",
                           ["--workers", "2", "--log-sample-rate", "1"])
    server.start()
    supervisor = str(server.process.pid)  # type: ignore[union-attr]
    try:
        for user in range(1, 41):
            answer = httpx.post(f"{server.url}/online-features", timeout=10, json={
                "features": FEATURES, "entities": {"user_id": [user]}, "at": AT})
            assert answer.status_code == 200, answer.text
    finally:
        server.stop()  # SIGTERM: each worker writes what it logged as it shuts down
    segments = list_served_segments(log_dir(demo_store))
    pids = {SEGMENT_NAME.fullmatch(path.name).group(1) for path in segments}  # type: ignore[union-attr]
    assert pids and supervisor not in pids  # written by the worker processes themselves
    assert read_served_log(log_dir(demo_store)).num_rows == 40
    report = demo_store.replay()
    assert report.ok and report.checked == 40 * len(FEATURES), report.render()


def test_a_segment_that_cannot_be_written_is_counted_not_raised(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log's folder should be")
    log = ServedLog(blocked, 1.0)
    log.start()
    log.offer({"features": ["user_txn:amount_sum_7d"], "entities": {"user_id": [0]}},
              answer_of(1), 1)
    log.stop()  # a server's shutdown goes on
    assert (log.logged, log.failed, log.written) == (1, 1, 0)


def test_metrics_count_the_lookups_logged_and_dropped(demo_store: FeatureStore,
                                                       tmp_path: Path) -> None:
    with TestClient(create_app(demo_store, log_sample_rate=1.0)) as client:
        for user in (1, 2, 3):
            lookup(client, [user])
        text = client.get("/metrics").text
    assert 'featurestore_served_log_lookups_total{outcome="logged"} 3.0' in text
    # Past a full queue, each dropped lookup is counted as the server counts it.
    counted: list[tuple[str, int]] = []
    log = ServedLog(tmp_path / "log", 1.0, max_queue=2)  # no writer thread: nothing drains
    log.counted = lambda outcome, lookups: counted.append((outcome, lookups))
    for _ in range(5):
        log.offer({"features": ["user_txn:amount_sum_7d"]}, answer_of(1), 1)
    assert counted == [("logged", 1)] * 2 + [("dropped", 1)] * 3
