"""The semantic oracle: DESIGN §4 written as plainly as possible, with no tiles.

It is slow and obviously correct; property tests compare the compiled kernels with it.
Rows are dicts of real Python values (None for null, real strings); expressions are
evaluated by the reference expression evaluator.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tests.transforms.reference_expressions import evaluate
from transforms.expressions import parse_expression
from transforms.spec import FeatureSpec


@dataclass(frozen=True)
class Event:
    """One source row of one entity: its time (µs) and its columns."""

    ts: int
    row: Mapping[str, object]


def window_start(feature: FeatureSpec, t: int) -> int | None:
    """First time inside the window at `t` (None for a lifetime feature)."""
    if feature.window_us is None or feature.hop_us is None:
        return None
    return (t // feature.hop_us) * feature.hop_us - feature.window_us


def feature_value(feature: FeatureSpec, events: Sequence[Event], t: int) -> object:
    """The value of `feature` for one entity at time `t` (events strictly before t)."""
    start = window_start(feature, t)
    chosen = [e for e in events if e.ts < t and (start is None or e.ts >= start)]
    if feature.expr is None:
        values = [(e.ts, 1.0) for e in chosen]
    else:
        expr = parse_expression(feature.expr)
        values = [(e.ts, evaluate(expr, e.row)) for e in chosen]
        values = [(ts, v) for ts, v in values if v is not None and not _is_nan(v)]
    if feature.agg in ("decayed_sum", "decayed_count"):
        assert feature.half_life_us is not None
        return decayed(values, t, feature.half_life_us, feature.agg == "decayed_count")
    if feature.agg in ("last_n", "first_n"):
        assert feature.n is not None
        return ordered(values, feature.n, newest=feature.agg == "last_n")
    if feature.agg == "top_k":
        assert feature.k is not None
        return top_k(values, feature.k)
    if feature.agg == "approx_count_distinct":
        return distinct_count(values)
    if feature.agg == "approx_percentile":
        assert feature.q is not None
        return quantiles(values, feature.q)
    return aggregate(feature.agg, values)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def aggregate(agg: str, values: list[tuple[int, object]]) -> object:
    """Aggregate (time, value) pairs; empty count/sum are 0, everything else null."""
    numbers = [float(v) for _, v in values] if agg not in ("first", "last") else []
    if agg == "count":
        return len(values)
    if agg == "sum":
        return math.fsum(numbers)
    if not values:
        return None
    if agg == "mean":
        return math.fsum(numbers) / len(numbers)
    if agg == "std":
        mean = math.fsum(numbers) / len(numbers)
        return math.sqrt(math.fsum((x - mean) ** 2 for x in numbers) / len(numbers))
    if agg == "min":
        return min(numbers)
    if agg == "max":
        return max(numbers)
    # Ties in time break by value: first takes the smallest, last the largest.
    if agg == "first":
        return min(values, key=lambda pair: (pair[0], pair[1]))[1]
    return max(values, key=lambda pair: (pair[0], pair[1]))[1]


def decayed(values: list[tuple[int, object]], t: int, half_life_us: int, count: bool) -> float:
    """Each value (1 for a count) weighted by 2**(-age / half-life); 0 when empty."""
    return math.fsum((1.0 if count else float(v)) * 2.0 ** (-(t - ts) / half_life_us)
                     for ts, v in values)


def ordered(values: list[tuple[int, object]], n: int, newest: bool) -> list[object] | None:
    """The n newest values, newest first (equal times: larger value first), or the n
    oldest, oldest first (equal times: smaller value first); None when empty."""
    if not values:
        return None
    return [v for _, v in sorted(values, key=lambda pair: (pair[0], pair[1]),
                                 reverse=newest)[:n]]


def top_k(values: list[tuple[int, object]], k: int) -> list[tuple[object, int]] | None:
    """The k most frequent values with their counts: count descending, then smaller
    value first; None when empty."""
    if not values:
        return None
    counts = Counter(v for _, v in values)
    return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))[:k]


def distinct_count(values: list[tuple[int, object]]) -> int:
    """The exact number of distinct values (what approx_count_distinct estimates); 0 when
    empty."""
    return len({v for _, v in values})


def quantiles(values: list[tuple[int, object]], q: Sequence[float]) -> list[float] | None:
    """Nearest-rank quantiles, one per q in order: of the n sorted values, the one at
    0-based rank max(ceil(q n), 1) - 1 (what approx_percentile estimates); None when
    empty."""
    if not values:
        return None
    ordered_values = sorted(float(v) for _, v in values)
    n = len(ordered_values)
    return [ordered_values[max(math.ceil(p * n), 1) - 1] for p in q]
