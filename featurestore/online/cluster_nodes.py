"""The masters of a Redis Cluster: the setting's URL, the slot map, and commands sent to
several masters at once.

`ClusterNodes` keeps one `redis.Redis` connection pool per master and the owner of each
of the 16384 slots (from ``CLUSTER SLOTS``). `ClusterNodes.run` sends each master its
commands on one connection, all masters first, then reads the replies: the masters work
in parallel and a call costs one round trip per master, without threads. (redis-py's
RedisCluster sends to one node after another and refuses scripts whose declared keys span
slots, so it is not used.)

Connections have short timeouts (1 s connect, 5 s per command, overridable in the URL)
and no retry loop of their own: a master that is down fails in one connect timeout, and
a connection broken by a restarted master is replaced at the next use.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
from redis.backoff import NoBackoff
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from featurestore.online.cluster_scripts import Script

CLUSTER_SCHEME = "redis+cluster://"
SLOT_COUNT = 16384
_DEFAULT_CONNECT_TIMEOUT_S = 1.0
_DEFAULT_SOCKET_TIMEOUT_S = 5.0
_TIMEOUT_PARAMETERS = ("socket_timeout", "socket_connect_timeout")
# Errors by which a master says the slot map changed or the cluster cannot serve now.
_CLUSTER_ERROR_TYPES = (AskError, TryAgainError, ClusterDownError)
_CLUSTER_ERROR_TEXTS = ("non local key", "cluster is down", "CLUSTERDOWN", "TRYAGAIN", "MOVED")

Command = tuple[Any, ...]


class ClusterChanged(RedisConnectionError):
    """A master answered that it does not serve a slot now, or that the cluster is down.

    A ConnectionError, so callers treat it as unavailability; the slot map is refreshed
    before the next command.
    """


@dataclass(frozen=True)
class ClusterSettings:
    """What a ``redis+cluster://`` URL says.

    Attributes:
        addresses: the startup nodes, ``(host, port)``.
        username: the ACL user, if any.
        password: the password, if any.
        socket_timeout: seconds per command.
        socket_connect_timeout: seconds per connection attempt.
    """

    addresses: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    socket_timeout: float
    socket_connect_timeout: float


def parse_cluster_url(url: str) -> ClusterSettings:
    """Parse ``redis+cluster://[[user]:password@]host:port[,host:port...][/0][?timeouts]``.

    Raises:
        ValueError: the URL is malformed; the message never contains the password.
    """
    if not url.startswith(CLUSTER_SCHEME):
        raise ValueError(f"expected a URL starting with {CLUSTER_SCHEME}")
    rest, _, query = url[len(CLUSTER_SCHEME):].partition("?")
    netloc, slash, path = rest.partition("/")
    if slash and path not in ("", "0"):
        raise ValueError("a Redis Cluster has database 0 only: drop the path or write /0")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    addresses = tuple(_parse_address(entry) for entry in hosts.split(","))
    timeouts = {"socket_timeout": _DEFAULT_SOCKET_TIMEOUT_S,
                "socket_connect_timeout": _DEFAULT_CONNECT_TIMEOUT_S}
    for field in filter(None, query.split("&")):
        name, _, value = field.partition("=")
        if name == "password":
            password = unquote(value)
        elif name in _TIMEOUT_PARAMETERS:
            timeouts[name] = _parse_seconds(name, value)
        else:
            raise ValueError(f"unknown query parameter {name!r} (expected "
                             f"{', '.join(_TIMEOUT_PARAMETERS)})")
    return ClusterSettings(addresses, username, password, **timeouts)


def _parse_address(entry: str) -> tuple[str, int]:
    host, colon, port = entry.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host:
        raise ValueError(f"expected host:port for every node, got {entry!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r} in {entry!r}: expected 1 to 65535")
    return host, int(port)


def _parse_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return seconds


@dataclass(frozen=True)
class SlotMap:
    """Which master owns each slot; replaced as a whole when the cluster changes.

    Attributes:
        owners: the master address (``host:port``) of each slot, indexed by slot.
        primaries: every master address, sorted.
    """

    owners: tuple[str, ...]
    primaries: tuple[str, ...]


class ClusterNodes:
    """Connections to the masters of one cluster (see the module docstring).

    Args:
        settings: the parsed URL. Nothing is contacted until the first command.
    """

    def __init__(self, settings: ClusterSettings) -> None:
        self._settings = settings
        self._startup = [f"{host}:{port}" for host, port in settings.addresses]
        self._clients: dict[str, redis.Redis] = {}
        self._lock = threading.RLock()  # held while asking for the slot map
        self._slot_map: SlotMap | None = None
        self._answered: list[str] = []

    def slot_map(self) -> SlotMap:
        """The current slot map, asked from the cluster first (and after a change).

        Raises:
            redis.ConnectionError: no node answers, or not every slot has a master.
        """
        slot_map = self._slot_map
        if slot_map is None:
            with self._lock:
                slot_map = self._slot_map
                if slot_map is None:
                    slot_map = self._slot_map = self._ask_slot_map()
        return slot_map

    def invalidate(self) -> None:
        """Forget the slot map: the next command asks the cluster again."""
        self._slot_map = None

    def run(self, calls: Mapping[str, Sequence[Command]]) -> dict[str, list[Any]]:
        """Send each master its commands, all masters before reading any reply.

        Args:
            calls: commands per master address, sent in order on one connection.

        Returns:
            Replies per master, in command order; a command that failed gives its
            ResponseError as the reply (NOSCRIPT, for instance), not raised.

        Raises:
            redis.ConnectionError / redis.TimeoutError: a master cannot be reached;
                `ClusterChanged` when one answers with a cluster error.
        """
        taken: dict[str, tuple[redis.Redis, Any]] = {}
        clean = False
        try:
            for address, commands in calls.items():
                pool = self._client(address).connection_pool
                connection = pool.get_connection()
                taken[address] = (pool, connection)
                _send(connection, connection.pack_commands(commands))
            replies: dict[str, list[Any]] = {}
            for address, commands in calls.items():
                connection = taken[address][1]
                replies[address] = [_read(connection) for _ in commands]
            clean = True
        except (RedisConnectionError, RedisTimeoutError):
            self.invalidate()
            raise
        finally:
            for pool, connection in taken.values():
                if not clean:
                    # Replies may still be on the way: never hand this socket out again.
                    connection.disconnect()
                pool.release(connection)
        for reply in (r for rs in replies.values() for r in rs):
            if _is_cluster_error(reply):
                self.invalidate()
                raise ClusterChanged(str(reply)) from reply
        return replies

    def run_scripts(self, calls: Mapping[str, Sequence[tuple[Script, list[bytes]]]]
                    ) -> dict[str, list[Any]]:
        """Run scripts on their masters at once, as `run` does, by EVALSHA.

        A master that has not cached a script (it restarted) answers NOSCRIPT without
        running it; those calls are sent again with the script's body.

        Raises:
            ResponseError: a script failed (the first failure); else as `run`.
        """
        replies = self.run({node: [script.by_sha(args) for script, args in runs]
                            for node, runs in calls.items()})
        missing = {node: [i for i, reply in enumerate(values) if isinstance(reply, NoScriptError)]
                   for node, values in replies.items()}
        retry = {node: [calls[node][i][0].by_body(calls[node][i][1]) for i in indexes]
                 for node, indexes in missing.items() if indexes}
        for node, values in self.run(retry).items() if retry else ():
            for index, value in zip(missing[node], values, strict=True):
                replies[node][index] = value
        return checked(replies)

    def close(self) -> None:
        """Close every connection pool."""
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()

    def _client(self, address: str) -> redis.Redis:
        client = self._clients.get(address)
        if client is None:
            with self._lock:
                client = self._clients.get(address)
                if client is None:
                    host, _, port = address.rpartition(":")
                    settings = self._settings
                    client = self._clients[address] = redis.Redis(
                        host=host, port=int(port), username=settings.username,
                        password=settings.password, socket_timeout=settings.socket_timeout,
                        socket_connect_timeout=settings.socket_connect_timeout,
                        retry=Retry(NoBackoff(), 0))
        return client

    def _ask_slot_map(self) -> SlotMap:
        # The node that answered last time first: a hung node costs a timeout per ask.
        known = list(dict.fromkeys([*self._answered, *self._clients, *self._startup]))
        failure: Exception | None = None
        for address in known:
            try:
                ranges = self._client(address).execute_command("CLUSTER", "SLOTS")
            except (RedisConnectionError, RedisTimeoutError) as error:
                failure = error
                continue
            except ResponseError as error:  # not a cluster node
                raise ClusterChanged(f"{address} is not a Redis Cluster node: {error}") from error
            self._answered = [address]
            return _slot_map(ranges, address)
        raise RedisConnectionError(f"no cluster node answered ({failure})")


def checked(replies: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The replies of `ClusterNodes.run`, once none is an error.

    Raises:
        ResponseError: the first error reply.
    """
    for values in replies.values():
        for value in values:
            if isinstance(value, ResponseError):
                raise value
    return replies


def _slot_map(ranges: list, asked: str) -> SlotMap:
    owners: list[str | None] = [None] * SLOT_COUNT
    for low, high, primary, *_replicas in ranges:
        host = primary[0].decode() if isinstance(primary[0], bytes) else str(primary[0])
        # An empty host means "the address you asked me on".
        address = f"{host}:{int(primary[1])}" if host else f"{asked.rpartition(':')[0]}:" \
            f"{int(primary[1])}"
        owners[low:high + 1] = [address] * (high - low + 1)
    if None in owners:
        raise ClusterChanged(f"{owners.count(None)} slots have no master (asked {asked})")
    complete = tuple(owner for owner in owners if owner is not None)
    return SlotMap(complete, tuple(sorted(set(complete))))


def _send(connection: Any, packed: list[bytes]) -> None:
    try:
        connection.send_packed_command(packed)
    except RedisConnectionError:
        # A pooled connection to a master that restarted: reconnect once.
        connection.disconnect()
        connection.send_packed_command(packed)


def _read(connection: Any) -> Any:
    try:
        return connection.read_response()
    except ResponseError as error:
        return error


def _is_cluster_error(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and (
        isinstance(reply, _CLUSTER_ERROR_TYPES)
        or any(text in str(reply) for text in _CLUSTER_ERROR_TEXTS))
