"""The executor interface: where the partitions of a training set, snapshot, verify or
materialization run.

A partition task is a picklable callable with no arguments (a frozen dataclass of
plain data): it reads its own partition, runs the kernels, writes its result as a
Parquet part into the run's shared folder and returns a small description of it. An
executor runs a list of them and returns their results in task order, or raises once
the engine has given up on one of them (after its own retries), leaving the caller to
commit nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TypeVar

Result = TypeVar("Result")
PartitionTask = Callable[[], Result]


class Executor(ABC):
    """Runs partition tasks somewhere.

    Attributes:
        name: the engine setting it was opened from ("local", "dask://host:port").
        remote: True when tasks run outside this process, so partitions are planned
            as tasks whose inputs and results are files in a shared folder; False for
            the in-process path, which streams partitions without writing parts.
    """

    name: str
    remote: bool

    @abstractmethod
    def run(self, tasks: Sequence[PartitionTask[Result]], label: str = "partition"
            ) -> list[Result]:
        """Run every task and return their results in task order.

        Args:
            tasks: picklable callables without arguments.
            label: what the tasks are, for the engine's task names and for messages.

        Raises:
            EngineError: a task could not complete (its worker was lost more often
                than the engine allows); an error a task raised is raised as it is.
        """

    def prepare(self, key: str, setup: Callable[[], object]) -> None:
        """Run `setup` once on every worker now, before the tasks that need what it
        loads, rather than in the first task each worker happens to get.

        A second call with the same `key` does nothing. Executors without workers of
        their own (the local one) do nothing: their tasks load what they need.
        """
        del key, setup

    @abstractmethod
    def close(self) -> None:
        """Release the executor's connections."""
