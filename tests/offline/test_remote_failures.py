"""Failed runs on the Dask engine change nothing: a worker killed mid-materialization is
retried by the scheduler (the run then equals a clean one) or fails leaving the previous
state; a task that fails for good leaves the previous offline tables and online version,
and no run folder."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client

from featurestore import FeatureStore
from featurestore.errors import EngineError
from featurestore.offline import events, partition_tasks, point_in_time
from featurestore.online.published import REGISTRY
from tests.offline.test_remote_partitions import (
    END,
    MIDDLE,
    PUSHED,
    demo_project,
    offline_rows,
    online_states,
    work_left,
)

_BROKEN = "this worker's disk is gone"
_READ = partition_tasks.PartitionRead.read


@pytest.fixture
def engine(dask_cluster: str, monkeypatch: pytest.MonkeyPatch) -> str:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_ENGINE",
                 "FEATURESTORE_WORK_DIR"):
        monkeypatch.delenv(name, raising=False)
    # Many partitions, so that tasks are still running when a worker is killed.
    monkeypatch.setattr(events, "ROWS_PER_PARTITION", 60)
    monkeypatch.setattr(point_in_time, "ROWS_PER_PARTITION", 60)
    return dask_cluster.replace("tcp://", "dask://")


@pytest.fixture
def client(dask_cluster: str) -> Iterator[Client]:
    with Client(dask_cluster, set_as_default=False) as opened:
        yield opened
        # Whatever a test did to the workers, both are back before the next test.
        opened.wait_for_workers(2, timeout=60)


def online_version(store: FeatureStore) -> str | None:
    """The published online version."""
    return store.online_store().read([], [REGISTRY]).version


def clean_run(folder: Path) -> FeatureStore:
    """The same project, materialized in process to MIDDLE, pushed to, then to END."""
    store = demo_project(folder, "parquet")
    store.materialize(end=MIDDLE, engine="local")
    store.push("transactions", PUSHED)
    store.materialize(end=END, engine="local")
    return store


def prepared(folder: Path) -> FeatureStore:
    """A project materialized to MIDDLE, with pushed events waiting for the next run."""
    store = demo_project(folder, "parquet")
    store.materialize(end=MIDDLE, engine="local")
    store.push("transactions", PUSHED)
    return store


def test_a_worker_killed_mid_materialization(engine: str, client: Client,
                                             tmp_path: Path) -> None:
    clean = clean_run(tmp_path / "clean")
    store = prepared(tmp_path / "killed")
    before, version = offline_rows(store), online_version(store)
    pids = client.run(os.getpid)
    outcome: dict[str, object] = {}

    def materialize() -> None:
        try:
            outcome["result"] = store.materialize(end=END, engine=engine)
        except Exception as error:  # the run may fail: then nothing may have changed
            outcome["error"] = error

    runner = threading.Thread(target=materialize)
    runner.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and runner.is_alive() and time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if worker in pids and any(str(key).startswith("featurestore-materialize")
                                      for key in keys):
                os.kill(pids[worker], signal.SIGKILL)
                killed = worker
                break
        else:
            time.sleep(0.001)
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert killed is not None, "no materialize task was seen running"
    if "error" in outcome:
        assert isinstance(outcome["error"], EngineError)
        assert offline_rows(store) == before
        assert online_version(store) == version
    else:
        assert offline_rows(store) == offline_rows(clean)
        assert online_states(store) == online_states(clean)
    assert work_left(store) == []
    client.wait_for_workers(2, timeout=60)
    # A rerun (a no-op when the killed run was retried to completion) equals a clean run.
    store.materialize(end=END, engine=engine)
    assert offline_rows(store) == offline_rows(clean)
    assert online_states(store) == online_states(clean)


def _break_reads() -> None:
    def broken(read: partition_tasks.PartitionRead) -> None:
        raise OSError(_BROKEN)

    partition_tasks.PartitionRead.read = broken


def _restore_reads() -> None:
    partition_tasks.PartitionRead.read = _READ


@pytest.fixture
def broken_workers(client: Client) -> Iterator[None]:
    """Every partition read on the workers fails (and only there)."""
    client.run(_break_reads)
    try:
        yield
    finally:
        client.run(_restore_reads)


@pytest.mark.usefixtures("broken_workers")
def test_a_task_failing_for_good_changes_nothing(engine: str, tmp_path: Path) -> None:
    store = prepared(tmp_path / "p")
    before, version = offline_rows(store), online_version(store)
    states = online_states(store)
    with pytest.raises(OSError, match=_BROKEN):
        store.materialize(end=END, engine=engine)
    assert offline_rows(store) == before
    assert online_version(store) == version and online_states(store) == states
    assert work_left(store) == []
    with pytest.raises(OSError, match=_BROKEN):
        spine = pd.DataFrame({"user_id": [1], "event_ts": [pd.Timestamp(END)]})
        store.get_training_set(spine, engine=engine, features=["user_txn:amount_sum_7d"])
    assert work_left(store) == []
    # In process, the same run works.
    store.materialize(end=END, engine="local")
    assert offline_rows(store) == offline_rows(clean_run(tmp_path / "clean"))
