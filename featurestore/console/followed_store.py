"""The feature store a console shows, following edits to its registry file.

A console runs for days while people edit registry.yaml, apply and materialize. Each page
asks for the store; when the file changed since the last page, it is loaded again. A file
that no longer loads keeps the last good definitions on screen, with the problems shown
as a warning, so a typo never takes the console down.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from featurestore.errors import FeatureStoreError, RegistryError
from featurestore.store import FeatureStore

LOCK_TIMEOUT_S = 1.0
"""How long a page waits for an offline file another process is writing; a console page
shows what it could read rather than hang for the 30 s a command would wait."""


@dataclass(frozen=True)
class Followed:
    """The store to show, and why the registry file on disk is not it (if it is not).

    Attributes:
        store: the store loaded from the last registry file that was valid.
        problems: the current file's problems when it does not load (empty otherwise).
    """

    store: FeatureStore
    problems: tuple[str, ...] = ()


class FollowedStore:
    """Loads the registry file again whenever its size or modification time change.

    Args:
        registry: the registry file, or a folder holding registry.yaml.

    Raises:
        RegistryError: the file does not load the first time (there is nothing to show).
    """

    def __init__(self, registry: str | Path) -> None:
        self._store = FeatureStore(registry, lock_timeout=LOCK_TIMEOUT_S)
        self._path = self._store.registry_path
        self._signature = _signature(self._path)
        self._problems: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def current(self) -> Followed:
        """The store for the file as it is now (or the last one that loaded)."""
        with self._lock:
            signature = _signature(self._path)
            if signature != self._signature:
                self._signature = signature
                self._reload()
            return Followed(self._store, self._problems)

    def close(self) -> None:
        """Release the store's online client."""
        self._store.close()

    def _reload(self) -> None:
        try:
            store = FeatureStore(self._path, lock_timeout=LOCK_TIMEOUT_S)
        except RegistryError as error:
            self._problems = tuple(error.problems or [str(error)])
            return
        except FeatureStoreError as error:
            self._problems = (str(error),)
            return
        self._store.close()
        self._store, self._problems = store, ()


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns
