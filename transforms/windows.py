"""Window arithmetic shared by the offline and the online path.

Times are int64 microseconds. A window `w` with hop `h` at time `t` covers
`[floor(t, h) - w, t)`: the *tail* `[floor(t, h) - w, floor(t, h))` is whole hops and the
*head* `[floor(t, h), t)` is exact. Tiles exist at levels `k = 0..K` of size
`h * LEVEL_RATIO**k`; `decompose` cuts a tail into aligned tiles, greedily taking the
largest tile that starts at the current position and fits. Both paths call this one
function, which is what makes their merge trees, and so their floats, identical.

A tile is addressed by a float64 *key* that orders tiles by (level, index); it is exact
because it stays below 2**53. The jitted window arithmetic (`decompose`, tile keys) lives
in `transforms/engine.py` with the kernels that call it; this module sizes the levels.
"""

from __future__ import annotations

LEVEL_RATIO = 4


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
