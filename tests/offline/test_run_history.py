"""The materialization history: one row per view per run, and nothing from a failed run."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.errors import InputError, SourceError
from featurestore.offline.materialize import MaterializeResult
from featurestore.offline.run_history import (
    HISTORY_TABLE,
    MaterializationRecord,
    read_run_history,
)
from featurestore.times import to_micros
from tests.projects import write_demo_project
from tests.serving.conftest import DEMO_END, demo_text, make_demo_store

MIDDLE = DEMO_END - timedelta(days=10)
# A second view on a second source, after user_txn: a run can record user_txn's row and
# then fail on this one.
AMOUNTS_SOURCE = """  amounts:
    path: data/amounts.parquet
    timestamp: event_ts
"""
AMOUNTS_VIEW = """  user_amounts:
    source: amounts
    entity: user
    features:
      amount_total_1d: {agg: sum, expr: amount, window: 1d}
"""


@pytest.fixture(autouse=True)
def _no_store_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY"):
        monkeypatch.delenv(name, raising=False)


def history(store: FeatureStore, view: str | None = None,
            limit: int | None = None) -> list[MaterializationRecord]:
    return store.offline_database().run(lambda con: read_run_history(con, view, limit),
                                        read_only=True)


def two_view_store(directory: Path) -> FeatureStore:
    """The demo project with a second view, `user_amounts`, on a copy of the events."""
    text = demo_text("local").replace("sources:\n", "sources:\n" + AMOUNTS_SOURCE, 1)
    text = text.replace("request_views:\n", AMOUNTS_VIEW + "request_views:\n", 1)
    write_demo_project(directory, text, events=1_500, users=30, days=30)
    shutil.copy(directory / "data" / "transactions.parquet", directory / "data" / "amounts.parquet")
    store = FeatureStore(directory)
    store.apply()
    return store


def assert_matches(record: MaterializationRecord, result: MaterializeResult,
                   started: datetime, finished: datetime) -> None:
    """A row holds what the run reported for its view."""
    run = next(run for run in result.views if run.view == record.view)
    assert (record.end_us, record.start_us, record.incremental, record.rebuild) == (
        result.end_us, run.start_us, run.incremental, run.rebuild)
    assert (record.events, record.entities, record.recomputed) == (
        run.events, run.entities, run.recomputed)
    assert record.registry_version == result.registry_version
    assert started <= record.run_at <= finished
    assert 0 < record.duration_s < (finished - started).total_seconds()


def test_each_run_adds_a_row_per_view_newest_first(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local", materialize=False)
    assert history(store) == []  # no table yet: nothing, no error
    started = datetime.now(UTC)
    full = store.materialize(end=MIDDLE)
    between = datetime.now(UTC)
    incremental = store.materialize(end=DEMO_END)
    finished = datetime.now(UTC)

    second, first = history(store)
    assert (first.view, second.view) == ("user_txn", "user_txn")
    assert (first.incremental, first.start_us, first.rebuild) == (
        False, None, "first materialization")
    assert (second.incremental, second.start_us) == (True, to_micros(MIDDLE))
    assert (first.end_us, second.end_us) == (to_micros(MIDDLE), to_micros(DEMO_END))
    assert first.events + second.events == 3_000  # every event folded once
    assert_matches(first, full, started, between)
    assert_matches(second, incremental, between, finished)
    assert first.run_at < second.run_at
    assert history(store, limit=1) == [second]
    assert history(store, view="no_such_view") == []
    as_json = second.to_dict()
    assert as_json["end"] == DEMO_END.isoformat()
    assert as_json["start"] == MIDDLE.isoformat()
    assert as_json["run_at"] == second.run_at.isoformat()


def test_a_refused_run_records_nothing(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    before = history(store)
    assert len(before) == 1
    with pytest.raises(InputError, match="before the last materialization"):
        store.materialize(end=MIDDLE)
    assert history(store) == before
    rebuilt = store.materialize(end=MIDDLE, full=True)
    newest = history(store)[0]
    assert (newest.incremental, newest.rebuild) == (False, "requested (--full)")
    assert newest.events == rebuilt.views[0].events


def test_a_run_failing_after_a_view_was_recorded_rolls_its_row_back(tmp_path: Path) -> None:
    store = two_view_store(tmp_path / "two")
    result = store.materialize(end=MIDDLE)
    rows = history(store)
    assert [row.view for row in rows] == ["user_amounts", "user_txn"]  # same run_at
    assert rows[0].run_at == rows[1].run_at
    assert [row.events for row in rows] == [run.events for run in reversed(result.views)]
    # The second view's source lost the column it sums: user_txn is folded and
    # recorded, then user_amounts fails and the run rolls back.
    path = tmp_path / "two" / "data" / "amounts.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["amount"]), path)
    with pytest.raises(SourceError, match="source 'amounts' has no column 'amount'"):
        store.materialize(end=DEMO_END)
    assert history(store) == rows
    assert history(store, view="user_txn", limit=5) == [rows[1]]


def test_the_table_has_the_documented_columns(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    with duckdb.connect(str(store.offline_path), read_only=True) as con:
        columns = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                              "WHERE table_name = ? ORDER BY ordinal_position",
                              [HISTORY_TABLE]).fetchall()
    assert columns == [
        ("run_at", "TIMESTAMP WITH TIME ZONE"), ("view", "VARCHAR"), ("end_us", "BIGINT"),
        ("start_us", "BIGINT"), ("incremental", "BOOLEAN"), ("rebuild", "VARCHAR"),
        ("events", "BIGINT"), ("entities", "BIGINT"), ("recomputed", "BIGINT"),
        ("duration_s", "DOUBLE"), ("registry_version", "BIGINT")]


def test_a_negative_limit_is_refused(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local", materialize=False)
    with pytest.raises(InputError, match="limit must be 0 or more"):
        history(store, limit=-1)
