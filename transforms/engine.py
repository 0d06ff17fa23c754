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

import math

import numba
import numpy as np

from transforms.windows import LEVEL_RATIO

# Aggregation codes (`transforms/aggregations.py` maps names to them).
(COUNT, SUM, MEAN, STD, MIN, MAX, FIRST, LAST, DECAYED_SUM, DECAYED_COUNT, LAST_N, FIRST_N,
 TOP_K, APPROX_COUNT_DISTINCT, APPROX_PERCENTILE) = range(15)
# Columns of the feature table FT (one row per feature, grouped: see layout.py).
AGG, OFFSET, EXPR, OUT, WINDOW, HOP, PARAM, SIZE, ITEMS, WIDTH = range(10)
# Columns of the group table GT (one row per hop group, then one for lifetime features).
G_HOP, G_LEVELS, G_WIDTH, G_F0, G_F1, G_W0, G_W1, G_MAX_WINDOW, G_COMPACT = range(9)
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
# Feature f's slots sit at columns 1 + FT[f, OFFSET], ...; FT[f, PARAM] is its parameter
# (n, k, or a half-life in microseconds) and FT[f, SIZE] the entries its list keeps.


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


@numba.njit(inline="always")
def ranks_before(agg: int, t: float, x: float, t0: float, v0: float) -> bool:
    """Whether (t, x) comes before the entry (t0, v0) of a last_n list (newer first; at
    equal times the larger value) or of a first_n list (older first; the smaller value)."""
    if agg == LAST_N:
        return t > t0 or (t == t0 and x > v0)
    return t < t0 or (t == t0 and x < v0)


@numba.njit(**_HELPER)
def insert_entry(agg: int, S: np.ndarray, row: int, c: int, n: int, t: float,
                 x: float) -> None:
    """Insert (t, x) into the ranked list at column c: a count, then n (time, value)
    pairs in rank order. The list keeps the n entries that rank first, so the result
    does not depend on the order entries arrive in."""
    m = int(S[row, c])
    if m == n and not ranks_before(agg, t, x, S[row, c - 1 + 2 * n], S[row, c + 2 * n]):
        return
    i = 0
    while i < m and not ranks_before(agg, t, x, S[row, c + 1 + 2 * i], S[row, c + 2 + 2 * i]):
        i += 1
    j = min(m, n - 1)
    while j > i:
        S[row, c + 1 + 2 * j] = S[row, c - 1 + 2 * j]
        S[row, c + 2 + 2 * j] = S[row, c + 2 * j]
        j -= 1
    S[row, c + 1 + 2 * i] = t
    S[row, c + 2 + 2 * i] = x
    S[row, c] = min(m + 1, n)


@numba.njit(**_HELPER)
def counter_of(S: np.ndarray, row: int, c: int, m: int, x: float) -> int:
    """The first of the m (value, count) pairs after column c whose value is >= x."""
    lo, hi = 0, m
    while lo < hi:
        middle = (lo + hi) >> 1
        if S[row, c + 1 + 2 * middle] < x:
            lo = middle + 1
        else:
            hi = middle
    return lo


@numba.njit(**_HELPER)
def count_value(S: np.ndarray, row: int, c: int, capacity: int, x: float) -> None:
    """Count one `x` in a top_k state at column c: a count m, then up to `capacity`
    (value, count) pairs sorted by value. A full state without `x` takes one from every
    counter and drops those that reach zero (Misra-Gries), so no count is overstated."""
    m = int(S[row, c])
    lo = counter_of(S, row, c, m, x)
    if lo < m and S[row, c + 1 + 2 * lo] == x:
        S[row, c + 2 + 2 * lo] += 1.0
    elif m < capacity:
        j = m
        while j > lo:
            S[row, c + 1 + 2 * j] = S[row, c - 1 + 2 * j]
            S[row, c + 2 + 2 * j] = S[row, c + 2 * j]
            j -= 1
        S[row, c + 1 + 2 * lo] = x
        S[row, c + 2 + 2 * lo] = 1.0
        S[row, c] = m + 1
    else:
        kept = 0
        for i in range(m):
            count = S[row, c + 2 + 2 * i] - 1.0
            if count > 0.0:
                S[row, c + 1 + 2 * kept] = S[row, c + 1 + 2 * i]
                S[row, c + 2 + 2 * kept] = count
                kept += 1
        for i in range(kept, m):
            S[row, c + 1 + 2 * i] = np.nan
            S[row, c + 2 + 2 * i] = np.nan
        S[row, c] = kept


@numba.njit(**_HELPER)
def select_descending(A: np.ndarray, row: int, lo: int, count: int, rank: int) -> float:
    """The `rank`-th largest (0 = largest) of A[row, lo:lo + count], which it reorders."""
    left, right = lo, lo + count - 1
    target = lo + rank
    while left < right:
        pivot = A[row, (left + right) >> 1]
        i, j = left, right
        while i <= j:
            while A[row, i] > pivot:
                i += 1
            while A[row, j] < pivot:
                j -= 1
            if i <= j:
                A[row, i], A[row, j] = A[row, j], A[row, i]
                i += 1
                j -= 1
        if target <= j:
            right = j
        elif target >= i:
            left = i
        else:
            break
    return A[row, target]


@numba.njit(**_HELPER)
def merge_counters(A: np.ndarray, arow: int, B: np.ndarray, brow: int, c: int,
                   capacity: int) -> None:
    """Merge top_k state B into the accumulator A (mergeable Misra-Gries: add the
    counters, then take the (capacity + 1)-th largest count from each and keep those
    left above zero). A must have room for 3 * capacity pairs after column c."""
    ma, mb = int(A[arow, c]), int(B[brow, c])
    if mb == 0:
        return
    # B's values that A lacks wait at the end of the room, in value order.
    spare = 3 * capacity - mb
    extra = 0
    for j in range(mb):
        x, count = B[brow, c + 1 + 2 * j], B[brow, c + 2 + 2 * j]
        lo = counter_of(A, arow, c, ma, x)
        if lo < ma and A[arow, c + 1 + 2 * lo] == x:
            A[arow, c + 2 + 2 * lo] += count
        else:
            A[arow, c + 1 + 2 * (spare + extra)] = x
            A[arow, c + 2 + 2 * (spare + extra)] = count
            extra += 1
    # Merge the two sorted runs from the back (the waiting run lies past the write end).
    i, k, w = ma - 1, extra - 1, ma + extra - 1
    while k >= 0:
        if i >= 0 and A[arow, c + 1 + 2 * i] > A[arow, c + 1 + 2 * (spare + k)]:
            A[arow, c + 1 + 2 * w] = A[arow, c + 1 + 2 * i]
            A[arow, c + 2 + 2 * w] = A[arow, c + 2 + 2 * i]
            i -= 1
        else:
            A[arow, c + 1 + 2 * w] = A[arow, c + 1 + 2 * (spare + k)]
            A[arow, c + 2 + 2 * w] = A[arow, c + 2 + 2 * (spare + k)]
            k -= 1
        w -= 1
    m = ma + extra
    if m > capacity:
        scratch = c + 1 + 2 * m
        for j in range(m):
            A[arow, scratch + j] = A[arow, c + 2 + 2 * j]
        floor = select_descending(A, arow, scratch, m, capacity)
        kept = 0
        for j in range(m):
            count = A[arow, c + 2 + 2 * j] - floor
            if count > 0.0:
                A[arow, c + 1 + 2 * kept] = A[arow, c + 1 + 2 * j]
                A[arow, c + 2 + 2 * kept] = count
                kept += 1
        m = kept
    A[arow, c] = m


# --- sketches: approx_count_distinct (HyperLogLog) and approx_percentile ---------------
# Both keep an exact form while it is small and switch to the sketch beyond; either way a
# state is a function of the values it has seen (not of their order, nor of how states
# were merged), so both paths give the same bits whatever their merge trees.
#
# approx_count_distinct, precision p (FT PARAM): slot 0 is the number of distinct values
# while exact (>= 0) or -1 once a HyperLogLog; then E = 2**p / 16 slots holding the exact
# form's 52-bit value hashes, sorted (first, so a small state stays in a few cache lines);
# then R = 2 E slots of registers, 8 six-bit registers per slot (an exact integer below
# 2**48). Exact while at most E distinct values.
#
# approx_percentile: slot 0 counts the values; then P_EXACT slots hold them sorted while
# there are at most P_EXACT; beyond, a histogram with logarithmic bins of relative width
# 2 * P_ALPHA (DDSketch): counts of zeros, -inf and +inf, then a store for negative and
# one for positive values by magnitude, each [top bin index, lowest used slot, P_BINS
# counts] keeping the P_BINS highest bin indexes (lower ones add to slot 0).

P_EXACT = 32
P_BINS = 2048
P_ALPHA = 0.01
P_GAMMA = (1.0 + P_ALPHA) / (1.0 - P_ALPHA)
_P_LOG_GAMMA = np.log(P_GAMMA)
_P_STORE = 2 + P_BINS
_P_LARGEST = np.finfo(np.float64).max


@numba.njit(inline="always")
def value_hash(x: float) -> float:
    """A 52-bit hash of a non-null value, as an exact float: equal values, equal hashes."""
    if x - x != 0.0:  # infinity
        key = np.uint64(1) << np.uint64(62) if x > 0.0 else np.uint64(3) << np.uint64(62)
    else:
        mantissa, exponent = math.frexp(x)
        key = (np.uint64(np.int64(mantissa * 9007199254740992.0))
               + np.uint64(exponent + 2048) * np.uint64(0x9E3779B97F4A7C15))
    key = (key ^ (key >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    key = (key ^ (key >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    key = key ^ (key >> np.uint64(31))
    return float(key >> np.uint64(12))


@numba.njit(**_HELPER)
def hll_add(S: np.ndarray, row: int, c: int, precision: int, h: float) -> None:
    """Count hash `h` into the registers, which follow the exact form's E slots."""
    bits = np.int64(h)
    rest_bits = 52 - precision
    register = bits >> rest_bits
    rest = bits & ((np.int64(1) << rest_bits) - 1)
    rank = rest_bits + 1
    if rest > 0:
        rank = rest_bits - math.frexp(float(rest))[1] + 1
    slot = c + 1 + (1 << (precision - 4)) + (register >> 3)
    shift = (register & 7) * 6
    packed = np.int64(S[row, slot])
    current = (packed >> shift) & 63
    if rank > current:
        S[row, slot] = float(packed + ((rank - current) << shift))


@numba.njit(**_HELPER)
def hll_from_exact(S: np.ndarray, row: int, c: int, precision: int, hashes: int,
                   count: int) -> None:
    """Turn the state at c into registers holding the `count` hashes at `hashes`."""
    registers = 1 << (precision - 3)
    for j in range(registers):
        S[row, c + 1 + (registers >> 1) + j] = 0.0
    for i in range(count):
        hll_add(S, row, c, precision, S[row, hashes + i])
    S[row, c] = -1.0


@numba.njit(**_HELPER)
def distinct_add(S: np.ndarray, row: int, c: int, precision: int, h: float) -> None:
    """Add hash `h` to an approx_count_distinct state."""
    n = int(S[row, c])
    if n < 0:
        hll_add(S, row, c, precision, h)
        return
    exact = 1 << (precision - 4)
    base = c + 1
    lo, hi = 0, n
    while lo < hi:
        middle = (lo + hi) >> 1
        if S[row, base + middle] < h:
            lo = middle + 1
        else:
            hi = middle
    if lo < n and S[row, base + lo] == h:
        return
    if n < exact:
        j = n
        while j > lo:
            S[row, base + j] = S[row, base + j - 1]
            j -= 1
        S[row, base + lo] = h
        S[row, c] = n + 1
        return
    hll_from_exact(S, row, c, precision, base, n)
    hll_add(S, row, c, precision, h)


@numba.njit(**_HELPER)
def distinct_merge(A: np.ndarray, arow: int, B: np.ndarray, brow: int, c: int,
                   precision: int) -> None:
    """Merge approx_count_distinct state B into the accumulator A, which has room for
    2 * E more slots (a union of two exact forms)."""
    nb = int(B[brow, c])
    if nb == 0:
        return
    registers = 1 << (precision - 3)
    exact = registers >> 1
    base = c + 1
    na = int(A[arow, c])
    if na >= 0 and nb > 0:
        # Union of two sorted hash lists: its size first, then, when it stays exact,
        # merged in place from the back (A's list and B's are in a few cache lines).
        i, j, u = 0, 0, 0
        while i < na or j < nb:
            if j >= nb or (i < na and A[arow, base + i] < B[brow, base + j]):
                i += 1
            elif i >= na or B[brow, base + j] < A[arow, base + i]:
                j += 1
            else:
                i += 1
                j += 1
            u += 1
        if u <= exact:
            i, j = na - 1, nb - 1
            for w in range(u - 1, -1, -1):
                if j < 0 or (i >= 0 and A[arow, base + i] > B[brow, base + j]):
                    h = A[arow, base + i]
                    i -= 1
                elif i < 0 or B[brow, base + j] > A[arow, base + i]:
                    h = B[brow, base + j]
                    j -= 1
                else:
                    h = A[arow, base + i]
                    i -= 1
                    j -= 1
                A[arow, base + w] = h
            A[arow, c] = u
            return
        # Too many for the exact form: the union goes to the room after A's state.
        room = base + exact + registers
        i, j, u = 0, 0, 0
        while i < na or j < nb:
            if j >= nb or (i < na and A[arow, base + i] < B[brow, base + j]):
                h = A[arow, base + i]
                i += 1
            elif i >= na or B[brow, base + j] < A[arow, base + i]:
                h = B[brow, base + j]
                j += 1
            else:
                h = A[arow, base + i]
                i += 1
                j += 1
            A[arow, room + u] = h
            u += 1
        hll_from_exact(A, arow, c, precision, room, u)
        return
    if na >= 0:  # B holds registers: A's hashes join them
        hll_from_exact(A, arow, c, precision, base, na)
    if nb > 0:
        for k in range(nb):
            hll_add(A, arow, c, precision, B[brow, base + k])
        return
    for j in range(base + exact, base + exact + registers):
        b = np.int64(B[brow, j])
        if b == 0:
            continue
        a = np.int64(A[arow, j])
        merged = np.int64(0)
        for shift in range(0, 48, 6):
            merged |= max((a >> shift) & 63, (b >> shift) & 63) << shift
        A[arow, j] = float(merged)


@numba.njit(**_HELPER)
def distinct_estimate(S: np.ndarray, row: int, c: int, precision: int) -> float:
    """The number of distinct values: exact, or HyperLogLog's estimate (linear counting
    while it is below 2.5 m and some register is empty), rounded."""
    n = S[row, c]
    if n >= 0.0:
        return n
    registers = 1 << (precision - 3)
    m = float(1 << precision)
    total = 0.0
    zeros = 0
    for j in range(registers):
        packed = np.int64(S[row, c + 1 + (registers >> 1) + j])
        for shift in range(0, 48, 6):
            rank = (packed >> shift) & 63
            total += math.ldexp(1.0, -rank)
            if rank == 0:
                zeros += 1
    estimate = 0.7213 / (1.0 + 1.079 / m) * m * m / total
    if estimate <= 2.5 * m and zeros > 0:
        estimate = m * np.log(m / zeros)
    return float(np.round(estimate))


@numba.njit(inline="always")
def bin_index(magnitude: float) -> int:
    """The logarithmic bin of a positive magnitude: ceil(log_gamma(magnitude))."""
    return int(np.ceil(np.log(magnitude) / _P_LOG_GAMMA))


@numba.njit(inline="always")
def bin_value(index: int) -> float:
    """The value a bin stands for: within P_ALPHA of every magnitude in it."""
    # In logs, and at most the largest float: the bins near it would overflow.
    return min(np.exp(index * _P_LOG_GAMMA + np.log(2.0 / (P_GAMMA + 1.0))), _P_LARGEST)


@numba.njit(**_HELPER)
def store_raise(S: np.ndarray, row: int, s: int, top: int) -> None:
    """Make bin `top` the store's highest slot (it is above the current top, or the store
    is empty): bins falling below slot 0 add to slot 0. Slots below the lowest used one
    hold anything (they are cleared when first used), so an empty store costs nothing."""
    low = int(S[row, s + 1])
    counts = s + 2
    if low < P_BINS:
        shift = top - int(S[row, s])
        bottom = 0.0
        for k in range(low, min(shift, P_BINS - 1) + 1):
            bottom += S[row, counts + k]
        if shift >= P_BINS:
            for k in range(1, P_BINS):
                S[row, counts + k] = 0.0
            low = 0
        else:
            low = max(low - shift, 0)
            for k in range(max(low, 1), P_BINS - shift):
                S[row, counts + k] = S[row, counts + k + shift]
            for k in range(max(P_BINS - shift, 1), P_BINS):
                S[row, counts + k] = 0.0
        if low == 0:
            S[row, counts] = bottom
        S[row, s + 1] = low
    S[row, s] = top


@numba.njit(**_HELPER)
def store_lower(S: np.ndarray, row: int, s: int, slot: int) -> None:
    """Make `slot` the lowest used slot if it is below it, clearing the slots between."""
    low = int(S[row, s + 1])
    if slot < low:
        for k in range(slot, low):
            S[row, s + 2 + k] = 0.0
        S[row, s + 1] = slot


@numba.njit(**_HELPER)
def store_add(S: np.ndarray, row: int, s: int, index: int, count: float) -> None:
    """Add `count` values of bin `index` to the store at s."""
    if S[row, s + 1] >= P_BINS or index > S[row, s]:
        store_raise(S, row, s, index)
    slot = max(index - int(S[row, s]) + P_BINS - 1, 0)
    store_lower(S, row, s, slot)
    S[row, s + 2 + slot] += count


@numba.njit(**_HELPER)
def store_merge(A: np.ndarray, arow: int, B: np.ndarray, brow: int, s: int) -> None:
    """Add store B's counts to store A (same layout at s)."""
    low = int(B[brow, s + 1])
    if low >= P_BINS:
        return
    top = int(B[brow, s])
    if A[arow, s + 1] >= P_BINS or top > A[arow, s]:
        store_raise(A, arow, s, top)
    shift = int(A[arow, s]) - top  # B's slot k is A's slot k - shift (0 at least)
    store_lower(A, arow, s, max(low - shift, 0))
    for k in range(low, P_BINS):
        A[arow, s + 2 + max(k - shift, 0)] += B[brow, s + 2 + k]


@numba.njit(**_HELPER)
def percentile_histogram(S: np.ndarray, row: int, c: int, count: int) -> None:
    """Turn the exact form at c (its first `count` values) into the histogram."""
    zero = c + 1 + P_EXACT
    S[row, zero] = 0.0
    S[row, zero + 1] = 0.0
    S[row, zero + 2] = 0.0
    for s in (zero + 3, zero + 3 + _P_STORE):
        S[row, s] = 0.0
        S[row, s + 1] = P_BINS  # empty
    add_sorted(S, row, c, S, row, count)


@numba.njit(**_HELPER)
def add_sorted(S: np.ndarray, row: int, c: int, B: np.ndarray, brow: int, count: int) -> None:
    """Add the `count` sorted values of B's exact form at c to S's histogram at c.

    Largest magnitudes first: each store's top bin is then set by its first value and
    never raised again, which would move every count in the store."""
    i = 0
    while i < count and B[brow, c + 1 + i] < 0.0:
        i += 1
    for j in range(count - 1, i - 1, -1):
        percentile_value(S, row, c, B[brow, c + 1 + j], 1.0)
    for j in range(i):
        percentile_value(S, row, c, B[brow, c + 1 + j], 1.0)


@numba.njit(**_HELPER)
def percentile_value(S: np.ndarray, row: int, c: int, x: float, count: float) -> None:
    """Add `count` values x to the histogram at c."""
    zero = c + 1 + P_EXACT
    if x == 0.0:
        S[row, zero] += count
    elif x - x != 0.0:  # an infinity: counted apart, so the bins stay finite
        S[row, zero + (2 if x > 0.0 else 1)] += count
    elif x > 0.0:
        store_add(S, row, zero + 3 + _P_STORE, bin_index(x), count)
    else:
        store_add(S, row, zero + 3, bin_index(-x), count)


@numba.njit(**_HELPER)
def percentile_add(S: np.ndarray, row: int, c: int, x: float) -> None:
    """Add one value to an approx_percentile state."""
    n = int(S[row, c])
    if n < P_EXACT:
        i = n
        while i > 0 and S[row, c + i] > x:
            S[row, c + 1 + i] = S[row, c + i]
            i -= 1
        S[row, c + 1 + i] = x
    else:
        if n == P_EXACT:
            percentile_histogram(S, row, c, n)
        percentile_value(S, row, c, x, 1.0)
    S[row, c] = n + 1


@numba.njit(**_HELPER)
def percentile_merge(A: np.ndarray, arow: int, B: np.ndarray, brow: int, c: int) -> None:
    """Merge approx_percentile state B into the accumulator A."""
    nb = int(B[brow, c])
    if nb == 0:
        return
    na = int(A[arow, c])
    if na + nb <= P_EXACT:
        i, j = na - 1, nb - 1
        for w in range(na + nb - 1, -1, -1):
            if j < 0 or (i >= 0 and A[arow, c + 1 + i] > B[brow, c + 1 + j]):
                A[arow, c + 1 + w] = A[arow, c + 1 + i]
                i -= 1
            else:
                A[arow, c + 1 + w] = B[brow, c + 1 + j]
                j -= 1
    else:
        if na <= P_EXACT:
            percentile_histogram(A, arow, c, na)
        if nb <= P_EXACT:
            add_sorted(A, arow, c, B, brow, nb)
        else:
            zero = c + 1 + P_EXACT
            for k in range(3):
                A[arow, zero + k] += B[brow, zero + k]
            store_merge(A, arow, B, brow, zero + 3)
            store_merge(A, arow, B, brow, zero + 3 + _P_STORE)
    A[arow, c] = na + nb


@numba.njit(**_HELPER)
def percentile_values(S: np.ndarray, row: int, c: int, Q: np.ndarray, f: int, k: int,
                      out: np.ndarray, items: int, column: int) -> None:
    """The nearest-rank quantiles Q[f, :k] (the value at rank max(ceil(q n), 1)) into
    out[items + j, column]; from the histogram, their bins' values. One walk over the
    bins answers every q, in the order of their ranks."""
    n = int(S[row, c])
    if n <= P_EXACT:
        for j in range(k):
            out[items + j, column] = S[row, c + 1 + nearest_rank(Q, f, j, n)]
        return
    zero = c + 1 + P_EXACT
    negative, positive = zero + 3, zero + 3 + _P_STORE
    j = next_quantile(Q, f, k, -1)  # the quantile of lowest rank not yet answered
    rank = nearest_rank(Q, f, j, n)
    seen = S[row, zero + 1]
    while j >= 0 and seen > rank:
        out[items + j, column] = -np.inf
        j = next_quantile(Q, f, k, j)
        rank = nearest_rank(Q, f, j, n)
    top = int(S[row, negative]) - (P_BINS - 1)
    for b in range(P_BINS - 1, int(S[row, negative + 1]) - 1, -1):
        if j < 0:
            return
        seen += S[row, negative + 2 + b]
        while j >= 0 and seen > rank:
            out[items + j, column] = -bin_value(top + b)
            j = next_quantile(Q, f, k, j)
            rank = nearest_rank(Q, f, j, n)
    seen += S[row, zero]
    while j >= 0 and seen > rank:
        out[items + j, column] = 0.0
        j = next_quantile(Q, f, k, j)
        rank = nearest_rank(Q, f, j, n)
    top = int(S[row, positive]) - (P_BINS - 1)
    for b in range(int(S[row, positive + 1]), P_BINS):
        if j < 0:
            return
        seen += S[row, positive + 2 + b]
        while j >= 0 and seen > rank:
            out[items + j, column] = bin_value(top + b)
            j = next_quantile(Q, f, k, j)
            rank = nearest_rank(Q, f, j, n)
    while j >= 0:  # the rest are +inf
        out[items + j, column] = np.inf
        j = next_quantile(Q, f, k, j)


@numba.njit(inline="always")
def nearest_rank(Q: np.ndarray, f: int, j: int, n: int) -> int:
    """The 0-based rank of quantile Q[f, j] of n values: max(ceil(q n), 1) - 1; 0 for
    j = -1 (no quantile left)."""
    return max(int(np.ceil(Q[f, j] * n)), 1) - 1 if j >= 0 else 0


@numba.njit(inline="always")
def next_quantile(Q: np.ndarray, f: int, k: int, previous: int) -> int:
    """The quantile after `previous` (-1: the first) in the order of (q, position); -1
    after the last. Quadratic in k, which is at most 20, and needs no sorted copy."""
    best = -1
    for j in range(k):
        later = previous < 0 or Q[f, j] > Q[f, previous] or (
            Q[f, j] == Q[f, previous] and j > previous)
        if later and (best < 0 or Q[f, j] < Q[f, best]):
            best = j
    return best


@numba.njit(**_INLINE)
def empty_state(FT: np.ndarray, f: int, S: np.ndarray, row: int) -> None:
    """Reset feature f's slots to empty: the identity of `merge_state`, bit for bit."""
    agg, c = FT[f, AGG], 1 + FT[f, OFFSET]
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
    elif agg in (DECAYED_SUM, DECAYED_COUNT):
        S[row, c] = np.nan  # the time the sum is weighted at
        S[row, c + 1] = 0.0
    elif agg in (LAST_N, FIRST_N, TOP_K):
        S[row, c] = 0.0
        for j in range(2 * FT[f, SIZE]):
            S[row, c + 1 + j] = np.nan
    elif agg in (APPROX_COUNT_DISTINCT, APPROX_PERCENTILE):
        S[row, c] = 0.0  # the rest is read only once written (see the sketches)
    else:
        S[row, c] = np.nan
        S[row, c + 1] = np.nan


@numba.njit(**_INLINE)
def fold_events(FT: np.ndarray, f: int, S: np.ndarray, row: int, ts: np.ndarray,
                V: np.ndarray, r0: int, r1: int) -> None:
    """Fold events `r0 .. r1 - 1` (value `V[r, column]`, or 1.0 when column < 0) in order.

    A NaN value is a null and is skipped. The switch sits outside the event loop.
    """
    agg, c, column = FT[f, AGG], 1 + FT[f, OFFSET], FT[f, EXPR]
    if agg >= DECAYED_SUM:
        fold_more(FT, f, S, row, ts, V, r0, r1)
    elif agg in (COUNT, SUM, MEAN):
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


@numba.njit(**_HELPER)
def fold_more(FT: np.ndarray, f: int, S: np.ndarray, row: int, ts: np.ndarray,
              V: np.ndarray, r0: int, r1: int) -> None:
    """`fold_events` of the aggregations after `last`: called, not written into the
    callers, which keeps the kernels quick to compile."""
    agg, c, column = FT[f, AGG], 1 + FT[f, OFFSET], FT[f, EXPR]
    if agg in (DECAYED_SUM, DECAYED_COUNT):
        # The sum is kept weighted as of its latest event's time `at`; a later event
        # first decays it to its own time.
        half_life = FT[f, PARAM]
        at, s = S[row, c], S[row, c + 1]
        for r in range(r0, r1):
            x = 1.0 if column < 0 else V[r, column]
            if x == x:
                if agg == DECAYED_COUNT:
                    x = 1.0
                t = float(ts[r])
                if at != at:
                    at = t
                    s = x
                elif t >= at:
                    s = s * np.exp2(-(t - at) / half_life) + x
                    at = t
                else:
                    s += x * np.exp2(-(at - t) / half_life)
        S[row, c] = at
        S[row, c + 1] = s
    elif agg == LAST_N:
        # Newest first: walking back from the latest event, a full list can stop at the
        # first event older than its last entry.
        n = FT[f, SIZE]
        for r in range(r1 - 1, r0 - 1, -1):
            t = float(ts[r])
            if S[row, c] == n and t < S[row, c - 1 + 2 * n]:
                break
            x = V[r, column]
            if x == x:
                insert_entry(agg, S, row, c, n, t, x)
    elif agg == FIRST_N:
        n = FT[f, SIZE]
        for r in range(r0, r1):
            t = float(ts[r])
            if S[row, c] == n and t > S[row, c - 1 + 2 * n]:
                break
            x = V[r, column]
            if x == x:
                insert_entry(agg, S, row, c, n, t, x)
    elif agg == TOP_K:
        capacity = FT[f, SIZE]
        for r in range(r0, r1):
            x = V[r, column]
            if x == x:
                count_value(S, row, c, capacity, x)
    elif agg == APPROX_COUNT_DISTINCT:
        precision = FT[f, PARAM]
        for r in range(r0, r1):
            x = V[r, column]
            if x == x:
                distinct_add(S, row, c, precision, value_hash(x))
    else:
        for r in range(r0, r1):
            x = V[r, column]
            if x == x:
                percentile_add(S, row, c, x)


@numba.njit(**_INLINE)
def merge_state(FT: np.ndarray, f: int, A: np.ndarray, arow: int, B: np.ndarray,
                brow: int) -> None:
    """Merge feature f's slots of a later state B into the accumulator A."""
    agg, c = FT[f, AGG], 1 + FT[f, OFFSET]
    if agg >= DECAYED_SUM:
        merge_more(FT, f, A, arow, B, brow)
    elif agg in (COUNT, SUM):
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


@numba.njit(**_HELPER)
def merge_more(FT: np.ndarray, f: int, A: np.ndarray, arow: int, B: np.ndarray,
               brow: int) -> None:
    """`merge_state` of the aggregations after `last` (see `fold_more`)."""
    agg, c = FT[f, AGG], 1 + FT[f, OFFSET]
    if agg in (DECAYED_SUM, DECAYED_COUNT):
        tb = B[brow, c]
        if tb == tb:
            ta, half_life = A[arow, c], FT[f, PARAM]
            if ta != ta:
                A[arow, c] = tb
                A[arow, c + 1] = B[brow, c + 1]
            elif tb >= ta:
                weight = np.exp2(-(tb - ta) / half_life)
                A[arow, c + 1] = A[arow, c + 1] * weight + B[brow, c + 1]
                A[arow, c] = tb
            else:
                A[arow, c + 1] += B[brow, c + 1] * np.exp2(-(ta - tb) / half_life)
    elif agg in (LAST_N, FIRST_N):
        n = FT[f, SIZE]
        for j in range(int(B[brow, c])):
            insert_entry(agg, A, arow, c, n, B[brow, c + 1 + 2 * j], B[brow, c + 2 + 2 * j])
    elif agg == TOP_K:
        merge_counters(A, arow, B, brow, c, FT[f, SIZE])
    elif agg == APPROX_COUNT_DISTINCT:
        distinct_merge(A, arow, B, brow, c, FT[f, PARAM])
    else:
        percentile_merge(A, arow, B, brow, c)


@numba.njit(**_INLINE)
def final_value(agg: int, S: np.ndarray, row: int, o: int) -> float:
    """The value of a scalar aggregation's state (NaN is null)."""
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
def write_value(FT: np.ndarray, f: int, S: np.ndarray, row: int, out: np.ndarray,
                column: int, t: int, start: int, Q: np.ndarray) -> None:
    """Feature f's value at time t into out[:, column]; a lifetime state answering a
    window keeps only entries at or after `start` (MIN_TIME otherwise)."""
    agg = FT[f, AGG]
    if agg >= DECAYED_SUM:
        write_more(FT, f, S, row, out, column, t, start, Q)
    else:
        value = final_value(agg, S, row, FT[f, OFFSET])
        if agg == LAST and not (S[row, 1 + FT[f, OFFSET]] >= start):
            value = np.nan
        out[FT[f, OUT], column] = value


@numba.njit(**_HELPER)
def write_more(FT: np.ndarray, f: int, S: np.ndarray, row: int, out: np.ndarray,
               column: int, t: int, start: int, Q: np.ndarray) -> None:
    """`write_value` of the aggregations after `last` (see `fold_more`).

    A list feature writes its length to its own row and its items, NaN-padded, to the
    rows from FT[f, ITEMS]: top_k writes k values, then their k counts; approx_percentile
    one value per quantile."""
    agg, c, target = FT[f, AGG], 1 + FT[f, OFFSET], FT[f, OUT]
    if agg in (LAST_N, FIRST_N):
        n, items = FT[f, SIZE], FT[f, ITEMS]
        kept = 0
        for i in range(int(S[row, c])):
            if S[row, c + 1 + 2 * i] >= start:
                out[items + kept, column] = S[row, c + 2 + 2 * i]
                kept += 1
        for i in range(kept, n):
            out[items + i, column] = np.nan
        out[target, column] = kept
    elif agg == TOP_K:
        k, items = FT[f, PARAM], FT[f, ITEMS]
        m = int(S[row, c])
        previous_count, previous_value = np.inf, -np.inf
        kept = 0
        for i in range(k):
            best = -1
            best_count, best_value = 0.0, 0.0
            for j in range(m):
                count, value = S[row, c + 2 + 2 * j], S[row, c + 1 + 2 * j]
                after = count < previous_count or (count == previous_count
                                                   and value > previous_value)
                if after and (best < 0 or count > best_count
                              or (count == best_count and value < best_value)):
                    best, best_count, best_value = j, count, value
            if best < 0:
                break
            out[items + i, column] = best_value
            out[items + k + i, column] = best_count
            previous_count, previous_value = best_count, best_value
            kept += 1
        for i in range(kept, k):
            out[items + i, column] = np.nan
            out[items + k + i, column] = np.nan
        out[target, column] = kept
    elif agg in (DECAYED_SUM, DECAYED_COUNT):
        at = S[row, c]
        weight = np.exp2(-(t - at) / FT[f, PARAM])
        out[target, column] = 0.0 if at != at else S[row, c + 1] * weight
    elif agg == APPROX_COUNT_DISTINCT:
        out[target, column] = distinct_estimate(S, row, c, FT[f, PARAM])
    else:
        k, items = FT[f, PARAM], FT[f, ITEMS]
        present = S[row, c] > 0.0
        if present:
            percentile_values(S, row, c, Q, f, k, out, items, column)
        else:
            for j in range(k):
                out[items + j, column] = np.nan
        out[target, column] = k if present else 0


@numba.njit(**_HELPER)
def empty_group(S: np.ndarray, row: int, FT: np.ndarray, f0: int, f1: int) -> None:
    """Reset the states of features `f0 .. f1 - 1` (one group) to empty."""
    for f in range(f0, f1):
        empty_state(FT, f, S, row)


@numba.njit(**_HELPER)
def fold_group(S: np.ndarray, row: int, FT: np.ndarray, f0: int, f1: int, ts: np.ndarray,
               V: np.ndarray, r0: int, r1: int) -> None:
    """Fold events `r0 .. r1 - 1` into every state of one group."""
    if r1 > r0:
        for f in range(f0, f1):
            fold_events(FT, f, S, row, ts, V, r0, r1)


@numba.njit(**_HELPER)
def final_lifetime(S: np.ndarray, FT: np.ndarray, f0: int, f1: int, out: np.ndarray,
                   column: int, t: int, Q: np.ndarray) -> None:
    """Lifetime feature values at `t`; a windowed `last` or `last_n` lives here too
    (see graph.py), keeping only what falls inside its window."""
    zero = np.int64(0)
    for f in range(f0, f1):
        window, hop = FT[f, WINDOW], FT[f, HOP]
        start = floor_div(t, hop) * hop - window if window > 0 else MIN_TIME
        write_value(FT, f, S, zero, out, column, t, start, Q)


@numba.njit(**_INLINE)
def accumulator_room(FT: np.ndarray) -> int:
    """Columns an accumulator needs beyond the widest state: a top_k merge works in
    3 * capacity pairs where its state keeps `capacity`."""
    room = 0
    for f in range(FT.shape[0]):
        if FT[f, AGG] == TOP_K:
            room = max(room, 4 * FT[f, SIZE])
        elif FT[f, AGG] == APPROX_COUNT_DISTINCT:
            room = max(room, 1 << (FT[f, PARAM] - 3))
    return room


@numba.njit(**_INLINE)
def encode_state(FT: np.ndarray, f: int, S: np.ndarray, row: int, data: np.ndarray,
                 w: int) -> int:
    """Write feature f's state to data[w:] as stored (only what is in use of a sketch's
    slots); returns the position after it."""
    agg, c = FT[f, AGG], 1 + FT[f, OFFSET]
    if agg == APPROX_COUNT_DISTINCT:
        registers = 1 << (FT[f, PARAM] - 3)
        n = int(S[row, c])
        data[w] = n
        start, count = (c + 1, n) if n >= 0 else (c + 1 + (registers >> 1), registers)
        for k in range(count):
            data[w + 1 + k] = S[row, start + k]
        return w + 1 + count
    if agg == APPROX_PERCENTILE:
        n = int(S[row, c])
        data[w] = n
        if n <= P_EXACT:
            for k in range(n):
                data[w + 1 + k] = S[row, c + 1 + k]
            return w + 1 + n
        zero = c + 1 + P_EXACT
        for k in range(3):  # zeros, -inf, +inf
            data[w + 1 + k] = S[row, zero + k]
        w += 4
        for s in (zero + 3, zero + 3 + _P_STORE):
            low = int(S[row, s + 1])
            data[w] = S[row, s]
            data[w + 1] = low
            for k in range(low, P_BINS):
                data[w + 2 + k - low] = S[row, s + 2 + k]
            w += 2 + P_BINS - low
        return w
    for k in range(FT[f, WIDTH]):
        data[w + k] = S[row, c + k]
    return w + FT[f, WIDTH]


@numba.njit(**_INLINE)
def decode_state(FT: np.ndarray, f: int, data: np.ndarray, pos: int, S: np.ndarray,
                 row: int) -> int:
    """Read feature f's state written by `encode_state` at data[pos:] into S[row];
    returns the position after it."""
    agg, c = FT[f, AGG], 1 + FT[f, OFFSET]
    if agg == APPROX_COUNT_DISTINCT:
        registers = 1 << (FT[f, PARAM] - 3)
        n = int(data[pos])
        S[row, c] = n
        start, count = (c + 1, n) if n >= 0 else (c + 1 + (registers >> 1), registers)
        for k in range(count):
            S[row, start + k] = data[pos + 1 + k]
        return pos + 1 + count
    if agg == APPROX_PERCENTILE:
        n = int(data[pos])
        S[row, c] = n
        if n <= P_EXACT:
            for k in range(n):
                S[row, c + 1 + k] = data[pos + 1 + k]
            return pos + 1 + n
        zero = c + 1 + P_EXACT
        for k in range(3):
            S[row, zero + k] = data[pos + 1 + k]
        pos += 4
        for s in (zero + 3, zero + 3 + _P_STORE):
            low = int(data[pos + 1])
            S[row, s] = data[pos]
            S[row, s + 1] = low
            for k in range(low, P_BINS):
                S[row, s + 2 + k] = data[pos + 2 + k - low]
            pos += 2 + P_BINS - low
        return pos
    for k in range(FT[f, WIDTH]):
        S[row, c + k] = data[pos + k]
    return pos + FT[f, WIDTH]


@numba.njit(**_HELPER)
def encode_rows(T: np.ndarray, r0: int, count: int, FT: np.ndarray, f0: int, f1: int,
                data: np.ndarray, w: int, keyed: bool) -> int:
    """Rows r0 .. r0 + count - 1 of T (a key unless not `keyed`, then features
    f0 .. f1 - 1) into data[w:]."""
    for r in range(r0, r0 + count):
        if keyed:
            data[w] = T[r, 0]
            w += 1
        for f in range(f0, f1):
            w = encode_state(FT, f, T, r, data, w)
    return w


@numba.njit(**_HELPER)
def decode_rows(data: np.ndarray, pos: int, count: int, FT: np.ndarray, f0: int, f1: int,
                T: np.ndarray, keyed: bool) -> int:
    """Rows written by `encode_rows` at data[pos:] into rows 0 .. count - 1 of T."""
    for r in range(count):
        if keyed:
            T[r, 0] = data[pos]
            pos += 1
        for f in range(f0, f1):
            pos = decode_state(FT, f, data, pos, T, r)
    return pos


@numba.njit(**_INLINE)
def start_lifetime(life: np.ndarray, blob: np.ndarray, pos: int, has_state: bool,
                   width: int, FT: np.ndarray, f0: int, f1: int, compact: bool) -> None:
    """Row 0 of `life`: the running state stored in `blob` at `pos`, or empty."""
    zero = np.int64(0)
    if not has_state:
        empty_group(life, zero, FT, f0, f1)
    elif compact:
        # Row counts and flags as variables: a literal argument compiles a new version.
        one = np.int64(1)
        decode_rows(blob, pos, one, FT, f0, f1, life, one == 0)
    else:
        for s in range(width):
            life[0, 1 + s] = blob[pos + s]


@numba.njit(**_HELPER)
def tiles_of(ts: np.ndarray, e0: int, e1: int, hop: int, levels: int) -> int:
    """How many tiles, over every level, events e0 .. e1 - 1 (sorted by time) fall in."""
    count = 0
    for k in range(levels):
        previous = np.int64(0)
        for r in range(e0, e1):
            j = floor_div(ts[r], hop) >> (2 * k)
            if r == e0 or j != previous:
                count += 1
                previous = j
    return count


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
            for t in range(m - first):
                fold_events(FT, f, T, base + first + t, ts, V, spans[0, t], spans[1, t])
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
    """Point the remembered search position of group g's windows at their level starts,
    and forget their merged tails (the tiles changed)."""
    for w in range(w0, w1):
        for level in range(levels):
            first[w, level] = starts[g, level]
        first[w, first.shape[1] - 1] = MIN_TIME


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
                  tails: np.ndarray, FT: np.ndarray, MT: np.ndarray, m0: int, m1: int,
                  scratch: np.ndarray, out: np.ndarray, column: int, t: int,
                  Q: np.ndarray) -> None:
    """The features of window `w` (members MT[m0:m1]) at time t (hop index B), into
    out[:, column].

    The tail's tiles are found and merged in time order, then the head state H[hrow], into
    the accumulator A, and the result finalized. With a row per window in `tails` (the
    offline path), the tail is merged into tails[w] and kept: a later query with the same
    B (the last column of `first` remembers it) starts from it. Merging a state into an
    empty one is an exact copy, so the values are the same bits either way, and do not
    depend on how a tile is found.
    """
    zero = np.int64(0)
    lv, ix, hint, rows = scratch[0], scratch[1], scratch[2], scratch[3]
    keep = tails.shape[0] > 0
    fresh = not keep or first[w, first.shape[1] - 1] != B
    nb = decompose(B - hops, B, levels, lv, ix) if fresh else 0
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
        for e in range(0 if fresh and keep else 1, 2):
            target, trow = (tails, w) if e == 0 else (A, zero)
            empty_state(FT, f, target, trow)
        # Steps: the tail's tiles (when fresh) into tails[w], or into A when no tail is
        # kept; then the kept tail and the head into A. One call site keeps the switch
        # written into this function one copy.
        for step in range(nb + 2):
            if step < nb:
                target, trow = (tails, w) if keep else (A, zero)
                source, row = T, rows[step]
            elif step == nb:
                target, trow, source, row = A, zero, tails, (w if keep else -1)
            else:
                target, trow, source, row = A, zero, H, hrow
            if row >= 0:
                merge_state(FT, f, target, trow, source, row)
        write_value(FT, f, A, zero, out, column, t, np.int64(MIN_TIME), Q)
    first[w, first.shape[1] - 1] = B


# --- drivers -----------------------------------------------------------------------------


@numba.njit(**_JIT)
def training(ent: np.ndarray, ts: np.ndarray, V: np.ndarray, qent: np.ndarray,
             qts: np.ndarray, q0: int, q1: int, i0: int, i1: int, FT: np.ndarray,
             GT: np.ndarray, WT: np.ndarray, MT: np.ndarray, Q: np.ndarray, max_blocks: int,
             out: np.ndarray) -> None:
    """Feature values at query times `q0 .. q1 - 1` from raw events (the offline path).

    Events `i0 .. i1 - 1` and the queries are sorted by (entity, time); the queries'
    entities' events all lie in that event range. Writes out[:, q0:q1] (NaN = null).
    """
    zero = np.int64(0)
    lowest = np.int64(MIN_TIME)
    G = GT.shape[0] - 1
    longest = 1
    # A wide (sketch) group gets as many tile rows as an entity fills, not the bound.
    most = np.zeros(max(G, 1), np.int64)
    i = i0
    while i < i1:
        k = i
        while k < i1 and ent[k] == ent[i]:
            k += 1
        longest = max(longest, k - i)
        for g in range(G):
            if GT[g, G_COMPACT]:
                most[g] = max(most[g], tiles_of(ts, i, k, GT[g, G_HOP], GT[g, G_LEVELS]))
        i = k
    max_levels, max_width = 1, GT[G, G_WIDTH] + 1
    # Each group's tiles in a buffer of its own width: a sketch group's rows are wide,
    # the others' stay narrow (and near each other in memory).
    rows = np.empty(max(G, 1), np.int64)
    base = np.zeros(G + 1, np.int64)
    for g in range(G):
        rows[g] = (most[g] if GT[g, G_COMPACT] else GT[g, G_LEVELS] * longest) + 1
        base[g + 1] = base[g] + rows[g] * (GT[g, G_WIDTH] + 1)
        max_levels = max(max_levels, GT[g, G_LEVELS] + 1)
        max_width = max(max_width, GT[g, G_WIDTH] + 1)
    tiles = np.empty(base[G])
    heads = np.empty((max(G, 1), max_width))
    acc = np.empty((1, max_width + accumulator_room(FT)))
    tails = np.empty((max(WT.shape[0], 1), max_width + accumulator_room(FT)))
    life = np.empty((1, max_width))
    starts = np.empty((max(G, 1), max_levels), np.int64)
    first = np.empty((max(WT.shape[0], 1), max_levels + 1), np.int64)
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
            T = tiles[base[g]:base[g + 1]].reshape((rows[g], GT[g, G_WIDTH] + 1))
            m = build_tiles(ts, V, e0, e1, none, zero, T, zero, lowest, FT, GT, g, hops,
                            spans)
            level_starts(T, zero, m, GT[g, G_LEVELS], starts, g)
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
            final_lifetime(life, FT, GT[G, G_F0], GT[G, G_F1], out, c, t, Q)
            for g in range(G):
                hop = GT[g, G_HOP]
                B = floor_div(t, hop)
                while h[g] < p and ts[h[g]] < B * hop:
                    h[g] += 1
                empty_group(heads, g, FT, GT[g, G_F0], GT[g, G_F1])
                fold_group(heads, g, FT, GT[g, G_F0], GT[g, G_F1], ts, V, h[g], p)
                T = tiles[base[g]:base[g + 1]].reshape((rows[g], GT[g, G_WIDTH] + 1))
                for w in range(GT[g, G_W0], GT[g, G_W1]):
                    window_values(T, starts, g, first, w, GT[g, G_LEVELS], WT[w, W_HOPS], B,
                                  heads, g, acc, tails, FT, MT, WT[w, W_M0], WT[w, W_M1], scratch,
                                  out, c, t, Q)


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
    # A wide (sketch) group gets as many tile rows as an entity fills, not the bound; its
    # stored tiles are compact, so their number is read from each blob.
    most = np.zeros(max(G, 1), np.int64)
    i = 0
    while i < n:
        k = i
        while k < n and ent[k] == ent[i]:
            k += 1
        longest = max(longest, k - i)
        a0, a1 = old_off[ne], old_off[ne + 1]
        most_old = max(most_old, a1 - a0)
        for g in range(G):
            if GT[g, G_COMPACT]:
                # Stored compactly: the room they take is made as they are written.
                m_old = int(old_data[a0 + 1 + g]) if a1 > a0 else 0
                tiles = tiles_of(ts, i, k, GT[g, G_HOP], GT[g, G_LEVELS]) + m_old
                most[g] = max(most[g], tiles)
            else:
                bound += GT[g, G_LEVELS] * (GT[g, G_WIDTH] + 1) * (k - i)
        bound += a1 - a0 + 1 + G + life_width
        ne += 1
        i = k
    max_width = life_width + 1
    # Each group's tiles in a buffer of its own width (see `training`).
    rows = np.empty(max(G, 1), np.int64)
    base = np.zeros(G + 1, np.int64)
    for g in range(G):
        width = GT[g, G_WIDTH] + 1
        if GT[g, G_COMPACT]:
            rows[g] = most[g] + 1
        else:
            rows[g] = GT[g, G_LEVELS] * longest + most_old // width + 1
        base[g + 1] = base[g] + rows[g] * width
        max_width = max(max_width, width)
    tiles = np.empty(base[G])
    hops = np.empty(longest, np.int64)
    spans = np.empty((2, longest + most_old + 1), np.int64)
    life = np.empty((1, max_width))
    data = np.empty(bound)
    decoded = np.empty((0, max_width))
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
            compact = GT[g, G_COMPACT] != 0
            if compact:
                if decoded.shape[0] < m_old:
                    decoded = np.empty((2 * m_old, max_width))
                pos_old = decode_rows(old_data, pos_old, m_old, FT, GT[g, G_F0], GT[g, G_F1],
                                      decoded, compact)
                old = decoded
            else:
                old = old_data[pos_old:pos_old + m_old * width].reshape((m_old, width))
                pos_old += m_old * width
            hop = GT[g, G_HOP]
            cutoff = floor_div(end, hop) * hop - GT[g, G_MAX_WINDOW]
            T = tiles[base[g]:base[g + 1]].reshape((rows[g], width))
            m = build_tiles(ts, V, e0, i, old, m_old, T, zero, cutoff, FT, GT, g, hops,
                            spans)
            data[o + 1 + g] = m
            if compact:
                data = room_for(data, w, m * width)
                w = encode_rows(T, zero, m, FT, GT[g, G_F0], GT[g, G_F1], data, w, compact)
            else:
                for r in range(m):
                    for c in range(width):
                        data[w + r * width + c] = T[r, c]
                w += m * width
        f0, f1 = GT[G, G_F0], GT[G, G_F1]
        compact = GT[G, G_COMPACT] != 0
        start_lifetime(life, old_data, pos_old, a1 > a0, life_width, FT, f0, f1, compact)
        fold_group(life, zero, FT, f0, f1, ts, V, e0, i)
        if compact:
            o = encode_rows(life, zero, zero + 1, FT, f0, f1, data, w, not compact)
        else:
            for s in range(life_width):
                data[w + s] = life[0, 1 + s]
            o = w + life_width
    off[ne] = o
    return data[:o].copy(), off, ents


@numba.njit(**_JIT)
def room_for(data: np.ndarray, used: int, more: int) -> np.ndarray:
    """`data`, or a copy of its first `used` values in a buffer twice as large, so that
    `more` values fit after them."""
    if used + more <= data.shape[0]:
        return data
    bigger = np.empty(max(2 * data.shape[0], used + more))
    for i in range(used):  # a loop: slice assignment compiles seconds of error formatting
        bigger[i] = data[i]
    return bigger


@numba.njit(**_JIT)
def values(data: np.ndarray, off: np.ndarray, at: np.ndarray, FT: np.ndarray,
           GT: np.ndarray, WT: np.ndarray, MT: np.ndarray, Q: np.ndarray, max_blocks: int,
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
    acc = np.empty((1, max_width + accumulator_room(FT)))
    tails = np.empty((0, 1))  # online each lookup decodes its own tiles: nothing to keep
    life = np.empty((1, max_width))
    starts = np.empty((1, max_levels), np.int64)
    first = np.empty((max(WT.shape[0], 1), max_levels + 1), np.int64)
    scratch = np.empty((4, max(max_blocks, max_levels)), np.int64)
    decoded = np.empty((0, max_width))
    for b in range(off.shape[0] - 1):
        a0, a1 = off[b], off[b + 1]
        t = at[b]
        pos = a0 + 1 + G
        for g in range(G):
            width, levels = GT[g, G_WIDTH] + 1, GT[g, G_LEVELS]
            m = int(data[a0 + 1 + g]) if a1 > a0 else 0
            if GT[g, G_COMPACT]:
                if decoded.shape[0] < m:
                    decoded = np.empty((2 * m, max_width))
                pos = decode_rows(data, pos, m, FT, GT[g, G_F0], GT[g, G_F1], decoded,
                                  m >= 0)
                T = decoded
            else:
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
                              acc, tails, FT, MT, WT[w, W_M0], WT[w, W_M1], scratch, out, b, t, Q)
        f0, f1 = GT[G, G_F0], GT[G, G_F1]
        start_lifetime(life, data, pos, a1 > a0, life_width, FT, f0, f1, GT[G, G_COMPACT] != 0)
        final_lifetime(life, FT, f0, f1, out, b, t, Q)


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
    features = np.zeros((0, 10), np.int64)
    groups = np.zeros((1, 9), np.int64)  # no windowed group, an empty lifetime state
    windows = np.zeros((0, 3), np.int64)
    quantiles = np.zeros((0, 1))
    out = np.empty((0, 0))
    training(none, none, np.empty((0, 1)), none, none, 0, 0, 0, 0, features, groups, windows,
             none, quantiles, 1, out)
    states(none, none, np.empty((0, 1)), np.empty(0), np.zeros(1, np.int64), 0, features,
           groups)
    values(np.empty(0), np.zeros(1, np.int64), none, features, groups, windows, none,
           quantiles, 1, out)
