"""Which engine a call runs on, and opening its executor.

Precedence, first set wins: the call's own `engine=` argument (CLI `--engine`), then
the environment variable FEATURESTORE_ENGINE, then the registry's `store: {engine:}`,
then "local". A bad value is reported with where it came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from featurestore.errors import InputError
from featurestore.executors.base import Executor
from featurestore.executors.engines import LOCAL, engine_problem

ENGINE_ENV = "FEATURESTORE_ENGINE"
PER_CALL = "the engine argument"
REGISTRY = "the registry's store.engine"
DEFAULT = "the default"


@dataclass(frozen=True)
class EngineSetting:
    """An engine setting and where it came from.

    Attributes:
        value: "local" or "dask://host:port".
        origin: the argument, the environment variable, the registry or the default.
    """

    value: str
    origin: str

    @property
    def is_local(self) -> bool:
        """Whether partitions run in this process."""
        return self.value == LOCAL


def resolve_engine(per_call: str | None, registry_engine: str = LOCAL) -> EngineSetting:
    """The engine a call runs on: per call, else $FEATURESTORE_ENGINE, else the registry.

    Args:
        per_call: the call's `engine=` argument (None: not given).
        registry_engine: the registry's `store.engine` (validated when it was loaded).

    Raises:
        InputError: the chosen value is neither "local" nor "dask://host:port"; the
            message names where it came from.
    """
    environment = os.environ.get(ENGINE_ENV) or None
    if per_call is not None:
        setting = EngineSetting(per_call, PER_CALL)
    elif environment is not None:
        setting = EngineSetting(environment, ENGINE_ENV)
    elif registry_engine != LOCAL:
        setting = EngineSetting(registry_engine, REGISTRY)
    else:
        return EngineSetting(LOCAL, DEFAULT)
    if not isinstance(setting.value, str):
        raise InputError(f"{setting.origin}: expected 'local' or 'dask://host:port', "
                         f"got {setting.value!r}")
    problem = engine_problem(setting.value)
    if problem is not None:
        raise InputError(f"{setting.origin}: {problem}")
    return setting


def open_executor(setting: EngineSetting) -> Executor:
    """A new executor for a resolved setting.

    Raises:
        EngineError: a dask:// engine without Dask installed, or whose scheduler
            cannot be reached.
    """
    if setting.is_local:
        from featurestore.executors.local import LocalExecutor

        return LocalExecutor()
    from featurestore.executors.dask import DaskExecutor

    return DaskExecutor(setting.value, setting.origin)
