"""The value stored online per (feature view, entity): the state and its newest event.

A version published with the metadata `STATE_FORMAT` (`featurestore.online.published`)
set to `NEWEST_FORMAT` stores, per (view, entity), the kernels' state blob followed by
8 bytes: the time of the entity's newest event folded into the state, little-endian
int64 microseconds since the epoch (`UNKNOWN_NEWEST` when the offline state predates
newest times). Versions published before that format hold the bare state blob; they
are read with every newest time unknown, and pushes keep writing them bare, so an
online store keeps working until the next materialization republishes it.

This module is the one place that writes and splits those values (materialization,
push and lookups call it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from featurestore.online.published import NEWEST_FORMAT, STATE_FORMAT

UNKNOWN_NEWEST = -(2**63)
"""Stored newest time meaning "not known"."""
_TRAILER = 8


def has_newest_times(metadata: Mapping[str, bytes | None]) -> bool:
    """Whether a read's metadata (which asked for `STATE_FORMAT`) says values carry
    their newest event time."""
    return metadata.get(STATE_FORMAT) == NEWEST_FORMAT


def join_value(state: bytes, newest_us: int | None) -> bytes:
    """The stored value of a state whose newest event is at `newest_us` (None: unknown)."""
    newest = UNKNOWN_NEWEST if newest_us is None else int(newest_us)
    return state + newest.to_bytes(_TRAILER, "little", signed=True)


def split_value(value: bytes) -> tuple[bytes, int | None]:
    """A stored value (of a `NEWEST_FORMAT` version) as (state, newest time or None)."""
    newest = int.from_bytes(value[-_TRAILER:], "little", signed=True)
    return value[:-_TRAILER], None if newest == UNKNOWN_NEWEST else newest


def split_values(values: Sequence[bytes | None], framed: bool
                 ) -> tuple[list[bytes | None], list[int | None]]:
    """Stored values as (states, newest times); None stays None (no state).

    Args:
        values: what the online store returned.
        framed: whether the version carries newest times (`has_newest_times`).
    """
    if not framed:
        return list(values), [None] * len(values)
    states: list[bytes | None] = []
    newest: list[int | None] = []
    for value in values:
        if value is None:
            states.append(None)
            newest.append(None)
        else:
            state, time = split_value(value)
            states.append(state)
            newest.append(time)
    return states, newest


def newest_per_entity(entity: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The newest event time of each distinct entity of events sorted by (entity, time),
    in the order the entities first appear (the order `update_states` returns them)."""
    if len(entity) == 0:
        return np.zeros(0, np.int64)
    last = np.flatnonzero(np.append(np.diff(entity) != 0, True))
    return np.asarray(ts, dtype=np.int64)[last]


def later(old: int | None, new: int | None) -> int | None:
    """The later of two newest times (None: unknown)."""
    if old is None:
        return new
    if new is None:
        return old
    return max(old, new)
