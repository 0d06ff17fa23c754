"""FeatureStore: the SDK facade (DESIGN §8).

The facade holds the validated registry and where things live, and delegates the
work: plan and apply to `featurestore.registry`. It does no work of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from featurestore.errors import FeatureStoreError
from featurestore.registry import Registry, load_registry, resolve_registry_path
from featurestore.registry.models import ONLINE_SCHEMES
from featurestore.registry.plan import Plan
from featurestore.registry.state import AppliedRegistry, AppliedState, ApplyResult, plan_against

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
        """Record the registry as the applied version (a no-op when nothing changed).

        Raises:
            StoreLockedError: the offline file stayed locked by another process.
        """
        return self._state.apply(self._registry, self._registry_text)

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
