"""Window arithmetic shared by the offline and the online path.

Times are int64 microseconds. A window `w` with hop `h` at time `t` covers
`[floor(t, h) - w, t)`: the *tail* `[floor(t, h) - w, floor(t, h))` is whole hops and the
*head* `[floor(t, h), t)` is exact. Tiles exist at levels `k = 0..K` of size
`h * LEVEL_RATIO**k`; `decompose` cuts a tail into aligned tiles, greedily taking the
largest tile that starts at the current position and fits. Both paths call this one
function, which is what makes their merge trees, and so their floats, identical.

A tile is addressed by a float64 *key* that orders tiles by (level, index); it is exact
because it stays below 2**53.
"""

from __future__ import annotations

import numba
import numpy as np

LEVEL_RATIO = 4
_LEVEL_SPAN = float(2**45)  # keys of one level occupy [level * 2**45, (level + 1) * 2**45)
_INDEX_BIAS = float(2**44)  # lets pre-1970 (negative) tile indexes keep their order


def top_level(window_hops: int) -> int:
    """Highest tile level worth keeping for a window of `window_hops` hops."""
    level = 0
    while LEVEL_RATIO ** (level + 1) <= window_hops:
        level += 1
    return level


def max_blocks(window_hops: int, levels: int) -> int:
    """Upper bound on the number of tiles `decompose` returns for one window."""
    top = LEVEL_RATIO ** (levels - 1)
    return 2 * (LEVEL_RATIO - 1) * levels + window_hops // top + 2


@numba.njit(cache=True, inline="always")
def floor_div(a: int, b: int) -> int:
    """Floor division of int64 values (also right for negative times)."""
    return a // b


@numba.njit(cache=True, inline="always")
def tile_key(level: int, index: int) -> float:
    """Key of tile `index` at `level` (index = start // tile size)."""
    return level * 2.0**45 + (index + 2.0**44)


@numba.njit(cache=True, inline="always")
def tile_level(key: float) -> int:
    """Level of a tile key."""
    return int(key // 2.0**45)


@numba.njit(cache=True, inline="always")
def tile_index(key: float) -> int:
    """Index of a tile key within its level."""
    return int(key - tile_level(key) * 2.0**45 - 2.0**44)


@numba.njit("int64(int64, int64, int64, int64[::1], int64[::1])", cache=True)
def decompose(start: int, stop: int, levels: int, out_level: np.ndarray,
              out_index: np.ndarray) -> int:
    """Cut the hop range `[start, stop)` into aligned tiles, in time order.

    Args:
        start: first hop index of the tail (inclusive).
        stop: hop index where the head begins (exclusive).
        levels: number of tile levels (sizes LEVEL_RATIO**0 .. LEVEL_RATIO**(levels-1) hops).
        out_level: receives each tile's level.
        out_index: receives each tile's index within its level.

    Returns:
        The number of tiles written.
    """
    count = 0
    position = start
    while position < stop:
        level = levels - 1
        size = LEVEL_RATIO ** level
        while level > 0 and (position % size != 0 or position + size > stop):
            level -= 1
            size //= LEVEL_RATIO
        out_level[count] = level
        out_index[count] = position // size
        count += 1
        position += size
    return count


@numba.njit("int64(float64[:, ::1], int64, float64)", cache=True)
def find_tile(tiles: np.ndarray, count: int, key: float) -> int:
    """Row of `key` in the first `count` rows of `tiles` (sorted by column 0), or -1."""
    lo = 0
    hi = count
    while lo < hi:
        mid = (lo + hi) >> 1
        if tiles[mid, 0] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < count and tiles[lo, 0] == key:
        return lo
    return -1


@numba.njit("void(float64[:, ::1], int64, float64[:, ::1], int64)", cache=True,
            no_cpython_wrapper=True)
def copy_row(source: np.ndarray, source_row: int, target: np.ndarray, target_row: int) -> None:
    """Copy one state row (an explicit loop: no temporary slice objects)."""
    for j in range(source.shape[1]):
        target[target_row, j] = source[source_row, j]


@numba.njit("void(float64[:, ::1], int64, float64[::1], int64)", cache=True,
            no_cpython_wrapper=True)
def copy_rows(rows: np.ndarray, count: int, target: np.ndarray, start: int) -> None:
    """Copy the first `count` rows of a tile matrix into a flat blob at `start`."""
    width = rows.shape[1]
    for i in range(count):
        for j in range(width):
            target[start + i * width + j] = rows[i, j]


@numba.njit("void(float64[::1], int64, int64, float64[:, ::1], int64)", cache=True,
            no_cpython_wrapper=True)
def unpack_slots(source: np.ndarray, start: int, count: int, target: np.ndarray,
                 row: int) -> None:
    """Copy `count` slots from a flat blob into a state row (after its key column)."""
    for j in range(count):
        target[row, 1 + j] = source[start + j]


@numba.njit("void(float64[:, ::1], int64, int64, float64[::1], int64)", cache=True,
            no_cpython_wrapper=True)
def pack_slots(source: np.ndarray, row: int, count: int, target: np.ndarray,
               start: int) -> None:
    """Copy `count` slots of a state row (after its key column) into a flat blob."""
    for j in range(count):
        target[start + j] = source[row, 1 + j]


@numba.njit("void(float64[:, ::1], int64, int64, int64[::1])", cache=True,
            no_cpython_wrapper=True)
def level_starts(tiles: np.ndarray, count: int, levels: int, starts: np.ndarray) -> None:
    """starts[k] = first row of level k among `count` tiles sorted by key; starts[levels]
    = count."""
    row = 0
    for level in range(levels):
        while row < count and tiles[row, 0] < level * 2.0**45:
            row += 1
        starts[level] = row
    starts[levels] = count


@numba.njit("void(int64[::1], int64[:, ::1])", cache=True, no_cpython_wrapper=True)
def restart_searches(starts: np.ndarray, first: np.ndarray) -> None:
    """Point every window's remembered search position at the start of its level."""
    for window in range(first.shape[0]):
        for level in range(first.shape[1]):
            first[window, level] = starts[level]
