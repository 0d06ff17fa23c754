"""Partitions on Dask workers give what the in-process path gives, bit for bit:
training sets (pandas and Arrow), snapshots, materialized states, latest values, online
states and verify, for file, table, query and CSV sources, full and incremental runs
(with pushed events that extend a string dictionary), and on generated data."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import FeatureStore
from featurestore.offline import events, point_in_time
from featurestore.offline.materialize import RUNS_TABLE, STATES_TABLE
from featurestore.offline.run_folder import WORK_DIR_ENV
from featurestore.online.entity_keys import decode_entity_key
from tests.offline import training_project
from tests.projects import DEMO_TEXT, write_demo_project
from tests.strategies import BASE, DAY, HOUR, queries
from tests.strategies import events as generated_events

MIDDLE = "2024-01-16T07:30:00Z"
END = "2024-02-01T00:00:00Z"
SOURCES = ("parquet", "table", "query", "csv")
# Pushed after the first run, before END: one value is new to the category dictionary
# in several partitions, so the order the dictionary grows in matters.
PUSHED = [{"user_id": user, "event_ts": f"2024-01-{20 + user % 9:02d}T12:00:00Z",
           "amount": 10.0 * user, "merchant_category": name}
          for user, name in [(1, "zz_new"), (2, "aa_new"), (3, "zz_new"), (7, "mm_new"),
                             (11, None), (13, "aa_new"), (17, "grocery")]]


@pytest.fixture
def engine(dask_cluster: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The cluster's engine setting; partitions small enough that there are several."""
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_ENGINE",
                 WORK_DIR_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(events, "ROWS_PER_PARTITION", 400)
    monkeypatch.setattr(point_in_time, "ROWS_PER_PARTITION", 400)
    return dask_cluster.replace("tcp://", "dask://")


def demo_project(folder: Path, source: str) -> FeatureStore:
    """The demo project (3,000 events, 40 users) reading its events as `source`."""
    project = write_demo_project(folder, events=3_000, users=40, days=31)
    parquet = "data/transactions.parquet"
    text = DEMO_TEXT
    if source == "table":
        with duckdb.connect(str(project / "data" / "offline.duckdb")) as con:
            con.execute("CREATE TABLE transactions AS SELECT * FROM "
                        f"read_parquet('{project / parquet}')")
        text = text.replace(f"path: {parquet}", "table: transactions")
    elif source == "query":
        text = text.replace(f"path: {parquet}",
                            f"query: \"SELECT * FROM read_parquet('{parquet}') "
                            "WHERE amount IS NULL OR amount >= 1\"")
    elif source == "csv":
        with duckdb.connect() as con:
            con.execute(f"COPY (SELECT * FROM read_parquet('{project / parquet}')) "
                        f"TO '{project / 'data' / 'transactions.csv'}' (HEADER)")
        text = text.replace(parquet, "data/transactions.csv")
    (project / "registry.yaml").write_text(text)
    store = FeatureStore(project)
    store.apply()
    return store


def spine_of(store: FeatureStore, rows: int = 700) -> pd.DataFrame:
    """Spine rows at event times and shifted ones, with a user no event has."""
    frame = pd.read_parquet(store.base_dir / "data" / "transactions.parquet")
    spine = frame[["user_id", "event_ts", "amount"]].head(rows).rename(
        columns={"amount": "amount_now"})
    spine["event_ts"] = spine["event_ts"] + pd.to_timedelta(
        [(i % 5) * 3_600 for i in range(len(spine))], unit="s")
    unseen = pd.DataFrame({"user_id": [10_000], "event_ts": [spine["event_ts"].iloc[0]],
                           "amount_now": [1.0]})
    return pd.concat([spine, unseen], ignore_index=True)


def offline_rows(store: FeatureStore) -> dict[str, list]:
    """Everything a materialization writes offline, row by row, in a fixed order (the
    manifest is left out: it names the project's own files)."""
    views = list(store.registry.feature_views)
    with duckdb.connect(str(store.offline_path), read_only=True) as con:
        found = {
            "states": con.sql(f"SELECT view, entity, state, newest_us FROM {STATES_TABLE} "
                              "ORDER BY view, entity").fetchall(),
            "runs": con.sql(f"SELECT view, state_key, end_us, dictionaries FROM {RUNS_TABLE} "
                            "ORDER BY view").fetchall(),
        }
        for view in views:
            found[view] = con.sql(f"SELECT * FROM features_{view} ORDER BY ALL").fetchall()
    return found


def online_states(store: FeatureStore) -> list[tuple]:
    """Every online state of every stored entity, as the online store serves it."""
    rows = offline_rows(store)["states"]
    wanted = [(view, decode_entity_key(bytes(entity))) for view, entity, *_ in rows]
    read = store.online_store().read(wanted)
    return list(zip(wanted, read.states, strict=True))


def work_left(store: FeatureStore) -> list[Path]:
    """What runs left in the work folder (nothing, when every run cleaned up)."""
    folder = store.offline_path.parent / ".work"
    return list(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("source", SOURCES)
def test_training_sets_and_snapshots_equal_local(engine: str, tmp_path: Path,
                                                 source: str) -> None:
    store = demo_project(tmp_path / "p", source)
    spine = spine_of(store)
    for output in ("pandas", "arrow"):
        local = store.get_training_set(spine, service="fraud_v1", output=output,
                                       engine="local")
        remote = store.get_training_set(spine, service="fraud_v1", output=output,
                                        engine=engine)
        if output == "arrow":
            assert remote.equals(local)
        else:
            pd.testing.assert_frame_equal(remote, local, check_exact=True)
    local = store.snapshot("2024-01-20T06:00:00Z", output="arrow", engine="local")
    remote = store.snapshot("2024-01-20T06:00:00Z", output="arrow", engine=engine)
    assert remote.num_rows == 40 and remote.equals(local)
    assert work_left(store) == []


@pytest.mark.parametrize("source", SOURCES)
def test_materialize_full_and_incremental_equal_local(engine: str, tmp_path: Path,
                                                      source: str) -> None:
    local, remote = demo_project(tmp_path / "a", source), demo_project(tmp_path / "b", source)
    for store, chosen in ((local, "local"), (remote, engine)):
        first = store.materialize(end=MIDDLE, engine=chosen)
        assert not first.views[0].incremental
    assert offline_rows(remote) == offline_rows(local)
    for store, chosen in ((local, "local"), (remote, engine)):
        store.push("transactions", PUSHED)
        second = store.materialize(end=END, engine=chosen)
        assert second.views[0].incremental and second.views[0].recomputed > 0
    written = offline_rows(remote)
    assert written == offline_rows(local)
    # The pushed values grew the dictionary at its end, in the in-process order.
    grown = json.loads(written["runs"][0][3])["merchant_category"]
    assert set(grown[-3:]) == {"aa_new", "mm_new", "zz_new"}
    assert online_states(remote) == online_states(local)
    entities = {"user_id": [1, 2, 3, 7, 40, 10_000]}
    features = ["user_txn:amount_sum_7d", "user_txn:last_category", "user_txn:txn_count_1h"]
    assert (remote.get_online_features(features, entities=entities, at=END)
            == local.get_online_features(features, entities=entities, at=END))
    assert work_left(remote) == []


def test_verify_equals_local(engine: str, tmp_path: Path) -> None:
    store = demo_project(tmp_path / "p", "table")
    store.materialize(end=MIDDLE, engine=engine)
    store.push("transactions", PUSHED)
    store.materialize(end=END, engine=engine)
    local = store.verify(entities="all", engine="local")
    remote = store.verify(entities="all", engine=engine)
    assert remote.ok and remote.values > 0
    assert (remote.entities, remote.skipped, remote.times, remote.values, remote.mismatches) == (
        local.entities, local.skipped, local.times, local.values, local.mismatches)
    assert work_left(store) == []


def test_the_work_dir_setting_moves_run_folders(engine: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = demo_project(tmp_path / "p", "parquet")
    shared = tmp_path / "shared"
    monkeypatch.setenv(WORK_DIR_ENV, str(shared))
    local = store.get_training_set(spine_of(store, 50), service="fraud_v1", engine="local")
    remote = store.get_training_set(spine_of(store, 50), service="fraud_v1", engine=engine)
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    # The run folder was made there, and removed.
    assert shared.is_dir() and list(shared.iterdir()) == []
    assert not (store.offline_path.parent / ".work").exists()


SPINE_MERCHANTS = st.lists(st.sampled_from([*training_project.MERCHANTS,
                                            training_project.UNSEEN_MERCHANT]),
                           min_size=30, max_size=30)


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=generated_events, asked=queries, merchants=SPINE_MERCHANTS,
       split=st.integers(0, 4 * DAY))
def test_generated_data_gives_equal_training_sets_and_states(
        engine: str, tmp_path_factory: pytest.TempPathFactory,
        history: list, asked: list, merchants: list[str], split: int) -> None:
    folder = tmp_path_factory.mktemp("generated")
    # Partitions of a few events each: the generated entities spread over them (the
    # `engine` fixture's monkeypatch restores the real sizes after the test).
    events.ROWS_PER_PARTITION = point_in_time.ROWS_PER_PARTITION = 7
    local = training_project.make_project(folder / "a", history)
    remote = training_project.make_project(folder / "b", history)
    spine = training_project.spine_frame(asked, merchants[: len(asked)])
    features = [f"{name}:{feature}" for name, view in local.registry.feature_views.items()
                for feature in view.features] + ["ctx:ratio"]
    for output in ("arrow", "pandas"):
        expected = local.get_training_set(spine, features=features, output=output,
                                          full_names=True, engine="local")
        got = local.get_training_set(spine, features=features, output=output,
                                     full_names=True, engine=engine)
        if output == "arrow":
            assert isinstance(got, pa.Table) and got.equals(expected)
        else:
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for store, chosen in ((local, "local"), (remote, engine)):
        store.apply()
        store.materialize(end=training_project.at(BASE + split), engine=chosen)
        store.materialize(end=training_project.at(BASE + 4 * DAY + HOUR), engine=chosen)
    assert offline_rows(remote) == offline_rows(local)
    assert online_states(remote) == online_states(local)
    report = remote.verify(entities="all", engine=engine)
    assert report.ok
