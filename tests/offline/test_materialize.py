"""Materialization: offline states and tables, watermarks, incremental runs, atomicity."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from featurestore import FeatureStore
from featurestore.errors import InputError, NotAppliedError
from featurestore.offline.materialize import RUNS_TABLE, STATES_TABLE
from featurestore.online.entity_keys import decode_entity_key
from featurestore.online.published import REGISTRY, published_registry, state_name
from featurestore.view_states import state_key
from tests.projects import REPO, write_demo_project

START = pd.Timestamp("2024-01-01", tz="UTC")
MIDDLE = "2024-01-16T07:30:00Z"
END = "2024-02-01T00:00:00Z"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    write_demo_project(tmp_path / "project", events=3_000, users=40, days=31)
    FeatureStore(tmp_path / "project").apply()
    return tmp_path / "project"


def tables(project: Path) -> dict[str, object]:
    """Everything a materialization writes offline, in a comparable form."""
    with duckdb.connect(str(project / "data" / "offline.duckdb"), read_only=True) as con:
        latest = con.sql("SELECT * FROM features_user_txn ORDER BY user_id").df()
        runs = con.sql(f"SELECT view, state_key, end_us FROM {RUNS_TABLE}").fetchall()
        count = con.sql(f"SELECT count(*) FROM {STATES_TABLE}").fetchall()[0][0]
    return {"latest": latest, "runs": runs, "states": count}


def test_materialize_writes_states_latest_values_and_watermark(project: Path) -> None:
    store = FeatureStore(project)
    result = store.materialize(end=END)
    assert result.views[0].events == 3_000
    assert result.online_states == result.views[0].entities == 40
    written = tables(project)
    assert written["states"] == 40
    assert [(view, end) for view, _, end in written["runs"]] == [
        ("user_txn", int(pd.Timestamp(END).value // 1000))]
    latest = written["latest"]
    assert list(latest.columns[:2]) == ["user_id", "txn_count_1h"]
    assert latest["as_of"].iloc[0] == pd.Timestamp(END)
    # The latest-values table holds what the kernels compute from raw events at END.
    view = store.kernels().views["user_txn"]
    online = store.online_store().read([("user_txn", (int(u),)) for u in latest["user_id"]])
    values = view.values_from_states(online.states, int(pd.Timestamp(END).value // 1000))
    assert list(values[1]) == list(latest["amount_sum_7d"])


def test_incremental_run_equals_one_full_run(project: Path, tmp_path: Path) -> None:
    store = FeatureStore(project)
    store.materialize(end=MIDDLE)
    second = store.materialize(end=END)
    assert second.views[0].incremental
    assert second.views[0].events < 3_000
    clean = write_demo_project(tmp_path / "clean", events=3_000, users=40, days=31)
    FeatureStore(clean).apply()
    FeatureStore(clean).materialize(end=END)
    incremental, full = tables(project), tables(clean)
    pd.testing.assert_frame_equal(incremental["latest"], full["latest"])
    assert incremental["runs"] == full["runs"]


def test_end_before_the_watermark_needs_full(project: Path) -> None:
    store = FeatureStore(project)
    store.materialize(end=END)
    with pytest.raises(InputError, match=r"before the last materialization .* full=True"):
        store.materialize(end=MIDDLE)
    assert store.materialize(end=MIDDLE, full=True).views[0].start_us is None


def test_unapplied_changes_are_refused(project: Path) -> None:
    text = (project / "registry.yaml").read_text().replace("window: 7d}", "window: 8d}", 1)
    (project / "registry.yaml").write_text(text)
    with pytest.raises(NotAppliedError, match="featurestore apply"):
        FeatureStore(project).materialize(end=END)


KILLED_RUN = """
import os, signal, sys
from featurestore import FeatureStore
from featurestore.offline import events
events.ROWS_PER_PARTITION = 500  # several partitions, so there is a "half-way"

def progress(view, done, total, rows):
    if done == 2:
        os.kill(os.getpid(), signal.SIGKILL)

FeatureStore(sys.argv[1]).materialize(end=sys.argv[2], progress=progress)
"""


def test_killed_run_leaves_previous_state_and_a_rerun_matches(project: Path,
                                                              tmp_path: Path) -> None:
    store = FeatureStore(project)
    store.materialize(end=MIDDLE)
    before = tables(project)
    online_before = store.online_store().current_version()
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(project), END],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    assert killed.returncode == -9
    after_kill = tables(project)
    pd.testing.assert_frame_equal(after_kill["latest"], before["latest"])
    assert after_kill["runs"] == before["runs"]
    assert FeatureStore(project).online_store().current_version() == online_before
    FeatureStore(project).materialize(end=END)
    clean = write_demo_project(tmp_path / "clean", events=3_000, users=40, days=31)
    FeatureStore(clean).apply()
    FeatureStore(clean).materialize(end=END)
    pd.testing.assert_frame_equal(tables(project)["latest"], tables(clean)["latest"])


def test_online_store_holds_every_entity(project: Path) -> None:
    store = FeatureStore(project)
    store.materialize(end=END)
    with duckdb.connect(str(project / "data" / "offline.duckdb"), read_only=True) as con:
        entities = [decode_entity_key(bytes(e)) for (e,) in
                    con.sql(f"SELECT entity FROM {STATES_TABLE}").fetchall()]
    result = store.online_store().read([("user_txn", key) for key in entities],
                                       [REGISTRY, state_name("user_txn")])
    assert all(state is not None for state in result.states)
    published = published_registry(result.metadata)
    assert published is not None and published.version == store.applied().version
    expected = state_key(store.registry, "user_txn", store.kernels().views["user_txn"].fingerprint)
    assert result.metadata[state_name("user_txn")] == expected.encode()
    assert published.state_keys == {"user_txn": expected}
