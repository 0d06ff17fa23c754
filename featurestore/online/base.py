"""The online store interface shared by the Redis and the embedded local backends.

An online store keeps, per (feature view, entity key), one opaque ``bytes`` state, plus
named metadata blobs (string dictionaries, watermarks). Everything lives under a
*version*: `write_version` stages a complete state, `publish` makes it visible to every
reader at once and drops the other versions. Readers see one version per call, never a
mix. Pushes modify the published version in place with `update_many`, atomically.

A materialization is one `write_version` (possibly streaming) and one `publish`. The
stores assume one materialization at a time (the offline DuckDB file admits one writer),
which is what lets `publish` drop every other version, including stagings abandoned by a
crashed run.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from types import TracebackType
from typing import TypeVar

Request = tuple[str, tuple]
"""A (feature view name, entity key tuple) pair."""

UpdateFunction = Callable[
    [list[bytes | None], dict[str, bytes | None]],
    tuple[Sequence[bytes | None], Mapping[str, bytes]],
]
"""Computes new states from current ones; see `OnlineStore.update_many`."""

_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What one `OnlineStore.read` saw, all from one published version.

    Attributes:
        version: the published version the values come from; None if nothing is
            published yet (then every state and metadata value is None).
        states: one entry per request, in request order; None where absent.
        metadata: one entry per requested metadata name; None where absent.
    """

    version: str | None
    states: list[bytes | None]
    metadata: dict[str, bytes | None]


class OnlineStore(ABC):
    """Versioned key-value storage of per-entity states, behind Redis or a local file.

    Concrete stores implement the abstract methods; `update`, `read_metadata` and
    `write_metadata` are conveniences built on them. Stores are safe to share between
    threads, and several processes may open the same backend.
    """

    @abstractmethod
    def write_version(
        self,
        version: str,
        items: Iterable[tuple[str, tuple, bytes]],
        metadata: Mapping[str, bytes] | None = None,
    ) -> int:
        """Stage states and metadata under `version`, invisible to readers until published.

        Writes are batched, so `items` may be a generator streaming a large load. Calling
        it again for the same staged version adds to (or overwrites within) it.

        Args:
            version: 1 to 64 characters from ``A-Z a-z 0-9 _ . -``; not the current one.
            items: (view, entity key, state) triples.
            metadata: named blobs stored with this version.

        Returns:
            The number of states written.

        Raises:
            ValueError: a bad version name, or `version` is the published one.
            OnlineStoreUnavailable: the backend cannot be reached.
        """

    @abstractmethod
    def publish(self, version: str) -> None:
        """Make a staged version visible to all readers at once, then drop all others.

        Raises:
            ValueError: `version` was never staged (or was dropped meanwhile).
            OnlineStoreUnavailable: the backend cannot be reached.
        """

    @abstractmethod
    def discard(self, version: str) -> None:
        """Drop a staged version that will not be published (a failed materialization).

        Raises:
            ValueError: `version` is the published one.
            OnlineStoreUnavailable: the backend cannot be reached.
        """

    @abstractmethod
    def read(self, requests: Sequence[Request], metadata_names: Sequence[str] = ()) -> ReadResult:
        """Read states and metadata of the published version, in one round trip usually.

        Args:
            requests: (view, entity key) pairs.
            metadata_names: metadata blobs to fetch in the same snapshot.

        Returns:
            The states and metadata, all from one version.

        Raises:
            InputError: an entity key is not a tuple of ints and strs.
            OnlineStoreUnavailable: the backend cannot be reached.
        """

    @abstractmethod
    def update_many(
        self,
        requests: Sequence[Request],
        fn: UpdateFunction,
        metadata_names: Sequence[str] = (),
    ) -> bool:
        """Atomically read, transform and write states of the published version.

        `fn(states, metadata)` receives the current states (in request order, None where
        absent) and the named metadata, and returns ``(new_states, new_metadata)``:
        ``new_states`` has one entry per request (None leaves that state unchanged) and
        ``new_metadata`` maps names, each one of `metadata_names`, to new values. No
        concurrent update or publish interleaves: `fn` may run more than once (when a
        concurrent writer forces a retry), so it must not have side effects.

        Args:
            requests: distinct (view, entity key) pairs.
            fn: the pure transformation.
            metadata_names: metadata read by `fn` and the only names it may write.

        Returns:
            True if applied; False if no version is published (nothing was written and
            `fn` was not called: there is no loaded state to modify).

        Raises:
            ValueError: duplicate requests, or `fn` returned a malformed result.
            OnlineStoreUnavailable: the backend cannot be reached, or writers on the
                same keys kept conflicting past the retry limit.
        """

    @abstractmethod
    def current_version(self) -> str | None:
        """The published version, or None if nothing is published."""

    @abstractmethod
    def ping(self) -> bool:
        """Check that the backend answers.

        Returns:
            True (an unreachable backend raises instead, carrying the reason).

        Raises:
            OnlineStoreUnavailable: the backend cannot be reached.
        """

    @abstractmethod
    def memory_usage(self, view: str, entity: tuple) -> int | None:
        """Bytes the backend spends on one state of the published version, None if absent."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""

    def update(self, view: str, entity: tuple, fn: Callable[[bytes | None], bytes]) -> bytes | None:
        """Atomically replace one state of the published version by `fn(old_state)`.

        Returns:
            The new state, or None if no version is published (nothing written).
        """
        written: list[bytes] = []

        def apply(states: list[bytes | None], _: dict[str, bytes | None]) -> tuple:
            # Keep only the last result: fn can run again after a conflict.
            written[:] = [fn(states[0])]
            return written, {}

        return written[0] if self.update_many([(view, entity)], apply) else None

    def read_metadata(self, name: str) -> bytes | None:
        """One metadata blob of the published version, None if absent."""
        return self.read([], [name]).metadata[name]

    def write_metadata(self, name: str, value: bytes) -> bool:
        """Set one metadata blob in the published version (False if none is published)."""
        return self.update_many([], lambda _states, _metadata: ([], {name: value}), [name])

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def check_project(project: str) -> str:
    """Validate a project name (it prefixes every key name and table row).

    Raises:
        ValueError: it is empty, too long, or has characters outside ``A-Za-z0-9_.-``.
    """
    if not isinstance(project, str) or not _NAME_PATTERN.fullmatch(project):
        raise ValueError(
            f"online store project {project!r}: expected 1 to 64 characters from A-Z a-z 0-9 _ . -"
        )
    return project


def check_version(version: str) -> str:
    """Validate a version name (it becomes part of key names).

    Raises:
        ValueError: it is empty, too long, or has characters outside ``A-Za-z0-9_.-``.
    """
    # The restricted alphabet keeps versions free of ':' (the key-name separator) and of
    # glob characters, so Redis SCAN patterns built from them need no escaping.
    if not isinstance(version, str) or not _NAME_PATTERN.fullmatch(version):
        raise ValueError(
            f"online store version {version!r}: expected 1 to 64 characters from A-Z a-z 0-9 _ . -"
        )
    return version


def check_view(view: str) -> str:
    """Validate a feature view name: non-empty, and no ':' (the key-name separator)."""
    if not isinstance(view, str) or not view or ":" in view:
        raise ValueError(f"feature view name {view!r}: expected a non-empty name without ':'")
    return view


def check_update_result(
    result: tuple[Sequence[bytes | None], Mapping[str, bytes]],
    request_count: int,
    metadata_names: Sequence[str],
) -> tuple[Sequence[bytes | None], Mapping[str, bytes]]:
    """Check what an `UpdateFunction` returned against what it was asked to update.

    Raises:
        ValueError: the shape is wrong or it writes metadata it did not read.
    """
    new_states, new_metadata = result
    if len(new_states) != request_count:
        raise ValueError(
            f"update function returned {len(new_states)} states for {request_count} requests"
        )
    if any(state is not None and not isinstance(state, bytes) for state in new_states):
        raise ValueError("update function returned a state that is neither bytes nor None")
    unread = set(new_metadata) - set(metadata_names)
    if unread:
        raise ValueError(
            f"update function wrote metadata {sorted(unread)} not listed in metadata_names"
        )
    return new_states, new_metadata


def check_distinct(requests: Sequence[Request]) -> None:
    """Reject duplicate (view, entity) pairs in one update: which write wins is unclear."""
    if len(set(requests)) != len(requests):
        raise ValueError("update requests must be distinct (view, entity key) pairs")


def batched(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """Yield lists of up to `size` consecutive items."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
