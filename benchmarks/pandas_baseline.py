"""The numpy/pandas baseline of the kernel benchmarks: the demo view's 8 features.

Per-entity running sums (pandas `groupby().cumsum()`) and `np.searchsorted` on an
(entity, time) key answer count, sum, mean and std; windows laid out as index ranges and
`np.fmax.reduceat` answer max; the latest non-null (entity, time) run answers last. It
follows the same semantics as the kernels (window `[floor(t, h) - w, t)`, nulls skipped,
empty count/sum 0 and everything else null) so the benchmarks can check one against the
other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TOLERANCE = 1e-9
EPS = float(np.finfo(np.float64).eps)
# Rows of window pairs expanded at once (bounds the baseline's memory).
PAIR_CHUNK = 4_000_000


H_US = 3_600_000_000
D_US = 24 * H_US
M_US = 60_000_000

# (name, aggregation, value, window, hop): DEMO_SPEC's view, checked against it at run time.
BASELINE_FEATURES = (
    ("txn_count_1h", "count", None, H_US, 5 * M_US),
    ("amount_sum_7d", "sum", "amount", 7 * D_US, H_US),
    ("amount_mean_30d", "mean", "amount", 30 * D_US, D_US),
    ("amount_std_30d", "std", "amount", 30 * D_US, D_US),
    ("amount_max_1d", "max", "amount", D_US, H_US),
    ("big_txn_7d", "sum", "amount > 500", 7 * D_US, H_US),
    ("log_amount_sum_1d", "sum", "log1p(amount)", D_US, H_US),
    ("last_category", "last", "merchant_category", 90 * D_US, D_US),
)


def check_baseline_matches_spec(features: Sequence[Any]) -> None:
    """Fail loudly if the demo view (`features`: its FeatureSpecs) no longer starts with
    the features the baseline implements (the later ones, lists and sketches, have no
    baseline here)."""
    spec = [(f.name, f.agg, f.expr, f.window_us, f.hop_us) for f in features]
    if spec[:len(BASELINE_FEATURES)] != list(BASELINE_FEATURES):
        raise SystemExit("DEMO_SPEC changed: update BASELINE_FEATURES in "
                         "benchmarks/pandas_baseline.py")


def _distinct_sorted(values: np.ndarray) -> np.ndarray:
    """Distinct values of a sorted array, in order."""
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


class _Windows:
    """Event index ranges `[lo, hi)` of every query's window `[floor(t, h) - w, t)`.

    Events sorted by (entity, time) get one int64 key `rank(entity) * stride + (ts - t0)`,
    increasing along the events, so a window's bounds are two `np.searchsorted` calls.
    """

    def __init__(self, entity: np.ndarray, ts: np.ndarray, query_entity: np.ndarray,
                 query_ts: np.ndarray, reach: int) -> None:
        ids = np.union1d(_distinct_sorted(entity), _distinct_sorted(query_entity))
        self.t0 = int(min(ts.min(), query_ts.min())) - reach
        self.stride = int(max(ts.max(), query_ts.max())) - self.t0 + 1
        if len(ids) * self.stride >= 2**62:
            raise ValueError("time range too long for one int64 key per event")
        self.event_key = np.searchsorted(ids, entity) * self.stride + (ts - self.t0)
        self.query_base = np.searchsorted(ids, query_entity) * self.stride
        self.query_ts = query_ts
        self.first = np.searchsorted(self.event_key, self.query_base)  # entity's first event
        self.hi = np.searchsorted(self.event_key, self.query_base + (query_ts - self.t0))

    def start_key(self, window: int, hop: int) -> np.ndarray:
        """Key of each query's window start `floor(t, hop) - window`."""
        return self.query_base + (self.query_ts // hop * hop - window - self.t0)

    def lo(self, window: int, hop: int) -> np.ndarray:
        """First event index of each query's window."""
        return np.searchsorted(self.event_key, self.start_key(window, hop))


def _entity_cumsum(entity: np.ndarray, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inclusive running sums restarting at every entity (pandas groupby cumsum).

    Restarting per entity keeps the rounding error of a window's difference of two
    running sums relative to that entity's values, not to the whole data set's.
    """
    import pandas as pd

    frame = pd.DataFrame(columns, copy=False)
    summed = frame.groupby(entity, sort=False).cumsum()
    return {name: summed[name].to_numpy() for name in columns}


def _window_sum(cumulative: np.ndarray, first: np.ndarray, lo: np.ndarray,
                hi: np.ndarray) -> np.ndarray:
    """Sum over events `[lo, hi)` from per-entity inclusive running sums (0 when empty)."""
    upper = np.where(hi > first, cumulative[np.maximum(hi - 1, 0)], 0.0)
    lower = np.where(lo > first, cumulative[np.maximum(lo - 1, 0)], 0.0)
    return upper - lower


def _pairs(lo: np.ndarray, hi: np.ndarray) -> Any:
    """Yield `(queries, starts, index)` chunks: event indexes of windows laid end to end.

    `queries` are positions into `lo`/`hi` of non-empty windows, `starts` where each
    window begins in `index`; at most about PAIR_CHUNK indexes per chunk.
    """
    sizes = hi - lo
    nonempty = np.flatnonzero(sizes > 0)
    ends = np.cumsum(sizes[nonempty])
    cuts = np.searchsorted(ends, np.arange(PAIR_CHUNK, ends[-1] if len(ends) else 0,
                                           PAIR_CHUNK), side="right")
    for part in np.split(nonempty, cuts):
        if len(part) == 0:
            continue
        size = sizes[part]
        starts = np.cumsum(size) - size
        index = np.repeat(lo[part] - starts, size) + np.arange(int(size.sum()))
        yield part, starts, index


def _window_fmax(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Max of non-null values over `[lo, hi)`; NaN when the window holds none."""
    result = np.full(len(lo), np.nan)
    for part, starts, index in _pairs(lo, hi):
        result[part] = np.fmax.reduceat(values[index], starts)
    return result


def _window_last(entity: np.ndarray, ts: np.ndarray, values: np.ndarray,
                 windows: _Windows, window: int, hop: int) -> np.ndarray:
    """Latest non-null value before t inside the window; equal times take the largest."""
    run_start = np.flatnonzero(np.r_[True, (entity[1:] != entity[:-1]) | (ts[1:] != ts[:-1])])
    run_value = np.fmax.reduceat(values, run_start) if len(run_start) else np.empty(0)
    run_key = windows.event_key[run_start]
    latest = np.maximum.accumulate(np.where(run_value == run_value, np.arange(len(run_start)),
                                            -1)) if len(run_start) else np.empty(0, np.int64)
    below = np.searchsorted(run_key, windows.query_base + (windows.query_ts - windows.t0))
    run = np.where(below > 0, latest[np.maximum(below - 1, 0)], -1)
    inside = (run >= 0) & (run_key[np.maximum(run, 0)] >= windows.start_key(window, hop))
    return np.where(inside, run_value[np.maximum(run, 0)], np.nan)


def _window_std(amount: np.ndarray, entity: np.ndarray, windows: _Windows, lo: np.ndarray,
                valid_before: np.ndarray, stats: dict[str, int]) -> np.ndarray:
    """Population standard deviation of non-null amounts over `[lo, hi)`.

    Running sums of amounts centred on each entity's mean give `m2 = S2 - S1**2 / n`.
    Where a rounding-error bound of that difference exceeds 1e-10 of it (few or nearly
    equal values, where it cancels), the window is recomputed from its values shifted by
    its first value, which is exact for equal values and well conditioned otherwise.
    """
    hi, first = windows.hi, windows.first
    valid = amount == amount
    starts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]])
    lengths = np.diff(np.r_[starts, len(entity)])
    sums = np.add.reduceat(np.where(valid, amount, 0.0), starts)
    counts = np.add.reduceat(valid.astype(np.float64), starts)
    centre = np.repeat(np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0),
                       lengths)
    y = np.where(valid, amount - centre, 0.0)
    running = _entity_cumsum(entity, {"s1": y, "s2": y * y, "a1": np.abs(y)})
    n = (valid_before[hi] - valid_before[lo]).astype(np.float64)
    s1 = _window_sum(running["s1"], first, lo, hi)
    s2 = _window_sum(running["s2"], first, lo, hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        m2 = s2 - s1 * s1 / n
        k = (hi - lo + 2).astype(np.float64)
        top = np.maximum(hi - 1, 0)
        err2 = EPS * k * np.where(hi > first, running["s2"][top], 0.0)
        err1 = EPS * k * np.where(hi > first, running["a1"][top], 0.0)
        bound = err2 + (2 * np.abs(s1) * err1 + err1 * err1) / n + 2 * EPS * (s2 + s1 * s1 / n)
    redo = np.flatnonzero((n > 0) & (m2 <= 1e10 * bound))
    stats["std_windows_recomputed"] = len(redo)
    compact = amount[valid]
    a, b = valid_before[lo[redo]], valid_before[hi[redo]]
    for part, part_starts, index in _pairs(a, b):
        shifted = compact[index] - np.repeat(compact[a[part]], b[part] - a[part])
        t1 = np.add.reduceat(shifted, part_starts)
        t2 = np.add.reduceat(shifted * shifted, part_starts)
        m2[redo[part]] = t2 - t1 * t1 / n[redo[part]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.sqrt(np.maximum(m2, 0.0) / n), np.nan)


def baseline_values(entity: np.ndarray, ts: np.ndarray, amount: np.ndarray,
                    category: np.ndarray, query_entity: np.ndarray, query_ts: np.ndarray,
                    stats: dict[str, int] | None = None) -> np.ndarray:
    """The demo view's 8 features at every query, as float64 [8, n_queries] (NaN = null).

    Events and queries sorted by (entity, time). Window `[floor(t, hop) - window, t)`;
    nulls skipped; count and sum of an empty window are 0, the others null.
    """
    stats = {} if stats is None else stats
    reach = max(w + h for _, _, _, w, h in BASELINE_FEATURES)
    windows = _Windows(entity, ts, query_entity, query_ts, reach)
    first, hi = windows.first, windows.hi
    valid = amount == amount
    with np.errstate(invalid="ignore"):
        big = np.where(valid, (amount > 500).astype(np.float64), np.nan)
        log_amount = np.where(amount > -1.0, np.log1p(amount), np.nan)
    # Exact integer running counts: index k holds the count over events [0, k).
    valid_before = np.r_[0, np.cumsum(valid)]
    big_before = np.r_[0, np.cumsum(big == 1.0)]
    running = _entity_cumsum(entity, {"amount": np.where(valid, amount, 0.0),
                                      "log": np.nan_to_num(log_amount, nan=0.0)})
    out = np.empty((len(BASELINE_FEATURES), len(query_ts)))
    bounds: dict[tuple[int, int], np.ndarray] = {}
    for row, (_, agg, expr, window, hop) in enumerate(BASELINE_FEATURES):
        lo = bounds.get((window, hop))
        if lo is None:
            lo = bounds[window, hop] = windows.lo(window, hop)
        if agg == "count":
            out[row] = hi - lo
        elif agg == "sum" and expr == "amount":
            out[row] = _window_sum(running["amount"], first, lo, hi)
        elif agg == "sum" and expr == "log1p(amount)":
            out[row] = _window_sum(running["log"], first, lo, hi)
        elif agg == "sum" and expr == "amount > 500":
            out[row] = big_before[hi] - big_before[lo]
        elif agg == "mean":
            n = valid_before[hi] - valid_before[lo]
            total = _window_sum(running["amount"], first, lo, hi)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[row] = np.where(n > 0, total / n, np.nan)
        elif agg == "std":
            out[row] = _window_std(amount, entity, windows, lo, valid_before, stats)
        elif agg == "max":
            out[row] = _window_fmax(amount, lo, hi)
        elif agg == "last":
            out[row] = _window_last(entity, ts, category, windows, window, hop)
        else:
            raise ValueError(f"baseline has no {agg}({expr})")
    return out

# ---------------------------------------------------------------------------------------
# Comparison and report (parent)


def compare(kernels: np.ndarray, baseline: np.ndarray,
            names: Sequence[str]) -> list[tuple[str, int, float, int]]:
    """Per feature: (name, null mismatches, max relative difference, values beyond 1e-9).

    The relative difference of two non-null values is |a - b| / max(|a|, |b|), 0 if a == b.
    """
    rows = []
    for name, a, b in zip(names, kernels, baseline, strict=True):
        null_a, null_b = np.isnan(a), np.isnan(b)
        both = ~null_a & ~null_b
        x, y = a[both], b[both]
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.where(x == y, 0.0, np.abs(x - y) / np.maximum(np.abs(x), np.abs(y)))
        worst = float(relative.max()) if len(relative) else 0.0
        rows.append((name, int(np.count_nonzero(null_a != null_b)), worst,
                     int(np.count_nonzero(relative > TOLERANCE))))
    return rows
