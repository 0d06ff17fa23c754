"""Executors: where the partitions of training sets, snapshots, verify and
materializations run ("local": this process; "dask://host:port": Dask workers).

See `selection.resolve_engine` for how the engine is chosen.
"""

from featurestore.executors.base import Executor, PartitionTask
from featurestore.executors.engines import LOCAL, engine_problem
from featurestore.executors.local import LocalExecutor
from featurestore.executors.selection import (
    ENGINE_ENV,
    EngineSetting,
    open_executor,
    resolve_engine,
)

__all__ = [
    "ENGINE_ENV",
    "LOCAL",
    "EngineSetting",
    "Executor",
    "LocalExecutor",
    "PartitionTask",
    "engine_problem",
    "open_executor",
    "resolve_engine",
]
