"""The local executor: partitions run in this process.

The offline layer keeps its streaming path for it (partition p + 1 is read while the
kernels run on partition p, nothing is written to disk), so `remote` is False and the
planned-task path is not taken; `run` still runs tasks here, in order, for callers that
have tasks in hand.
"""

from __future__ import annotations

from collections.abc import Sequence

from featurestore.executors.base import Executor, PartitionTask, Result
from featurestore.executors.engines import LOCAL


class LocalExecutor(Executor):
    """Runs partition tasks in the calling process, one after the other."""

    name = LOCAL
    remote = False

    def run(self, tasks: Sequence[PartitionTask[Result]], label: str = "partition"
            ) -> list[Result]:
        """Run each task in turn; the first error propagates."""
        return [task() for task in tasks]

    def close(self) -> None:
        """Nothing to release: no connection is held."""
