"""Online stores: per-entity states served at lookup time, behind one small interface.

`open_online_store` picks the backend from the ``store.online`` setting: ``"local"`` is
the embedded SQLite file ``<base_dir>/online.sqlite``; a ``redis://``, ``rediss://`` or
``unix://`` URL is a Redis server; ``redis+cluster://host:port,host:port,...`` is a Redis
Cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.credentials import redact_url
from featurestore.errors import RegistryError
from featurestore.online.base import OnlineStore, ReadResult, Request, UpdateFunction
from featurestore.online.entity_keys import decode_entity_key, encode_entity_key
from featurestore.online.local_store import LocalOnlineStore

if TYPE_CHECKING:
    from featurestore.online.redis_cluster_store import RedisClusterOnlineStore
    from featurestore.online.redis_store import RedisOnlineStore

LOCAL_FILE_NAME = "online.sqlite"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_CLUSTER_SCHEME = "redis+cluster://"

__all__ = [
    "LOCAL_FILE_NAME",
    "LocalOnlineStore",
    "OnlineStore",
    "ReadResult",
    "RedisClusterOnlineStore",
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
        setting: ``"local"``, a Redis URL (``redis://host:6379/0``) or a Redis Cluster
            URL (``redis+cluster://:password@host:7000,host:7001``); query parameters
            ``socket_timeout`` and ``socket_connect_timeout`` override the defaults.
        base_dir: the folder of the offline store; the local store's file goes there.
        project: the project name; it scopes every key.

    Returns:
        A `LocalOnlineStore`, a `RedisOnlineStore` or a `RedisClusterOnlineStore`.

    Raises:
        RegistryError: the setting is neither ``"local"`` nor a well-formed Redis URL.
    """
    if setting == "local":
        return LocalOnlineStore(Path(base_dir) / LOCAL_FILE_NAME, project)
    if isinstance(setting, str) and setting.startswith(_CLUSTER_SCHEME):
        from featurestore.online.redis_cluster_store import RedisClusterOnlineStore

        try:
            return RedisClusterOnlineStore(setting, project)
        except ValueError as error:
            # The parser's messages never quote the password; the URL shown is redacted.
            raise RegistryError([f"store.online: invalid Redis Cluster URL "
                                 f"{redact_url(setting)!r}: {error}"]) from error
    if isinstance(setting, str) and setting.startswith(_REDIS_SCHEMES):
        from featurestore.online.redis_store import RedisOnlineStore

        try:
            return RedisOnlineStore(setting, project)
        except ValueError as error:
            raise RegistryError([f"store.online: invalid Redis URL: {error}"]) from error
    # Echo only the scheme of something URL-like: the rest may hold a password.
    shown = setting.partition("://")[0] + "://..." if "://" in str(setting) else setting
    raise RegistryError([
        f"store.online: expected 'local' or a URL starting with redis://, rediss://, "
        f"unix:// or redis+cluster://, got {shown!r}"
    ])


def __getattr__(name: str) -> Any:
    # The Redis client is imported only by projects that use it.
    if name == "RedisOnlineStore":
        from featurestore.online.redis_store import RedisOnlineStore

        return RedisOnlineStore
    if name == "RedisClusterOnlineStore":
        from featurestore.online.redis_cluster_store import RedisClusterOnlineStore

        return RedisClusterOnlineStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
