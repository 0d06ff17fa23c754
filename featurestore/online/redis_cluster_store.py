"""The online store on a Redis Cluster (``store.online: "redis+cluster://h:p,h:p,..."``).

Key layout (`cluster_keys`). Every key starts with a hash tag. A state's tag is derived
from its entity key alone, so one entity's states in every view share a slot, hence a
master. Each master has a "home" tag (the first ``{h<i>}`` whose slot it owns) holding
its own copy of the version pointer, the per-version ``staged`` and ``sealed`` markers,
and the metadata. Pointer values are ``<seq>:<version>``: every publish takes a new
sequence number (INCR in the project's slot), so versions are ordered.

Reads. A lookup sends ONE read-only script to each master it touches, all masters at
once (`ClusterNodes.run`), under the version the store last saw (the hint). Each returns
that master's pointer, whether the hinted version is sealed there, its metadata copy
with the copy's sequence, and the states. The read is accepted when every touched
pointer equals the hint, or names an older version while the hint is sealed on that
master: a publish seals its version on every master before switching any pointer, so a
half-done publish (even one whose process died) is complete for readers, who roll it
forward. Otherwise the hint becomes the newest pointer seen and the read is repeated (a
few times, then OnlineStoreUnavailable). Metadata is the copy with the highest sequence
among the touched masters (a read without requests asks the project's slot's master).

Writes hold a project write lock (``SET NX PX 10000`` in the project slot, released by a
compare-and-delete script; a writer that died frees it when the lease runs out).
- `write_version` marks the version staged on every master, then writes the states
  with one cross-slot script per master and batch (faster than pipelined per-slot SETs,
  measured) and a metadata copy on every master. It does not take the lock.
- `publish` checks the version is staged everywhere, seals it everywhere, switches each
  master's pointer (only to a sealed, newer version), then drops every other version by
  SCAN and UNLINK on each master.
- `update_many` reads as above, calls `fn`, writes the new metadata to every master's
  copy first (one new metadata sequence), then the states, one script per master that
  writes only while the version is sealed there (a dropped version never comes back).
  One entity's states are written by one script, so each entity changes atomically.
  Dictionaries only grow, so a reader seeing metadata newer than states is fine, and a
  state is never newer than the metadata copy on its own master.

A master that is down, a timeout or a cluster error (CLUSTERDOWN, MOVED, TRYAGAIN, a key
a master no longer owns) raises OnlineStoreUnavailable with the redacted URL; the slot
map is asked again before the next command, and the same store object works again once
the cluster does. An update that loses a master midway raises too and may be partly
applied (each entity wholly or not at all). `current_version`, `write_version` and
`discard` finish a publish that died between pointer switches. Known limit: after a
reshard moves a home tag's slot, a master's home changes and readers find no pointer
there until the next publish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from featurestore.credentials import redact_url
from featurestore.errors import OnlineStoreUnavailable
from featurestore.online import cluster_scripts as scripts
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
from featurestore.online.cluster_keys import ClusterKeys, entity_tag, home_tags, tag_slot
from featurestore.online.cluster_lock import project_lock
from featurestore.online.cluster_nodes import (
    ClusterChanged,
    ClusterNodes,
    SlotMap,
    checked,
    parse_cluster_url,
)
from featurestore.online.cluster_pointers import Pointer, acceptable, parse_pointer
from featurestore.online.cluster_scripts import Script
from featurestore.online.entity_keys import encode_entity_key

_KEYS_PER_BATCH = 1000
_BATCHES_PER_ROUND = 8
_SCAN_COUNT = 1000
_READ_ATTEMPTS = 4
_HEAD_CACHE_SIZE = 256
_UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError, OutOfMemoryError, ReadOnlyError)


@dataclass(frozen=True)
class Layout:
    """Where things live for one slot map: each master's home tag, the project's master."""

    slots: SlotMap
    homes: dict[str, bytes]
    project_node: str

    def owner(self, slot: int) -> str:
        """The master address owning `slot`."""
        return self.slots.owners[slot]


class _Located(NamedTuple):
    slot: int
    tag: bytes
    view_part: bytes
    entity: bytes


class _Snapshot(NamedTuple):
    pointer: Pointer | None
    states: list[bytes | None]
    metadata: dict[str, bytes | None]
    metadata_sequence: int


class RedisClusterOnlineStore(OnlineStore):
    """Online store on a Redis Cluster (layout and guarantees in the module docstring).

    Args:
        url: ``redis+cluster://[[user]:password@]host:port[,host:port...]``, optionally
            with ``?socket_timeout=5&socket_connect_timeout=1``. Nothing is contacted yet.
        project: the project name; it is part of every key.

    Raises:
        ValueError: a malformed URL (the message never shows the password).
    """

    def __init__(self, url: str, project: str) -> None:
        self._display_url = redact_url(url)
        self._nodes = ClusterNodes(parse_cluster_url(url))
        self._keys = ClusterKeys(check_project(project))
        self._layout_cache: Layout | None = None
        # The last published version seen; only a hint, every read checks it.
        self._hint: Pointer | None = None
        self._view_parts: dict[str, bytes] = {}
        self._head_cache: dict[tuple[bytes, str, tuple[str, ...]], list[bytes]] = {}

    def write_version(
        self,
        version: str,
        items: Iterable[tuple[str, tuple, bytes]],
        metadata: Mapping[str, bytes] | None = None,
    ) -> int:
        """See `OnlineStore.write_version`: per master, scripts of ~1000/masters states."""
        check_version(version)
        keys = self._keys
        with self._unavailable_on_error():
            layout = self._layout()
            newest = self._newest_pointer(layout, finish=True)
            if newest is not None and newest.version == version:
                raise ValueError(f"cannot stage version {version!r}: it is the published one")
            self._on_every_master(layout, scripts.SET_PAIRS, lambda home: [
                keys.version_key(home, version, b"staged"), b"1"])
            written = 0
            pending: dict[str, list[tuple[Script, list[bytes]]]] = {}
            for number, batch in enumerate(batched(items, _KEYS_PER_BATCH), start=1):
                groups: dict[str, list[bytes]] = {}
                for view, entity, state in batch:
                    where = self._locate(view, entity)
                    groups.setdefault(layout.owner(where.slot), []).extend(
                        (self._state_key(where, version), state))
                for node, args in groups.items():
                    pending.setdefault(node, []).append((scripts.SET_PAIRS, args))
                written += len(batch)
                if number % _BATCHES_PER_ROUND == 0:
                    self._nodes.run_scripts(pending)
                    pending = {}
            for node, home in layout.homes.items() if metadata else ():
                args = [part for name, blob in metadata.items()
                        for part in (keys.version_key(home, version, _metadata_suffix(name)),
                                     blob)]
                pending.setdefault(node, []).append((scripts.SET_PAIRS, args))
            if pending:
                self._nodes.run_scripts(pending)
        return written

    def publish(self, version: str) -> None:
        """See `OnlineStore.publish`: seal everywhere, switch every pointer, drop the rest."""
        check_version(version)
        with self._unavailable_on_error(), self._write_lock():
            layout = self._layout()
            staged = self._get_each({node: [self._keys.version_key(home, version, b"staged")]
                                     for node, home in layout.homes.items()})
            if any(values[0] is None for values in staged.values()):
                raise ValueError(f"cannot publish version {version!r}: it was not staged")
            project = layout.project_node
            seq = checked(self._nodes.run({project: [("INCR", self._keys.sequence_key)]}))
            pointer = Pointer(int(seq[project][0]), version)
            self._seal(layout, pointer)
            self._switch_pointers(layout, pointer)
            self._hint = pointer
            self._drop_versions(layout, lambda seen: seen != version)

    def discard(self, version: str) -> None:
        """See `OnlineStore.discard`: markers first on every master, then the keys."""
        check_version(version)
        keys = self._keys
        with self._unavailable_on_error(), self._write_lock():
            layout = self._layout()
            newest = self._newest_pointer(layout, finish=True)
            if newest is not None and newest.version == version:
                raise ValueError(f"cannot discard version {version!r}: it is the published one")
            self._on_every_master(layout, scripts.UNLINK_EACH, lambda home: [
                keys.version_key(home, version, b"staged"),
                keys.version_key(home, version, b"sealed")])
            self._drop_versions(layout, lambda seen: seen == version)

    def read(self, requests: Sequence[Request], metadata_names: Sequence[str] = ()) -> ReadResult:
        """See `OnlineStore.read`: one script per touched master, sent to all at once."""
        names = [_check_metadata_name(name) for name in metadata_names]
        located = [self._locate(view, entity) for view, entity in requests]
        with self._unavailable_on_error():
            snapshot = self._snapshot(located, names, every_node=False)
        version = None if snapshot.pointer is None else snapshot.pointer.version
        return ReadResult(version, snapshot.states, snapshot.metadata)

    def update_many(
        self,
        requests: Sequence[Request],
        fn: UpdateFunction,
        metadata_names: Sequence[str] = (),
    ) -> bool:
        """See `OnlineStore.update_many`: under the project write lock, metadata first."""
        check_distinct(requests)
        names = [_check_metadata_name(name) for name in metadata_names]
        located = [self._locate(view, entity) for view, entity in requests]
        keys = self._keys
        with self._unavailable_on_error(), self._write_lock():
            # Metadata is read from every master: the newest copy is the base even when
            # a writer died after updating some copies only.
            snapshot = self._snapshot(located, names, every_node=bool(names))
            if snapshot.pointer is None:
                return False
            new_states, new_metadata = check_update_result(
                fn(list(snapshot.states), dict(snapshot.metadata)), len(requests), names)
            version = snapshot.pointer.version
            layout = self._layout()
            if new_metadata:
                sequence = b"%d" % (snapshot.metadata_sequence + 1)
                calls = {}
                for node, home in layout.homes.items():
                    args = [keys.version_key(home, version, b"sealed"),
                            keys.version_key(home, version, b"mseq"), sequence]
                    for name, blob in new_metadata.items():
                        args += [keys.version_key(home, version, _metadata_suffix(name)), blob]
                    calls[node] = [(scripts.SET_PAIRS_IF_SEALED, args)]
                self._check_still_sealed(self._nodes.run_scripts(calls), version)
            groups: dict[str, list[bytes]] = {}
            for where, state in zip(located, new_states, strict=True):
                if state is not None:
                    node = layout.owner(where.slot)
                    args = groups.setdefault(node, [
                        keys.version_key(layout.homes[node], version, b"sealed")])
                    args += [self._state_key(where, version), state]
            if groups:
                self._check_still_sealed(self._nodes.run_scripts(
                    {node: [(scripts.SET_PAIRS_IF_SEALED, args)] for node, args in groups.items()}
                ), version)
        return True

    def current_version(self) -> str | None:
        """See `OnlineStore.current_version`: the newest pointer across the masters."""
        with self._unavailable_on_error():
            pointer = self._newest_pointer(self._layout(), finish=True)
        self._hint = pointer
        return None if pointer is None else pointer.version

    def ping(self) -> bool:
        """See `OnlineStore.ping`: every master must answer."""
        with self._unavailable_on_error():
            layout = self._layout()
            checked(self._nodes.run({node: [("PING",)] for node in layout.slots.primaries}))
        return True

    def memory_usage(self, view: str, entity: tuple) -> int | None:
        """Bytes the entity's master uses for the key and value (MEMORY USAGE, SAMPLES 0)."""
        where = self._locate(view, entity)
        version = self.current_version()
        if version is None:
            return None
        with self._unavailable_on_error():
            node = self._layout().owner(where.slot)
            command = ("MEMORY", "USAGE", self._state_key(where, version), "SAMPLES", 0)
            reply = checked(self._nodes.run({node: [command]}))[node][0]
        return None if reply is None else int(reply)

    def close(self) -> None:
        """See `OnlineStore.close`."""
        self._nodes.close()

    def _snapshot(self, located: list[_Located], names: list[str], every_node: bool) -> _Snapshot:
        """States and metadata of one published version (the protocol in the docstring)."""
        hint = self._hint
        problem = ": the published version kept changing during a read"
        for _ in range(_READ_ATTEMPTS):
            try:
                layout = self._layout()
                if hint is None:
                    # No version seen yet: ask every master, not only the touched ones.
                    hint = self._newest_pointer(layout)
                    if hint is None:
                        return _Snapshot(None, [None] * len(located), dict.fromkeys(names), 0)
                positions: dict[str, list[int]] = {}
                for index, where in enumerate(located):
                    positions.setdefault(layout.owner(where.slot), []).append(index)
                nodes = (list(layout.slots.primaries) if every_node
                         else list(positions) or [layout.project_node])
                version = hint.version
                calls = {}
                for node in nodes:
                    calls[node] = [
                        *self._head_keys(layout.homes[node], version, names),
                        *(self._state_key(located[i], version) for i in positions.get(node, ()))]
                replies = self._get_each(calls)
            except ClusterChanged as error:
                problem = f" is unavailable: {error}"
                continue
            pointers = {node: parse_pointer(values[0]) for node, values in replies.items()}
            if all(acceptable(hint, pointers[node], values[1] is not None)
                   for node, values in replies.items()):
                self._hint = hint
                return _assemble(hint, replies, positions, len(located), names)
            seen = [pointer for pointer in pointers.values() if pointer is not None]
            hint = max(seen) if seen else None
        raise OnlineStoreUnavailable(f"online store {self._display_url}{problem}")

    def _head_keys(self, home: bytes, version: str, names: list[str]) -> list[bytes]:
        """What a read asks a master before the states: its pointer, the version's seal,
        metadata sequence and metadata copies. Lookups ask the same few lists again and
        again, so they are kept (a handful per published version)."""
        cache_key = (home, version, tuple(names))
        found = self._head_cache.get(cache_key)
        if found is None:
            if len(self._head_cache) >= _HEAD_CACHE_SIZE:
                self._head_cache.clear()
            keys = self._keys
            found = self._head_cache[cache_key] = [
                keys.pointer_key(home), keys.version_key(home, version, b"sealed"),
                keys.version_key(home, version, b"mseq"),
                *(keys.version_key(home, version, _metadata_suffix(n)) for n in names)]
        return found

    def _seal(self, layout: Layout, pointer: Pointer) -> None:
        """Mark the version sealed on every master (it must still be staged everywhere)."""
        keys = self._keys
        replies = self._on_every_master(layout, scripts.SEAL, lambda home: [
            keys.version_key(home, pointer.version, b"staged"),
            keys.version_key(home, pointer.version, b"sealed"), b"%d" % pointer.seq])
        if not all(values[0] for values in replies.values()):
            raise ValueError(f"cannot publish version {pointer.version!r}: it was not staged "
                             "(discarded meanwhile)")

    def _switch_pointers(self, layout: Layout, pointer: Pointer) -> None:
        """Point every master at the sealed version (a step of `publish`)."""
        keys = self._keys
        self._on_every_master(layout, scripts.SWITCH_POINTER, lambda home: [
            keys.pointer_key(home), keys.version_key(home, pointer.version, b"sealed"),
            pointer.encode(), b"%d" % pointer.seq])

    def _drop_versions(self, layout: Layout, doomed: Callable[[str], bool]) -> None:
        """SCAN every master (all at once, round by round) and UNLINK doomed versions' keys."""
        keys = self._keys
        cursors: dict[str, Any] = dict.fromkeys(layout.slots.primaries, 0)
        while cursors:
            replies = checked(self._nodes.run({
                node: [("SCAN", cursor, "MATCH", keys.versions_pattern, "COUNT", _SCAN_COUNT)]
                for node, cursor in cursors.items()}))
            unlinks = {}
            for node, ((cursor, found),) in replies.items():
                victims = [key for key in found
                           if (seen := keys.version_of(key)) is not None and doomed(seen)]
                if victims:
                    unlinks[node] = [(scripts.UNLINK_EACH, victims)]
                if int(cursor) == 0:
                    del cursors[node]
                else:
                    cursors[node] = cursor
            if unlinks:
                self._nodes.run_scripts(unlinks)

    def _newest_pointer(self, layout: Layout, finish: bool = False) -> Pointer | None:
        """The newest pointer on any master (that version is sealed on every master).

        With `finish`, masters still pointing at an older version are switched to it:
        that completes a publish whose process died between switching pointers. (The
        switch script only moves a pointer to a sealed, newer version, so this is safe
        next to a live publish too.)
        """
        replies = checked(self._nodes.run({
            node: [("GET", self._keys.pointer_key(home))] for node, home in layout.homes.items()}))
        pointers = {node: parse_pointer(values[0]) for node, values in replies.items()}
        newest = max((p for p in pointers.values() if p is not None), default=None)
        behind = [node for node, pointer in pointers.items() if pointer != newest]
        if finish and newest is not None and behind:
            self._switch_pointers(Layout(layout.slots, {node: layout.homes[node]
                                                        for node in behind},
                                         layout.project_node), newest)
        return newest

    def _get_each(self, keys: Mapping[str, list[bytes]]) -> dict[str, list[Any]]:
        """The values of keys per master (one GET_EACH script each, all at once)."""
        replies = self._nodes.run_scripts({node: [(scripts.GET_EACH, args)]
                                           for node, args in keys.items()})
        return {node: values[0] for node, values in replies.items()}

    def _on_every_master(self, layout: Layout, script: Script,
                         args_of: Callable[[bytes], list[bytes]]) -> dict[str, list[Any]]:
        """Run `script` on every master at once, with the arguments of its home tag."""
        return self._nodes.run_scripts({node: [(script, args_of(home))]
                                        for node, home in layout.homes.items()})

    def _check_still_sealed(self, replies: dict[str, list[Any]], version: str) -> None:
        if not all(values[0] for values in replies.values()):
            raise OnlineStoreUnavailable(
                f"online store {self._display_url}: version {version!r} was dropped during an "
                "update (the write lock's lease ran out); the update was not fully applied")

    def _write_lock(self) -> AbstractContextManager[None]:
        return project_lock(self._nodes, lambda: self._layout().project_node,
                            self._keys.lock_key, self._display_url)

    def _layout(self) -> Layout:
        slot_map = self._nodes.slot_map()
        layout = self._layout_cache
        if layout is None or layout.slots is not slot_map:
            layout = self._layout_cache = Layout(
                slot_map, home_tags(slot_map.owners, slot_map.primaries),
                slot_map.owners[tag_slot(self._keys.project_tag)])
        return layout

    def _locate(self, view: str, entity: tuple) -> _Located:
        part = self._view_parts.get(view)
        if part is None:
            part = self._view_parts[view] = b"s:" + check_view(view).encode() + b":"
        encoded = encode_entity_key(entity)
        tag = entity_tag(encoded)
        return _Located(tag_slot(tag), tag, part, encoded)

    def _state_key(self, where: _Located, version: str) -> bytes:
        return self._keys.state_key(where.tag, version, where.view_part, where.entity)

    @contextmanager
    def _unavailable_on_error(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE_ERRORS as error:
            raise OnlineStoreUnavailable(
                f"online store {self._display_url} is unavailable: {error}"
            ) from error


def _assemble(hint: Pointer, replies: dict[str, list[Any]], positions: dict[str, list[int]],
              count: int, names: list[str]) -> _Snapshot:
    """Put the per-master answers back in request order; metadata from the newest copy."""
    head = 3 + len(names)
    states: list[bytes | None] = [None] * count
    for node, indexes in positions.items():
        for index, value in zip(indexes, replies[node][head:], strict=True):
            states[index] = value
    newest = max(replies, key=lambda node: int(replies[node][2] or 0))
    metadata = dict(zip(names, replies[newest][3:head], strict=True))
    return _Snapshot(hint, states, metadata, int(replies[newest][2] or 0))


def _check_metadata_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"metadata name {name!r}: expected a non-empty string")
    return name


def _metadata_suffix(name: str) -> bytes:
    return b"m:" + _check_metadata_name(name).encode()
