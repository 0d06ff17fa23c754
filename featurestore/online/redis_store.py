"""The online store on Redis.

Key layout. Every key of a project starts with ``fs:<project>:``; ``<entity>`` is the
binary `encode_entity_key` of the key tuple (Redis keys are binary-safe):

    fs:<project>:current                        name of the published version
    fs:<project>:v:<version>:staged             marker "1": the version exists
    fs:<project>:v:<version>:s:<view>:<entity>  state blob of one entity in one view
    fs:<project>:v:<version>:m:<name>           metadata blob

Atomic visibility. Readers keep a hint of the published version and send one MGET for
the pointer together with the keys under the hinted version. MGET is atomic, and a
version's keys are deleted only after the pointer has moved away from it, so when the
returned pointer equals the hint every value came from that version; otherwise the read
is repeated once under the version just seen.

Atomic updates. `update_many` WATCHes the pointer and the keys it reads, computes the
new values in Python and writes them in MULTI/EXEC. A concurrent update of the same keys,
a publish (which sets the pointer) or the drop of the old version (which deletes the keys)
aborts the EXEC, and the update is retried against the current state.

Connections use short timeouts (1 s connect, 5 s per command; ``socket_timeout`` and
``socket_connect_timeout`` in the URL query override them) and retry once on a broken
connection, which is what makes a store object usable again after Redis restarts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, WatchError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from featurestore.credentials import redact_url
from featurestore.errors import OnlineStoreUnavailable
from featurestore.online.base import (
    OnlineStore,
    ReadResult,
    Request,
    UpdateFunction,
    batched,
    check_distinct,
    check_project,
    check_update_result,
    check_version,
    check_view,
)
from featurestore.online.entity_keys import encode_entity_key

_CONNECT_TIMEOUT_S = 1.0
_SOCKET_TIMEOUT_S = 5.0
_KEYS_PER_MSET = 1000
_MSETS_PER_ROUND_TRIP = 8
_SCAN_COUNT = 1000
_KEYS_PER_UNLINK = 1000
_READ_ATTEMPTS = 4
_UPDATE_ATTEMPTS = 200
# Errors meaning "the store cannot serve now", as opposed to a bug in a command.
_UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError, OutOfMemoryError, ReadOnlyError)

# Switch the pointer only if the version's marker still exists: a discarded or dropped
# version must never become visible. One script call keeps the check and the switch atomic.
_PUBLISH_SCRIPT = """
if redis.call('EXISTS', KEYS[2]) == 0 then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

_MOVED = object()  # _try_update's answer when the published version changed under it


class RedisOnlineStore(OnlineStore):
    """Online store on a Redis server (layout and guarantees in the module docstring).

    Args:
        url: a ``redis://``, ``rediss://`` or ``unix://`` URL.
        project: the project name; it prefixes every key, so projects can share a server.
    """

    def __init__(self, url: str, project: str) -> None:
        self._display_url = redact_url(url)
        # Retry once on ConnectionError only: that reconnects a pooled connection that
        # died with a restarted server, while a server that is down fails in one connect
        # timeout. Timeouts are not retried, so a hung server costs one timeout, not two.
        self._client = redis.Redis.from_url(
            url,
            socket_connect_timeout=_CONNECT_TIMEOUT_S,
            socket_timeout=_SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1, (RedisConnectionError,)),
        )
        self._prefix = b"fs:" + check_project(project).encode() + b":"
        self._pointer_key = self._prefix + b"current"
        self._publish_script = self._client.register_script(_PUBLISH_SCRIPT)
        # The last published version seen; only a hint, every read checks it.
        self._version_hint: str | None = None
        self._view_parts: dict[str, bytes] = {}

    def write_version(
        self,
        version: str,
        items: Iterable[tuple[str, tuple, bytes]],
        metadata: Mapping[str, bytes] | None = None,
    ) -> int:
        """See `OnlineStore.write_version`; MSETs of 1000 keys, 8 per round trip."""
        prefix = self._version_prefix(check_version(version))
        with self._unavailable_on_error():
            if self.current_version() == version:
                raise ValueError(f"cannot stage version {version!r}: it is the published one")
            self._client.set(prefix + b"staged", b"1")
            written = 0
            with self._client.pipeline(transaction=False) as pipe:
                for batch in batched(items, _KEYS_PER_MSET):
                    pipe.mset({prefix + self._state_suffix(v, e): s for v, e, s in batch})
                    written += len(batch)
                    if len(pipe) >= _MSETS_PER_ROUND_TRIP:
                        pipe.execute()
                if metadata:
                    pipe.mset({prefix + _metadata_suffix(n): b for n, b in metadata.items()})
                pipe.execute()
        return written

    def publish(self, version: str) -> None:
        """See `OnlineStore.publish`; old keys are removed by SCAN and batched UNLINK."""
        prefix = self._version_prefix(check_version(version))
        with self._unavailable_on_error():
            switched = self._publish_script(keys=[self._pointer_key, prefix + b"staged"],
                                            args=[version])
            if not switched:
                raise ValueError(f"cannot publish version {version!r}: it was not staged")
            self._version_hint = version
            self._unlink_matching(self._prefix + b"v:*", keep_prefix=prefix)

    def discard(self, version: str) -> None:
        """See `OnlineStore.discard`."""
        prefix = self._version_prefix(check_version(version))
        with self._unavailable_on_error():
            if self.current_version() == version:
                raise ValueError(f"cannot discard version {version!r}: it is the published one")
            # The marker goes first, so a publish racing this discard fails cleanly.
            self._client.unlink(prefix + b"staged")
            self._unlink_matching(prefix + b"*")

    def read(self, requests: Sequence[Request], metadata_names: Sequence[str] = ()) -> ReadResult:
        """See `OnlineStore.read`: one MGET when the version hint is current."""
        suffixes = [self._state_suffix(view, entity) for view, entity in requests]
        names = list(metadata_names)
        suffixes.extend(_metadata_suffix(name) for name in names)
        count = len(requests)
        version = self._version_hint
        with self._unavailable_on_error():
            for _ in range(_READ_ATTEMPTS):
                keys = [self._pointer_key]
                if version is not None:
                    prefix = self._version_prefix(version)
                    keys.extend(prefix + suffix for suffix in suffixes)
                values = self._client.mget(keys)
                seen = _decode_version(values[0])
                if seen == version:
                    if version is None:
                        return ReadResult(None, [None] * count, dict.fromkeys(names))
                    return ReadResult(version, values[1 : count + 1],
                                      dict(zip(names, values[count + 1 :], strict=True)))
                version = self._version_hint = seen
        raise OnlineStoreUnavailable(
            f"online store {self._display_url}: the published version kept changing during a read"
        )

    def update_many(
        self,
        requests: Sequence[Request],
        fn: UpdateFunction,
        metadata_names: Sequence[str] = (),
    ) -> bool:
        """See `OnlineStore.update_many`: WATCH, MGET, then MULTI/EXEC, retried on conflict."""
        check_distinct(requests)
        names = list(metadata_names)
        suffixes = [self._state_suffix(view, entity) for view, entity in requests]
        suffixes.extend(_metadata_suffix(name) for name in names)
        with self._unavailable_on_error(), self._client.pipeline(transaction=True) as pipe:
            conflicts = 0
            for _ in range(_UPDATE_ATTEMPTS):
                try:
                    outcome = self._try_update(pipe, suffixes, len(requests), names, fn)
                except WatchError:
                    conflicts += 1
                    # Jitter so that writers contending for one key stop colliding.
                    time.sleep(random.uniform(0, 0.0005 * min(conflicts, 20)))
                    continue
                finally:
                    pipe.reset()
                if outcome is not _MOVED:
                    return bool(outcome)
        raise OnlineStoreUnavailable(
            f"online store {self._display_url}: an update gave up after {_UPDATE_ATTEMPTS} "
            "attempts because concurrent writers kept changing the same keys"
        )

    def current_version(self) -> str | None:
        """See `OnlineStore.current_version`."""
        with self._unavailable_on_error():
            version = _decode_version(self._client.get(self._pointer_key))
        self._version_hint = version
        return version

    def ping(self) -> bool:
        """See `OnlineStore.ping`."""
        with self._unavailable_on_error():
            return bool(self._client.ping())

    def memory_usage(self, view: str, entity: tuple) -> int | None:
        """Bytes Redis uses for the key and value (MEMORY USAGE, exact: SAMPLES 0)."""
        suffix = self._state_suffix(view, entity)
        version = self.current_version()
        if version is None:
            return None
        with self._unavailable_on_error():
            return self._client.memory_usage(self._version_prefix(version) + suffix, samples=0)

    def close(self) -> None:
        """See `OnlineStore.close`."""
        self._client.close()

    def _try_update(
        self,
        pipe: Pipeline,
        suffixes: list[bytes],
        request_count: int,
        names: list[str],
        fn: UpdateFunction,
    ) -> object:
        """One optimistic attempt: True or False as `update_many`, or `_MOVED`.

        Raises WatchError when a watched key changed before EXEC (the caller retries).
        """
        version = self._version_hint
        if version is None:
            version = self.current_version()
            if version is None:
                return False
        prefix = self._version_prefix(version)
        keys = [prefix + suffix for suffix in suffixes]
        pipe.watch(self._pointer_key, *keys)
        values = pipe.mget([self._pointer_key, *keys])
        seen = _decode_version(values[0])
        if seen != version:
            self._version_hint = seen
            return False if seen is None else _MOVED
        metadata = dict(zip(names, values[request_count + 1 :], strict=True))
        new_states, new_metadata = check_update_result(
            fn(values[1 : request_count + 1], metadata), request_count, names
        )
        writes = {key: state for key, state in zip(keys[:request_count], new_states, strict=True)
                  if state is not None}
        writes.update({prefix + _metadata_suffix(n): b for n, b in new_metadata.items()})
        if writes:
            pipe.multi()
            pipe.mset(writes)
            self._commit(pipe)
        return True

    def _commit(self, pipe: Pipeline) -> None:
        try:
            pipe.execute()
        except WatchError as error:
            # redis-py turns a connection lost during EXEC into WatchError. Unlike a
            # conflict it leaves the outcome unknown, so retrying could apply fn twice.
            if isinstance(error.__context__, RedisConnectionError):
                raise OnlineStoreUnavailable(
                    f"online store {self._display_url}: connection lost while committing an "
                    "update; it may or may not have been applied"
                ) from error
            raise

    def _unlink_matching(self, pattern: bytes, keep_prefix: bytes | None = None) -> None:
        for batch in batched(self._scan(pattern, keep_prefix), _KEYS_PER_UNLINK):
            # UNLINK frees the memory in a background thread of Redis: no stall.
            self._client.unlink(*batch)

    def _scan(self, pattern: bytes, keep_prefix: bytes | None) -> Iterator[bytes]:
        for key in self._client.scan_iter(match=pattern, count=_SCAN_COUNT):
            if keep_prefix is None or not key.startswith(keep_prefix):
                yield key

    def _version_prefix(self, version: str) -> bytes:
        return self._prefix + b"v:" + version.encode() + b":"

    def _state_suffix(self, view: str, entity: tuple) -> bytes:
        part = self._view_parts.get(view)
        if part is None:
            part = self._view_parts[view] = b"s:" + check_view(view).encode() + b":"
        return part + encode_entity_key(entity)

    @contextmanager
    def _unavailable_on_error(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE_ERRORS as error:
            raise OnlineStoreUnavailable(
                f"online store {self._display_url} is unavailable: {error}"
            ) from error


def _metadata_suffix(name: str) -> bytes:
    if not isinstance(name, str) or not name:
        raise ValueError(f"metadata name {name!r}: expected a non-empty string")
    return b"m:" + name.encode()


def _decode_version(value: bytes | None) -> str | None:
    return None if value is None else value.decode()
