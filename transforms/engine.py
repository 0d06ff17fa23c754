"""The shared kernels: ordinary Numba code, compiled once per machine and cached.

Every feature view runs through these functions. What differs between views (which
aggregations, at which slot, over which windows and hops) arrives as a small *layout*
of int64 tables (`transforms/layout.py`), not as generated code; only a view's row
expressions are generated (`transforms/codegen.py`). Adding or editing a view therefore
compiles one small function, never these.

Algorithm (docs/architecture.md): a window `w` with hop `h` at time `t` covers
`[floor(t, h) - w, t)`. Its *tail* `[floor(t, h) - w, floor(t, h))` is cut by `decompose`
into aligned tiles of `h * 4**k`, merged in time order, then the *head*
`[floor(t, h), t)` is merged last. The offline path (`training`) builds the tiles from
raw events; the online path (`values`) reads them from state blobs written by `states`;
both call `window_values` and the same `build_tiles`, so their floats agree to the bit.

A state is a row of a 2-D float64 array: column 0 is a tile's key, the slots follow.
Functions take the array and the row rather than a slice: a slice is a new array object
whose reference counting costs more than the arithmetic in these inner loops.

State blob layout (float64): `[1.0, m_0, ..., m_{G-1}, tiles of group 0 (m_0 rows of key
+ slots), ..., tiles of group G-1, lifetime slots]`, tiles sorted by key, so by (level,
index).

All jitted code of the engine lives in this one file on purpose: Numba's disk cache of a
function does not notice when a function it calls, in another file, changes.
"""

from __future__ import annotations

import numba
import numpy as np

from transforms.windows import LEVEL_RATIO

# Aggregation codes (`transforms/aggregations.py` maps names to them).
COUNT, SUM, MEAN, STD, MIN, MAX, FIRST, LAST = range(8)
# Columns of the feature table FT (one row per feature, grouped: see layout.py).
AGG, OFFSET, EXPR, OUT, WINDOW, HOP = range(6)
# Columns of the group table GT (one row per hop group, then one for lifetime features).
G_HOP, G_LEVELS, G_WIDTH, G_F0, G_F1, G_W0, G_W1, G_MAX_WINDOW = range(8)
# Columns of the window table WT (one row per distinct window of a group).
W_HOPS, W_M0, W_M1 = range(3)

# Tile sizes are hop * 4**level: the kernels divide by a size with `>> 2 * level`.
if LEVEL_RATIO != 4:
    raise ImportError("the kernels assume tiles grow by a factor of 4 per level")
MIN_TIME = -(2**62)
_LEVEL_SPAN = 2.0**45  # keys of one level occupy [level * 2**45, (level + 1) * 2**45)
_INDEX_BIAS = 2.0**44  # lets pre-1970 (negative) tile indexes keep their order

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}
# Helpers are called only from the kernels below (no Python wrapper). Their callers pass
# `zero = np.int64(0)` rather than a literal 0: Numba compiles a new specialization of a
# function for every literal argument it sees.
_HELPER = {"cache": True, "error_model": "numpy", "no_cpython_wrapper": True, "_nrt": False}
# The per-aggregation operations run in the innermost loops: written into their callers.
_INLINE = {**_HELPER, "inline": "always"}


@numba.njit(inline="always")
def floor_div(a: int, b: int) -> int:
    """Floor division of int64 values (also right for negative times)."""
    return a // b


@numba.njit(inline="always")
def tile_key(level: int, index: int) -> float:
    """Key of tile `index` at `level`; exact, as it stays below 2**53."""
    return level * _LEVEL_SPAN + (index + _INDEX_BIAS)


@numba.njit(inline="always")
def tile_level(key: float) -> int:
    """Level of a tile key."""
    return int(key // _LEVEL_SPAN)


@numba.njit(inline="always")
def tile_index(key: float) -> int:
    """Index of a tile key within its level."""
    return int(key - tile_level(key) * _LEVEL_SPAN - _INDEX_BIAS)


@numba.njit(**_HELPER)
def decompose(start: int, stop: int, levels: int, out_level: np.ndarray,
              out_index: np.ndarray) -> int:
    """Cut the hop range `[start, stop)` into aligned tiles, in time order.

    Greedy: at each position take the largest tile that starts there and fits. Both
    paths call this one function, which is what makes their merge trees identical.
    Returns the number of tiles written to `out_level` / `out_index`.
    """
    count = 0
    position = start
    while position < stop:
        # Sizes are powers of 4: a mask and a shift stand for % and // (also for negative
        # positions), sparing two integer divisions per level tried.
        level = levels - 1
        shift = 2 * level
        while level > 0 and ((position & ((1 << shift) - 1)) != 0
                             or position + (1 << shift) > stop):
            level -= 1
            shift -= 2
        out_level[count] = level
        out_index[count] = position >> shift
        count += 1
        position += 1 << shift
    return count


# --- one aggregation's slots: empty, fold, merge, finalize -------------------------------
# `o` is the aggregation's first slot; slots sit at columns 1 + o, 2 + o, ...


@numba.njit(inline="always")
def replaces(agg: int, kept: float, x: float) -> bool:
    """Whether a non-null `x` replaces the kept min / max (also while it is NaN, empty)."""
    return not (kept <= x if agg == MIN else kept >= x)


@numba.njit(inline="always")
def supersedes(agg: int, t0: float, v: float, t: float, x: float) -> bool:
    """Whether (t, x) replaces the kept first / last (t0, v): an earlier / later time, or
    the same time with a smaller / larger value; also while t0 is NaN (empty)."""
    if agg == FIRST:
        return not (t0 <= t) or (t0 == t and x < v)
    return not (t0 >= t) or (t0 == t and x > v)


@numba.njit(**_INLINE)
def empty_state(agg: int, S: np.ndarray, row: int, o: int) -> None:
    """Reset an aggregation's slots to empty: the identity of `merge_state`, bit for bit."""
    c = 1 + o
    if agg in (COUNT, SUM):
        S[row, c] = 0.0
    elif agg == MEAN:
        S[row, c] = 0.0
        S[row, c + 1] = 0.0
    elif agg == STD:
        S[row, c] = 0.0
        S[row, c + 1] = 0.0
        S[row, c + 2] = 0.0
    elif agg in (MIN, MAX):
        S[row, c] = np.nan
    else:
        S[row, c] = np.nan
        S[row, c + 1] = np.nan


@numba.njit(**_INLINE)
def fold_events(agg: int, S: np.ndarray, row: int, o: int, ts: np.ndarray, V: np.ndarray,
                column: int, r0: int, r1: int) -> None:
    """Fold events `r0 .. r1 - 1` (value `V[r, column]`, or 1.0 when column < 0) in order.

    A NaN value is a null and is skipped. The switch sits outside the event loop.
    """
    c = 1 + o
    if agg in (COUNT, SUM, MEAN):
        n = S[row, c]
        s = S[row, c + 1] if agg == MEAN else 0.0
        for r in range(r0, r1):
            x = 1.0 if column < 0 else V[r, column]
            if x == x:
                if agg == SUM:
                    n += x
                else:
                    n += 1.0
                    if agg == MEAN:
                        s += x
        S[row, c] = n
        if agg == MEAN:
            S[row, c + 1] = s
    elif agg == STD:
        # Welford's update: stable where the naive sum of squares cancels.
        n, mean, m2 = S[row, c], S[row, c + 1], S[row, c + 2]
        for r in range(r0, r1):
            x = V[r, column]
            if x == x:
                n += 1.0
                d = x - mean
                mean += d / n
                m2 += d * (x - mean)
        S[row, c] = n
        S[row, c + 1] = mean
        S[row, c + 2] = m2
    elif agg in (MIN, MAX):
        v = S[row, c]
        for r in range(r0, r1):
            x = V[r, column]
            if x == x and replaces(agg, v, x):
                v = x
        S[row, c] = v
    else:
        t0, v = S[row, c], S[row, c + 1]
        for r in range(r0, r1):
            x = V[r, column]
            t = float(ts[r])
            if x == x and supersedes(agg, t0, v, t, x):
                t0 = t
                v = x
        S[row, c] = t0
        S[row, c + 1] = v


@numba.njit(**_INLINE)
def merge_state(agg: int, A: np.ndarray, arow: int, B: np.ndarray, brow: int, o: int) -> None:
    """Merge the slots of a later state B into the accumulator A."""
    c = 1 + o
    if agg in (COUNT, SUM):
        A[arow, c] += B[brow, c]
    elif agg == MEAN:
        A[arow, c] += B[brow, c]
        A[arow, c + 1] += B[brow, c + 1]
    elif agg == STD:
        # Chan et al.'s pairwise merge; an empty side is skipped so that merging an
        # empty tile is an exact identity.
        nb = B[brow, c]
        if nb > 0.0:
            na = A[arow, c]
            if na == 0.0:
                A[arow, c] = nb
                A[arow, c + 1] = B[brow, c + 1]
                A[arow, c + 2] = B[brow, c + 2]
            else:
                n = na + nb
                d = B[brow, c + 1] - A[arow, c + 1]
                A[arow, c + 2] += B[brow, c + 2] + d * d * na * nb / n
                A[arow, c + 1] += d * nb / n
                A[arow, c] = n
    elif agg in (MIN, MAX):
        x = B[brow, c]
        if x == x and replaces(agg, A[arow, c], x):
            A[arow, c] = x
    else:
        t, x = B[brow, c], B[brow, c + 1]
        if t == t and supersedes(agg, A[arow, c], A[arow, c + 1], t, x):
            A[arow, c] = t
            A[arow, c + 1] = x


@numba.njit(**_INLINE)
def final_value(agg: int, S: np.ndarray, row: int, o: int) -> float:
    """The feature value a state holds (NaN is null)."""
    c = 1 + o
    if agg == MEAN:
        return S[row, c + 1] / S[row, c] if S[row, c] > 0.0 else np.nan
    if agg == STD:
        if S[row, c] > 0.0:
            return np.sqrt(max(S[row, c + 2], 0.0) / S[row, c])
        return np.nan
    if agg in (FIRST, LAST):
        return S[row, c + 1]
    return S[row, c]


@numba.njit(**_INLINE)
def empty_group(S: np.ndarray, row: int, FT: np.ndarray, f0: int, f1: int) -> None:
    """Reset the states of features `f0 .. f1 - 1` (one group) to empty."""
    for f in range(f0, f1):
        empty_state(FT[f, AGG], S, row, FT[f, OFFSET])


@numba.njit(**_INLINE)
def fold_group(S: np.ndarray, row: int, FT: np.ndarray, f0: int, f1: int, ts: np.ndarray,
               V: np.ndarray, r0: int, r1: int) -> None:
    """Fold events `r0 .. r1 - 1` into every state of one group."""
    if r1 > r0:
        for f in range(f0, f1):
            fold_events(FT[f, AGG], S, row, FT[f, OFFSET], ts, V, FT[f, EXPR], r0, r1)


@numba.njit(**_HELPER)
def final_lifetime(S: np.ndarray, FT: np.ndarray, f0: int, f1: int, out: np.ndarray,
                   column: int, t: int) -> None:
    """Lifetime feature values at `t`; a windowed `last` lives here too (see graph.py)."""
    zero = np.int64(0)
    for f in range(f0, f1):
        agg, o = FT[f, AGG], FT[f, OFFSET]
        value = final_value(agg, S, zero, o)
        window, hop = FT[f, WINDOW], FT[f, HOP]
        if window > 0 and not (S[0, 1 + o] >= floor_div(t, hop) * hop - window):
            value = np.nan
        out[FT[f, OUT], column] = value


@numba.njit(**_INLINE)
def start_lifetime(life: np.ndarray, blob: np.ndarray, pos: int, has_state: bool,
                   width: int, FT: np.ndarray, f0: int, f1: int) -> None:
    """Row 0 of `life`: the running state stored in `blob` at `pos`, or empty."""
    if has_state:
        for s in range(width):
            life[0, 1 + s] = blob[pos + s]
    else:
        empty_group(life, np.int64(0), FT, f0, f1)


# --- tiles -------------------------------------------------------------------------------


@numba.njit(**_INLINE)
def copy_state(source: np.ndarray, srow: int, target: np.ndarray, trow: int,
               width: int) -> None:
    """Copy a state row's key and `width - 1` slots (explicit loop: no slice objects)."""
    for j in range(width):
        target[trow, j] = source[srow, j]


@numba.njit(**_HELPER)
def build_tiles(ts: np.ndarray, V: np.ndarray, e0: int, e1: int, old: np.ndarray,
                m_old: int, T: np.ndarray, base: int, cutoff: int, FT: np.ndarray,
                GT: np.ndarray, g: int, hops: np.ndarray, spans: np.ndarray) -> int:
    """Tiles of group `g` at every level from events `e0 .. e1 - 1`, extending `old`.

    Writes rows `base ..` of T, sorted by key, and returns how many it kept: tiles that
    end before `cutoff` are dropped. An old tile that new events fall into is copied and
    folded further, so a state grows by exactly the folds a rebuild would make.
    `hops` and `spans` are scratch (at least one entry per event, and per tile of a level).

    Per level, a first pass lays out the kept tiles (key, starting state, events); then
    each feature folds every tile's events, so the aggregation is chosen once per
    feature and level rather than once per tile.
    """
    hop, levels = GT[g, G_HOP], GT[g, G_LEVELS]
    width, f0, f1 = GT[g, G_WIDTH] + 1, GT[g, G_F0], GT[g, G_F1]
    n = e1 - e0
    # Hop index of every event, once; level k's tile index is that shifted right by 2k.
    for i in range(n):
        hops[i] = floor_div(ts[e0 + i], hop)
    m = 0
    p = 0
    for k in range(levels):
        shift = 2 * k
        size = hop << shift
        first = m
        i = 0
        while True:
            has_old = p < m_old and tile_level(old[p, 0]) == k
            has_event = i < n
            if not has_old and not has_event:
                break
            j_old = tile_index(old[p, 0]) if has_old else 0
            j_event = hops[i] >> shift if has_event else 0
            j = j_old if has_old and (not has_event or j_old <= j_event) else j_event
            from_old = has_old and j_old == j
            i0 = i
            while i < n and (hops[i] >> shift) == j:
                i += 1
            if j * size >= cutoff:  # a tile before the cutoff is not kept
                row = base + m
                if from_old:
                    copy_state(old, p, T, row, width)
                else:
                    T[row, 0] = tile_key(k, j)
                    empty_group(T, row, FT, f0, f1)
                spans[0, m - first] = e0 + i0
                spans[1, m - first] = e0 + i
                m += 1
            if from_old:
                p += 1
        for f in range(f0, f1):
            agg, o, column = FT[f, AGG], FT[f, OFFSET], FT[f, EXPR]
            for t in range(m - first):
                fold_events(agg, T, base + first + t, o, ts, V, column, spans[0, t],
                            spans[1, t])
    return m


@numba.njit(**_HELPER)
def level_starts(T: np.ndarray, base: int, count: int, levels: int, starts: np.ndarray,
                 g: int) -> None:
    """starts[g, k] = first row of level k among rows `base .. base + count - 1` of T;
    starts[g, levels] = base + count."""
    row = base
    for level in range(levels):
        while row < base + count and T[row, 0] < level * _LEVEL_SPAN:
            row += 1
        starts[g, level] = row
    starts[g, levels] = base + count


@numba.njit(**_HELPER)
def restart_searches(starts: np.ndarray, g: int, first: np.ndarray, w0: int, w1: int,
                     levels: int) -> None:
    """Point the remembered search position of group g's windows at their level starts."""
    for w in range(w0, w1):
        for level in range(levels):
            first[w, level] = starts[g, level]


@numba.njit(**_INLINE)
def lower_bound(T: np.ndarray, lo: int, hi: int, key: float) -> int:
    """The first row in `lo .. hi - 1` of T whose key (column 0) is >= key, else hi."""
    while lo < hi:
        middle = (lo + hi) >> 1
        if T[middle, 0] < key:
            lo = middle + 1
        else:
            hi = middle
    return lo


@numba.njit(**_HELPER)
def window_values(T: np.ndarray, starts: np.ndarray, g: int, first: np.ndarray, w: int,
                  levels: int, hops: int, B: int, H: np.ndarray, hrow: int, A: np.ndarray,
                  FT: np.ndarray, MT: np.ndarray, m0: int, m1: int, scratch: np.ndarray,
                  out: np.ndarray, column: int) -> None:
    """The features of window `w` (members MT[m0:m1]) at hop index B, into out[:, column].

    The tail's tiles are found, merged in time order, then the head state H[hrow] is
    merged last and the result finalized. Positions only: the merges, and so the values,
    do not depend on how a tile is found.
    """
    zero = np.int64(0)
    lv, ix, hint, rows = scratch[0], scratch[1], scratch[2], scratch[3]
    nb = decompose(B - hops, B, levels, lv, ix)
    for level in range(levels):
        hint[level] = -1
    for block in range(nb):
        level = lv[block]
        key = tile_key(level, ix[block])
        # The first tile of this level whose key is >= key: gallop from the previous
        # tile of this level in this window (the next block is usually adjacent), or for
        # the first block of a level from where the previous query's first block was
        # (queries come in time order, so that moves forward), then bisect.
        row = hint[level]
        if row < 0:
            row = first[w, level]
            if row > starts[g, level] and T[row - 1, 0] >= key:
                row = starts[g, level]
        end = starts[g, level + 1]
        step = 1
        while row + step <= end and T[row + step - 1, 0] < key:
            row += step
            step *= 2
        row = lower_bound(T, row, min(end, row + step), key)
        if hint[level] < 0:
            first[w, level] = row
        hint[level] = row
        rows[block] = row if row < end and T[row, 0] == key else -1
    for member in range(m0, m1):
        f = MT[member]
        agg, o = FT[f, AGG], FT[f, OFFSET]
        empty_state(agg, A, zero, o)
        for block in range(nb):
            if rows[block] >= 0:
                merge_state(agg, A, zero, T, rows[block], o)
        merge_state(agg, A, zero, H, hrow, o)
        out[FT[f, OUT], column] = final_value(agg, A, zero, o)


# --- drivers -----------------------------------------------------------------------------


@numba.njit(**_JIT)
def training(ent: np.ndarray, ts: np.ndarray, V: np.ndarray, qent: np.ndarray,
             qts: np.ndarray, q0: int, q1: int, i0: int, i1: int, FT: np.ndarray,
             GT: np.ndarray, WT: np.ndarray, MT: np.ndarray, max_blocks: int,
             out: np.ndarray) -> None:
    """Feature values at query times `q0 .. q1 - 1` from raw events (the offline path).

    Events `i0 .. i1 - 1` and the queries are sorted by (entity, time); the queries'
    entities' events all lie in that event range. Writes out[:, q0:q1] (NaN = null).
    """
    zero = np.int64(0)
    lowest = np.int64(MIN_TIME)
    G = GT.shape[0] - 1
    longest = 1
    i = i0
    while i < i1:
        k = i
        while k < i1 and ent[k] == ent[i]:
            k += 1
        longest = max(longest, k - i)
        i = k
    max_levels, max_width, total = 1, GT[G, G_WIDTH] + 1, 0
    base = np.empty(G + 1, np.int64)
    for g in range(G):
        base[g] = total
        total += GT[g, G_LEVELS] * longest + 1
        max_levels = max(max_levels, GT[g, G_LEVELS] + 1)
        max_width = max(max_width, GT[g, G_WIDTH] + 1)
    T = np.empty((total, max_width))
    heads = np.empty((max(G, 1), max_width))
    acc = np.empty((1, max_width))
    life = np.empty((1, max_width))
    starts = np.empty((max(G, 1), max_levels), np.int64)
    first = np.empty((max(WT.shape[0], 1), max_levels), np.int64)
    scratch = np.empty((4, max(max_blocks, max_levels)), np.int64)
    hops = np.empty(longest, np.int64)
    spans = np.empty((2, longest + 1), np.int64)
    h = np.empty(max(G, 1), np.int64)
    none = np.empty((0, max_width))
    i = i0
    j = q0
    while j < q1:
        e = qent[j]
        while i < i1 and ent[i] < e:
            i += 1
        e0 = i
        while i < i1 and ent[i] == e:
            i += 1
        e1 = i
        c0 = j
        while j < q1 and qent[j] == e:
            j += 1
        for g in range(G):
            m = build_tiles(ts, V, e0, e1, none, zero, T, base[g], lowest, FT, GT, g, hops,
                            spans)
            level_starts(T, base[g], m, GT[g, G_LEVELS], starts, g)
            restart_searches(starts, g, first, GT[g, G_W0], GT[g, G_W1], GT[g, G_LEVELS])
            h[g] = e0
        empty_group(life, zero, FT, GT[G, G_F0], GT[G, G_F1])
        p = e0
        for c in range(c0, j):
            t = qts[c]
            p0 = p
            while p < e1 and ts[p] < t:
                p += 1
            fold_group(life, zero, FT, GT[G, G_F0], GT[G, G_F1], ts, V, p0, p)
            final_lifetime(life, FT, GT[G, G_F0], GT[G, G_F1], out, c, t)
            for g in range(G):
                hop = GT[g, G_HOP]
                B = floor_div(t, hop)
                while h[g] < p and ts[h[g]] < B * hop:
                    h[g] += 1
                empty_group(heads, g, FT, GT[g, G_F0], GT[g, G_F1])
                fold_group(heads, g, FT, GT[g, G_F0], GT[g, G_F1], ts, V, h[g], p)
                for w in range(GT[g, G_W0], GT[g, G_W1]):
                    window_values(T, starts, g, first, w, GT[g, G_LEVELS], WT[w, W_HOPS], B,
                                  heads, g, acc, FT, MT, WT[w, W_M0], WT[w, W_M1], scratch,
                                  out, c)


@numba.njit(**_JIT)
def states(ent: np.ndarray, ts: np.ndarray, V: np.ndarray, old_data: np.ndarray,
           old_off: np.ndarray, end: int, FT: np.ndarray,
           GT: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-entity state blobs as of `end` (materialization, push).

    Events are sorted by (entity, time); `old_off` delimits, in `old_data`, the existing
    blob of each distinct entity in order (empty = none). Returns (data, offsets,
    entities) of the new blobs.
    """
    zero = np.int64(0)
    G = GT.shape[0] - 1
    life_width = GT[G, G_WIDTH]
    n = ent.shape[0]
    ne, longest, most_old, bound = 0, 1, 0, 0
    tile_rows = 0
    for g in range(G):
        tile_rows += GT[g, G_LEVELS] * (GT[g, G_WIDTH] + 1)
    i = 0
    while i < n:
        k = i
        while k < n and ent[k] == ent[i]:
            k += 1
        longest = max(longest, k - i)
        size = old_off[ne + 1] - old_off[ne]
        most_old = max(most_old, size)
        bound += size + 1 + G + life_width + tile_rows * (k - i)
        ne += 1
        i = k
    max_width, total = life_width + 1, 0
    base = np.empty(G + 1, np.int64)
    for g in range(G):
        width = GT[g, G_WIDTH] + 1
        base[g] = total
        total += GT[g, G_LEVELS] * longest + most_old // width + 1
        max_width = max(max_width, width)
    T = np.empty((total, max_width))
    hops = np.empty(longest, np.int64)
    spans = np.empty((2, longest + most_old + 1), np.int64)
    life = np.empty((1, max_width))
    data = np.empty(bound)
    off = np.empty(ne + 1, np.int64)
    ents = np.empty(ne, np.int64)
    o = 0
    i = zero
    for u in range(ne):
        e0 = i
        while i < n and ent[i] == ent[e0]:
            i += 1
        ents[u] = ent[e0]
        off[u] = o
        a0, a1 = old_off[u], old_off[u + 1]
        pos_old = a0 + 1 + G
        data[o] = 1.0
        w = o + 1 + G
        for g in range(G):
            width = GT[g, G_WIDTH] + 1
            m_old = int(old_data[a0 + 1 + g]) if a1 > a0 else 0
            old = old_data[pos_old:pos_old + m_old * width].reshape((m_old, width))
            pos_old += m_old * width
            hop = GT[g, G_HOP]
            cutoff = floor_div(end, hop) * hop - GT[g, G_MAX_WINDOW]
            m = build_tiles(ts, V, e0, i, old, m_old, T, base[g], cutoff, FT, GT, g, hops,
                            spans)
            data[o + 1 + g] = m
            for r in range(m):
                for c in range(width):
                    data[w + r * width + c] = T[base[g] + r, c]
            w += m * width
        f0, f1 = GT[G, G_F0], GT[G, G_F1]
        start_lifetime(life, old_data, pos_old, a1 > a0, life_width, FT, f0, f1)
        fold_group(life, zero, FT, f0, f1, ts, V, e0, i)
        for s in range(life_width):
            data[w + s] = life[0, 1 + s]
        o = w + life_width
    off[ne] = o
    return data[:o].copy(), off, ents


@numba.njit(**_JIT)
def values(data: np.ndarray, off: np.ndarray, at: np.ndarray, FT: np.ndarray,
           GT: np.ndarray, WT: np.ndarray, MT: np.ndarray, max_blocks: int,
           out: np.ndarray) -> None:
    """Feature values at lookup times `at[b]` from state blobs (the online path)."""
    zero = np.int64(0)
    G = GT.shape[0] - 1
    life_width = GT[G, G_WIDTH]
    max_levels, max_width = 1, life_width + 1
    for g in range(G):
        max_levels = max(max_levels, GT[g, G_LEVELS] + 1)
        max_width = max(max_width, GT[g, G_WIDTH] + 1)
    heads = np.empty((1, max_width))
    acc = np.empty((1, max_width))
    life = np.empty((1, max_width))
    starts = np.empty((1, max_levels), np.int64)
    first = np.empty((max(WT.shape[0], 1), max_levels), np.int64)
    scratch = np.empty((4, max(max_blocks, max_levels)), np.int64)
    for b in range(off.shape[0] - 1):
        a0, a1 = off[b], off[b + 1]
        t = at[b]
        pos = a0 + 1 + G
        for g in range(G):
            width, levels = GT[g, G_WIDTH] + 1, GT[g, G_LEVELS]
            m = int(data[a0 + 1 + g]) if a1 > a0 else 0
            T = data[pos:pos + m * width].reshape((m, width))
            pos += m * width
            level_starts(T, zero, m, levels, starts, zero)
            restart_searches(starts, zero, first, GT[g, G_W0], GT[g, G_W1], levels)
            hop = GT[g, G_HOP]
            B = floor_div(t, hop)
            # Online the head is the level-0 tile holding floor(at, hop): lookups are at
            # or after the end of every event folded into it (docs/decisions.md).
            hrow = _find_tile(T, m, tile_key(0, B))
            H = T
            if hrow < 0:
                empty_group(heads, zero, FT, GT[g, G_F0], GT[g, G_F1])
                H = heads
                hrow = zero
            for w in range(GT[g, G_W0], GT[g, G_W1]):
                window_values(T, starts, zero, first, w, levels, WT[w, W_HOPS], B, H, hrow,
                              acc, FT, MT, WT[w, W_M0], WT[w, W_M1], scratch, out, b)
        f0, f1 = GT[G, G_F0], GT[G, G_F1]
        start_lifetime(life, data, pos, a1 > a0, life_width, FT, f0, f1)
        final_lifetime(life, FT, f0, f1, out, b, t)


@numba.njit(**_HELPER)
def _find_tile(T: np.ndarray, count: int, key: float) -> int:
    """Row of `key` in the first `count` rows of T (sorted by column 0), or -1."""
    row = lower_bound(T, np.int64(0), count, key)
    return row if row < count and T[row, 0] == key else -1


def warm() -> None:
    """Compile the shared kernels now, or load them from Numba's disk cache.

    The installation runs this once (`make`), so that no user's first `apply` waits for
    the shared code; each view then compiles only its row expressions.
    """
    none = np.zeros(0, np.int64)
    features = np.zeros((0, 6), np.int64)
    groups = np.zeros((1, 8), np.int64)  # no windowed group, an empty lifetime state
    windows = np.zeros((0, 3), np.int64)
    out = np.empty((0, 0))
    training(none, none, np.empty((0, 1)), none, none, 0, 0, 0, 0, features, groups, windows,
             none, 1, out)
    states(none, none, np.empty((0, 1)), np.empty(0), np.zeros(1, np.int64), 0, features,
           groups)
    values(np.empty(0), np.zeros(1, np.int64), none, features, groups, windows, none, 1, out)
