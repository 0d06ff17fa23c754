"""Online stores: per-entity states served at lookup time, behind one small interface.

`open_online_store` picks the backend from the ``store.online`` setting: ``"local"`` is
the embedded SQLite file ``<base_dir>/online.sqlite``; a ``redis://``, ``rediss://`` or
``unix://`` URL is a Redis server.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.errors import RegistryError
from featurestore.online.base import OnlineStore, ReadResult, Request, UpdateFunction
from featurestore.online.entity_keys import decode_entity_key, encode_entity_key
from featurestore.online.local_store import LocalOnlineStore

if TYPE_CHECKING:
    from featurestore.online.redis_store import RedisOnlineStore

LOCAL_FILE_NAME = "online.sqlite"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

__all__ = [
    "LOCAL_FILE_NAME",
    "LocalOnlineStore",
    "OnlineStore",
    "ReadResult",
    "RedisOnlineStore",
    "Request",
    "UpdateFunction",
    "decode_entity_key",
    "encode_entity_key",
    "open_online_store",
]


def open_online_store(setting: str, base_dir: Path, project: str) -> OnlineStore:
    """Open the online store a ``store.online`` setting names. Nothing is contacted yet.

    Args:
        setting: ``"local"`` or a Redis URL (``redis://host:6379/0``; query parameters
            ``socket_timeout`` and ``socket_connect_timeout`` override the defaults).
        base_dir: the folder of the offline store; the local store's file goes there.
        project: the project name; it scopes every key.

    Returns:
        A `LocalOnlineStore` or a `RedisOnlineStore`.

    Raises:
        RegistryError: the setting is neither ``"local"`` nor a well-formed Redis URL.
    """
    if setting == "local":
        return LocalOnlineStore(Path(base_dir) / LOCAL_FILE_NAME, project)
    if isinstance(setting, str) and setting.startswith(_REDIS_SCHEMES):
        from featurestore.online.redis_store import RedisOnlineStore

        try:
            return RedisOnlineStore(setting, project)
        except ValueError as error:
            raise RegistryError([f"store.online: invalid Redis URL: {error}"]) from error
    # Echo only the scheme of something URL-like: the rest may hold a password.
    shown = setting.partition("://")[0] + "://..." if "://" in str(setting) else setting
    raise RegistryError([
        f"store.online: expected 'local' or a URL starting with redis://, rediss:// or "
        f"unix://, got {shown!r}"
    ])


def __getattr__(name: str) -> Any:
    # The Redis client is imported only by projects that use it.
    if name == "RedisOnlineStore":
        from featurestore.online.redis_store import RedisOnlineStore

        return RedisOnlineStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
