"""The check history: every completed verify and replay is recorded, a failed one is not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.errors import InputError
from featurestore.offline.check_history import (
    CheckRecord,
    read_checks,
    record_check,
    replay_summary,
    verify_summary,
)
from featurestore.serving.errors import NotMaterializedError, RequestError
from featurestore.serving.served_log import LOG_SAMPLE_RATE_ENV, SERVED_LOG_ENV
from featurestore.serving.server import create_app
from tests.serving.conftest import DEMO_END, DEMO_USERS, make_demo_store

AT = (DEMO_END + timedelta(hours=5)).isoformat()
FEATURES = ["user_txn:amount_sum_7d", "user_txn:txn_count_1h", "user_txn:last_category"]


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry file alone decides where the stores and the served-value log are."""
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY",
                 SERVED_LOG_ENV, LOG_SAMPLE_RATE_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    """A materialized demo project on the local online store."""
    return make_demo_store(tmp_path / "demo", "local")


def checks(store: FeatureStore, kind: str | None = None,
           limit: int | None = None) -> list[CheckRecord]:
    return store.offline_database().run(lambda con: read_checks(con, kind, limit),
                                        read_only=True)


def corrupt_user_1(store: FeatureStore) -> None:
    """Give user 1 the online state of user 2: the skew both checks exist to catch."""
    online = store.online_store()
    states = online.read([("user_txn", (1,)), ("user_txn", (2,))]).states
    online.update("user_txn", (1,), lambda _: states[1])


def test_a_passing_verify_is_recorded_with_its_summary(store: FeatureStore) -> None:
    assert checks(store) == []  # no table yet: nothing, no error
    started = datetime.now(UTC)
    report = store.verify(entities=10)
    finished = datetime.now(UTC)
    assert report.ok, report.render()
    [record] = checks(store)
    assert (record.kind, record.passed) == ("verify", True)
    assert started <= record.run_at <= finished
    assert record.summary == verify_summary(report)
    assert record.summary == (f"online == offline for all {report.values:,} values "
                              "(10 entities in 1 view)")
    assert record.details["values"] == report.values > 0
    assert record.details["entities"] == {"user_txn": 10}
    assert record.details["registry_version"] == 1
    assert record.details["mismatches"] == 0 and record.details["ok"] is True
    assert record.to_dict()["run_at"] == record.run_at.isoformat()


def test_a_failing_verify_is_recorded_as_failed(store: FeatureStore) -> None:
    corrupt_user_1(store)
    report = store.verify(entities=DEMO_USERS)
    assert not report.ok
    [record] = checks(store)
    assert not record.passed
    assert record.summary.startswith(
        f"{len(report.mismatches):,} of {report.values:,} values differ")
    assert record.details["mismatches"] == len(report.mismatches)
    assert {tuple(m["entity"]) for m in record.details["first_mismatches"]} == {(1,)}


def test_a_verify_that_raises_records_nothing(store: FeatureStore, tmp_path: Path) -> None:
    store.verify(entities=5)
    recorded = checks(store)
    with pytest.raises(RequestError, match="before the materialization end"):
        store.verify(at=[DEMO_END - timedelta(seconds=1)])
    assert checks(store) == recorded
    unmaterialized = make_demo_store(tmp_path / "bare", "local", materialize=False)
    with pytest.raises(NotMaterializedError):
        unmaterialized.verify()
    assert checks(unmaterialized) == []


def test_replays_are_recorded_with_the_report(store: FeatureStore) -> None:
    empty = store.replay()  # nothing logged yet: a check of nothing, which passes
    with TestClient(create_app(store, log_sample_rate=1.0)) as client:
        answer = client.post("/online-features", json={
            "features": FEATURES, "entities": {"user_id": [1, 2, 3]}, "at": AT})
        assert answer.status_code == 200, answer.text
    logged = store.replay()
    corrupt_user_1(store)
    with TestClient(create_app(store, log_sample_rate=1.0)) as client:
        answer = client.post("/online-features", json={
            "features": FEATURES, "entities": {"user_id": [1]}, "at": AT})
        assert answer.status_code == 200, answer.text
    skewed = store.replay()
    assert empty.ok and logged.ok and not skewed.ok

    newest, middle, oldest = checks(store, kind="replay")
    assert [r.kind for r in (newest, middle, oldest)] == ["replay"] * 3
    assert (oldest.passed, oldest.summary) == (True, "no served values logged")
    assert (middle.passed, middle.summary) == (
        True, f"served == offline for all {logged.checked:,} values (3 logged rows)")
    assert middle.details == logged.to_dict()
    assert not newest.passed
    assert newest.summary == replay_summary(skewed)
    assert newest.summary.startswith(f"{skewed.mismatch_count:,} of {skewed.checked:,} "
                                     "values differ from the offline engine")
    assert newest.details == skewed.to_dict()
    assert checks(store, kind="verify") == []
    assert checks(store, limit=1) == [newest]


def test_recorded_directly_and_read_newest_first(store: FeatureStore) -> None:
    context = store.context
    first = datetime(2024, 3, 1, tzinfo=UTC)
    record_check(context, "replay", False, "2 of 9 values differ", {"mismatches": 2},
                 run_at=first)
    record_check(context, "verify", True, "fine", {"values": 9},
                 run_at=first + timedelta(hours=1))
    assert [(r.kind, r.passed, r.summary, r.details, r.run_at) for r in checks(store)] == [
        ("verify", True, "fine", {"values": 9}, first + timedelta(hours=1)),
        ("replay", False, "2 of 9 values differ", {"mismatches": 2}, first)]
    with pytest.raises(InputError, match="unknown check kind 'audit'"):
        record_check(context, "audit", True, "x", {})
    with pytest.raises(InputError, match="unknown check kind 'audit'"):
        checks(store, kind="audit")
    with pytest.raises(InputError, match="limit must be 0 or more"):
        checks(store, limit=-1)
    assert len(checks(store)) == 2
