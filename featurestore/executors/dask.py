"""The Dask executor: partition tasks run on the workers of a Dask scheduler.

`distributed` is imported only when a dask:// engine is opened, so the package works
without it for local runs. Tasks are submitted with unique keys and `pure=False` (a
rerun is a new computation, never a cached result); the scheduler reschedules the tasks
of a worker that dies, up to its `allowed-failures`, after which gathering raises and
the run commits nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from featurestore.errors import EngineError
from featurestore.executors.base import Executor, PartitionTask, Result
from featurestore.executors.engines import scheduler_address

if TYPE_CHECKING:
    from distributed import Client

INSTALL_HINT = "pip install 'featurestore[dask]'"
CONNECT_TIMEOUT_S = 10.0


class DaskExecutor(Executor):
    """Runs partition tasks on a Dask cluster.

    Args:
        setting: the engine setting, "dask://host:port".
        origin: where the setting came from, for messages.

    Raises:
        EngineError: `distributed` is not installed, or the scheduler cannot be reached.
    """

    remote = True

    def __init__(self, setting: str, origin: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise EngineError(
                f"engine {setting!r} (from {origin}) needs Dask distributed: "
                f"{INSTALL_HINT}") from None
        self.name = setting
        self.address = scheduler_address(setting)
        try:
            self._client: Client = Client(self.address, timeout=CONNECT_TIMEOUT_S,
                                          set_as_default=False)
        except (OSError, TimeoutError) as error:
            raise EngineError(f"cannot reach the Dask scheduler at {self.address} "
                              f"(engine from {origin}): {error}") from None
        self._prepared: set[str] = set()

    def prepare(self, key: str, setup: Callable[[], object]) -> None:
        """Run `setup` on every worker of the cluster at once, once per `key`.

        Workers that join later, or restart, run it in their first task instead.

        Raises:
            EngineError: a worker could not run it.
        """
        if key in self._prepared:
            return
        try:
            self._client.run(_discard_result, setup)
        except (OSError, TimeoutError) as error:
            raise EngineError(f"could not prepare the workers of {self.address}: "
                              f"{error}") from None
        self._prepared.add(key)

    @property
    def client(self) -> Client:
        """The `distributed.Client` tasks are submitted through."""
        return self._client

    def run(self, tasks: Sequence[PartitionTask[Result]], label: str = "partition"
            ) -> list[Result]:
        """Submit every task, then gather the results in task order.

        Raises:
            EngineError: a task's worker was lost more often than the scheduler allows.
            Exception: an error a task raised, as it raised it (a SourceError, say).
        """
        from distributed import KilledWorker

        if not tasks:
            return []
        run = uuid.uuid4().hex[:12]
        futures = [self._client.submit(task, key=f"featurestore-{label}-{run}-{index}",
                                       pure=False)
                   for index, task in enumerate(tasks)]
        try:
            return self._client.gather(futures)
        except KilledWorker as error:
            raise EngineError(f"a {label} task failed on {self.address}: its worker was "
                              f"lost too many times ({error})") from None
        finally:
            # Tasks still queued after a failure would only waste the workers.
            self._client.cancel(futures)

    def close(self) -> None:
        """Close the client (the cluster keeps running)."""
        self._client.close()


def _discard_result(setup: Callable[[], object]) -> None:
    """Run `setup` on a worker; what it returns stays there (it may be large)."""
    setup()
