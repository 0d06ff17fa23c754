"""FeatureStore: the SDK facade (DESIGN §8).

The facade holds the validated registry and where things live, and delegates the
work: plan and apply to `featurestore.registry`. It does no work of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from featurestore.compilation import compile_registry, kernel_cache_dir, read_schemas
from featurestore.errors import FeatureStoreError
from featurestore.online import OnlineStore, open_online_store
from featurestore.registry import Registry, load_registry, resolve_registry_path
from featurestore.registry.models import ONLINE_SCHEMES
from featurestore.registry.plan import Plan
from featurestore.registry.state import AppliedRegistry, AppliedState, ApplyResult, plan_against
from transforms import CompiledGraph

OFFLINE_ENV = "FEATURESTORE_OFFLINE"
ONLINE_ENV = "FEATURESTORE_ONLINE"


class FeatureStore:
    """A feature store defined by one registry.yaml.

    The registry is read and validated once, when the store is created; create a new
    FeatureStore to pick up edits to the file.

    Example:
        >>> store = FeatureStore("registry.yaml")
        >>> print(store.plan())
        >>> store.apply()
    """

    def __init__(
        self, registry: str | os.PathLike[str] = "registry.yaml", *, lock_timeout: float = 30.0
    ) -> None:
        """Load and validate the registry.

        Args:
            registry: the registry file, or a folder holding registry.yaml.
            lock_timeout: seconds to wait while another process holds the offline
                DuckDB file before failing.

        Raises:
            RegistryError: the file is missing or invalid (every problem listed).
            FeatureStoreError: FEATURESTORE_ONLINE holds an unusable value.
        """
        path = resolve_registry_path(registry)
        self._registry, self._registry_text = load_registry(path)
        self._registry_path = path.resolve()
        self._base_dir = self._registry_path.parent
        self._offline_path = self._resolve_offline()
        self._online = self._resolve_online()
        self._state = AppliedState(self._offline_path, lock_timeout)
        self._kernels: CompiledGraph | None = None
        self._online_store: OnlineStore | None = None

    @property
    def registry(self) -> Registry:
        """The validated definitions from the registry file."""
        return self._registry

    @property
    def registry_text(self) -> str:
        """The registry file's text as it was read."""
        return self._registry_text

    @property
    def registry_path(self) -> Path:
        """Absolute path of the registry file."""
        return self._registry_path

    @property
    def base_dir(self) -> Path:
        """The folder holding the registry file; relative paths in it start here."""
        return self._base_dir

    @property
    def offline_path(self) -> Path:
        """The offline DuckDB file: $FEATURESTORE_OFFLINE, else `store.offline`, else
        `<project>.duckdb` next to the registry file."""
        return self._offline_path

    @property
    def online(self) -> str:
        """The online store: "local" or a redis:// URL ($FEATURESTORE_ONLINE wins)."""
        return self._online

    def plan(self) -> Plan:
        """What `apply` would change, compared with the last applied version.

        Raises:
            StoreLockedError: the offline file stayed locked by another process.
        """
        return plan_against(self._state.latest(), self._registry, self._registry_text)

    def apply(self) -> ApplyResult:
        """Validate, compile and record the registry as the applied version.

        Sources are checked (they exist and have the columns the features use) and the
        graph is compiled before anything is recorded; applying an unchanged file is a
        no-op.

        Raises:
            SourceError: a source is missing or lacks a column a feature needs.
            RegistryError: a definition cannot be compiled (located in the file).
            StoreLockedError: the offline file stayed locked by another process.
        """
        self.kernels()
        return self._state.apply(self._registry, self._registry_text)

    def kernels(self) -> CompiledGraph:
        """The compiled transform graph of this registry (compiled once, cached on disk).

        Reads each source's schema (a short read of the offline file for table and query
        sources) so expressions are typed against the real columns.

        Raises:
            SourceError: a source is missing or lacks a column a feature needs.
            RegistryError: a definition cannot be compiled (located in the file).
        """
        if self._kernels is None:
            schemas = self._state.run(lambda con: read_schemas(
                con, self._registry, self._base_dir, self._offline_path))
            self._kernels = compile_registry(
                self._registry, self._registry_text, self._registry_path.name, schemas,
                kernel_cache_dir(self._offline_path))
        return self._kernels

    def online_store(self) -> OnlineStore:
        """The online store client (opened on first use, then reused)."""
        if self._online_store is None:
            self._online_store = open_online_store(self._online, self._offline_path.parent,
                                                   self._registry.project)
        return self._online_store

    def offline_database(self) -> AppliedState:
        """The offline DuckDB file: `run(work)` gives `work` a connection, retrying while
        another process holds the file's write lock."""
        return self._state

    def close(self) -> None:
        """Release the online store connection (the offline file is never held open)."""
        if self._online_store is not None:
            self._online_store.close()
            self._online_store = None

    def applied(self) -> AppliedRegistry | None:
        """The applied version recorded in the offline file, or None."""
        return self._state.latest()

    def _resolve_offline(self) -> Path:
        override = os.environ.get(OFFLINE_ENV)
        if override:
            # An environment variable comes from the shell: relative to where it runs.
            return Path(override).resolve()
        configured = self._registry.store.offline
        name = configured if configured is not None else f"{self._registry.project}.duckdb"
        return (self._base_dir / name).resolve()

    def _resolve_online(self) -> str:
        override = os.environ.get(ONLINE_ENV)
        if not override:
            return self._registry.store.online
        if override != "local" and not override.startswith(ONLINE_SCHEMES):
            raise FeatureStoreError(
                f"{ONLINE_ENV} must be 'local' or a redis:// URL, got '{override}'"
            )
        return override
