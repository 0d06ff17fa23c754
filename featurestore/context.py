"""What the layers below the SDK facade work with: one registry and where things live.

`FeatureStore` builds a `StoreContext` and hands it to the offline, online and serving
layers instead of itself, so no layer can reach back into the facade. A server that
switches between applied registry versions derives a context per version
(`with_registry`) that shares the paths, the offline database and the online store
client of the one it came from.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from featurestore.compilation import compile_registry, kernel_cache_dir, read_schemas
from featurestore.credentials import redact_url
from featurestore.errors import FeatureStoreError
from featurestore.executors import Executor, open_executor, resolve_engine
from featurestore.fits.applying import FitCache
from featurestore.online import OnlineStore, open_online_store
from featurestore.registry import Registry
from featurestore.registry.models import ONLINE_SCHEMES
from featurestore.registry.state import AppliedRegistry, AppliedState
from transforms import CompiledGraph
from transforms.spec import ColumnType

REGISTRY_ENV = "FEATURESTORE_REGISTRY"
OFFLINE_ENV = "FEATURESTORE_OFFLINE"
ONLINE_ENV = "FEATURESTORE_ONLINE"
AUTH_ENV = "FEATURESTORE_AUTH"
"""Set to 1 (true, yes, on), requires bearer tokens as `serve --auth` does (the ASGI
factory and `serve --workers N`'s workers read it); it cannot turn off auth the
registry's `serving: {auth: true}` asks for."""
UI_ENV = "FEATURESTORE_UI"
"""Set to 1, the ASGI factory mounts the web console at /ui as `serve --ui` does."""


class StoreContext:
    """One registry's definitions, compiled kernels, paths and store clients.

    Args:
        registry: the validated definitions.
        registry_text: the text they were read from (its hash identifies a version).
        registry_path: absolute path of the registry file; relative paths in it start
            at its folder.
        lock_timeout: seconds to wait while another process holds the offline file.
    """

    def __init__(self, registry: Registry, registry_text: str, registry_path: Path,
                 lock_timeout: float = 30.0) -> None:
        self.registry = registry
        self.registry_text = registry_text
        self.registry_path = registry_path
        self.base_dir = registry_path.parent
        self.offline_path = _resolve_offline(registry, self.base_dir)
        self.online = _resolve_online(registry)
        self._state = AppliedState(self.offline_path, lock_timeout, search_dir=self.base_dir)
        self._kernels: CompiledGraph | None = None
        self._online_store: OnlineStore | None = None
        self._online_owner = True
        self._lock = threading.Lock()
        self._fits: FitCache | None = None
        self._executors: dict[str, Executor] = {}
        self._owns_executors = True

    def with_registry(self, registry: Registry, registry_text: str,
                      kernels: CompiledGraph) -> StoreContext:
        """A context for other definitions over the same stores (shared clients)."""
        derived = StoreContext.__new__(StoreContext)
        derived.__dict__.update(self.__dict__)
        derived.registry, derived.registry_text = registry, registry_text
        derived._kernels = kernels
        derived._online_store = self.online_store()
        derived._online_owner = False
        derived._owns_executors = False
        derived._fits = self.fits()
        derived._lock = threading.Lock()
        return derived

    def for_definitions(self, registry: Registry, registry_text: str,
                        schemas: Mapping[str, Mapping[str, ColumnType]]) -> StoreContext:
        """A context for other definitions over the same stores, compiled now against
        the given source schemas (loaded from the disk cache when compiled before).

        Raises:
            RegistryError: a definition cannot be compiled.
        """
        kernels = compile_registry(registry, registry_text, self.registry_path.name, schemas,
                                   kernel_cache_dir(self.offline_path))
        return self.with_registry(registry, registry_text, kernels)

    def kernels(self) -> CompiledGraph:
        """The compiled transform graph (compiled once, cached on disk).

        Raises:
            SourceError: a source is missing or lacks a column a feature needs.
            RegistryError: a definition cannot be compiled (located in the file).
        """
        if self._kernels is None:
            schemas = self._state.run(lambda con: read_schemas(
                con, self.registry, self.base_dir, self.offline_path))
            self._kernels = compile_registry(
                self.registry, self.registry_text, self.registry_path.name, schemas,
                kernel_cache_dir(self.offline_path))
        return self._kernels

    def online_store(self) -> OnlineStore:
        """The online store client (opened on first use, then reused; thread-safe)."""
        if self._online_store is None:
            with self._lock:
                if self._online_store is None:
                    self._online_store = open_online_store(
                        self.online, self.offline_path.parent, self.registry.project)
        return self._online_store

    def executor(self, engine: str | None = None) -> Executor:
        """The executor partitions run on: `engine` if given, else $FEATURESTORE_ENGINE,
        else the registry's `store.engine`, else local (opened once per setting, then
        reused; derived contexts share them).

        Raises:
            InputError: the chosen engine setting is malformed (names where it came from).
            EngineError: Dask is not installed, or its scheduler cannot be reached.
        """
        setting = resolve_engine(engine, self.registry.store.engine)
        with self._lock:
            found = self._executors.get(setting.value)
            if found is None:
                found = self._executors[setting.value] = open_executor(setting)
        return found

    def offline_database(self) -> AppliedState:
        """The offline DuckDB file: `run(work)` gives `work` a connection, retrying while
        another process holds the file's write lock."""
        return self._state

    def fits(self) -> FitCache:
        """The fitted transforms of the offline file (shared by derived contexts)."""
        if self._fits is None:
            with self._lock:
                if self._fits is None:
                    self._fits = FitCache(self._state)
        return self._fits

    def applied(self) -> AppliedRegistry | None:
        """The applied version recorded in the offline file, or None."""
        return self._state.latest()

    def close(self) -> None:
        """Release the online store connection if this context opened it."""
        if self._online_store is not None and self._online_owner:
            self._online_store.close()
        self._online_store = None
        if self._owns_executors:
            for executor in self._executors.values():
                executor.close()
            self._executors.clear()


def _resolve_offline(registry: Registry, base_dir: Path) -> Path:
    override = os.environ.get(OFFLINE_ENV)
    if override:
        # An environment variable comes from the shell: relative to where it runs.
        return Path(override).resolve()
    configured = registry.store.offline
    name = configured if configured is not None else f"{registry.project}.duckdb"
    return (base_dir / name).resolve()


def _resolve_online(registry: Registry) -> str:
    override = os.environ.get(ONLINE_ENV)
    if not override:
        return registry.store.online
    if override != "local" and not override.startswith(ONLINE_SCHEMES):
        raise FeatureStoreError(
            f"{ONLINE_ENV} must be 'local', a redis:// or a redis+cluster:// URL, "
            f"got '{redact_url(override)}'"
        )
    return override
