"""The Dask executor on a real LocalCluster: results in task order, task errors raised
as they are, kernels built once per worker process, not once per task."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from distributed import Client

from featurestore import FeatureStore
from featurestore.executors import open_executor, resolve_engine
from featurestore.executors.dask import DaskExecutor
from featurestore.offline import events, point_in_time
from featurestore.offline.partition_tasks import graphs_built
from tests.projects import write_demo_project


@dataclass(frozen=True)
class Square:
    """A picklable task: its value squared, and the worker process that ran it."""

    value: int

    def __call__(self) -> tuple[int, int]:
        return self.value * self.value, os.getpid()


@dataclass(frozen=True)
class Fails:
    """A task that raises."""

    def __call__(self) -> None:
        raise ValueError("partition 3 is broken")


def engine_of(address: str) -> str:
    """The engine setting of a scheduler address."""
    return address.replace("tcp://", "dask://")


@pytest.fixture(scope="module")
def executor(dask_cluster: str) -> DaskExecutor:
    opened = open_executor(resolve_engine(engine_of(dask_cluster)))
    assert isinstance(opened, DaskExecutor) and opened.remote
    yield opened
    opened.close()


def test_results_come_back_in_task_order_from_both_workers(executor: DaskExecutor,
                                                           dask_cluster: str) -> None:
    results = executor.run([Square(value) for value in range(40)])
    assert [square for square, _ in results] == [value * value for value in range(40)]
    with Client(dask_cluster, set_as_default=False) as client:
        workers = set(client.run(os.getpid).values())
    assert {pid for _, pid in results} <= workers
    assert os.getpid() not in workers
    assert executor.run([]) == []


def test_a_task_error_is_raised_as_it_is(executor: DaskExecutor) -> None:
    with pytest.raises(ValueError, match="partition 3 is broken"):
        executor.run([Square(1), Fails(), Square(2)])
    # The executor is usable after a failed run.
    assert executor.run([Square(3)])[0][0] == 9


def test_kernels_are_built_once_per_worker_not_per_task(
        dask_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Many small partitions: far more tasks than workers.
    monkeypatch.setattr(events, "ROWS_PER_PARTITION", 100)
    monkeypatch.setattr(point_in_time, "ROWS_PER_PARTITION", 100)
    text = (Path(__file__).resolve().parents[2] / "registry.yaml").read_text()
    # A graph of its own (a feature no other test has), so no worker built it before.
    text = text.replace("      txn_count_1h:     {agg: count, window: 1h}",
                        "      txn_count_1h:     {agg: count, window: 1h}\n"
                        "      txn_count_35m:    {agg: count, window: 35m}")
    project = write_demo_project(tmp_path / "p", text=text, events=2_000, users=60)
    store = FeatureStore(project)
    frame = pd.read_parquet(project / "data" / "transactions.parquet")
    spine = frame[["user_id", "event_ts"]].head(400)
    with Client(dask_cluster, set_as_default=False) as client:
        before = client.run(graphs_built)
        store.get_training_set(spine, features=["user_txn:txn_count_35m"],
                               engine=engine_of(dask_cluster))
        store.get_training_set(spine, features=["user_txn:amount_sum_7d"],
                               engine=engine_of(dask_cluster))
        after = client.run(graphs_built)
    # 20 partitions ran twice over two workers; every worker built the graph once,
    # prepared before the first run's tasks, whichever tasks it was given.
    grown = {worker: after[worker] - before.get(worker, 0) for worker in after}
    assert grown == dict.fromkeys(after, 1)
