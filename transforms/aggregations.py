"""What each aggregation needs: its parameter, its state width and its output rows.

Each aggregation keeps a few float64 *slots* per state (a tile, a head, a running
lifetime state); `transforms/engine.py` folds, merges and finalizes them. Most take a
fixed number of slots; the list aggregations take a number that their parameter fixes,
so every state stays bounded however many events it has seen.

The sketches (`approx_count_distinct`, `approx_percentile`) take many slots, most of
them unused while a state is small; their groups are stored compactly (only what is in
use), see `transforms/engine.py`.

A scalar feature is one output row of the kernels. A list feature is one row holding
its length plus `items` rows holding its entries, NaN-padded: `last_n` / `first_n` keep
n values; `top_k` gives k values then their k counts; `approx_percentile` one value per q.
"""

from __future__ import annotations

from transforms.spec import AGGREGATIONS, FeatureSpec

# Aggregations that take a parameter, and the spec field holding it.
PARAMETERS = {"decayed_sum": "half_life_us", "decayed_count": "half_life_us",
              "last_n": "n", "first_n": "n", "top_k": "k",
              "approx_count_distinct": "precision", "approx_percentile": "q"}
# The registry key users write for each parameter.
PARAMETER_KEYS = {"half_life_us": "half_life", "n": "n", "k": "k", "precision": "precision",
                  "q": "q"}
# Parameters that may be left out, and their defaults.
DEFAULTS = {"precision": 14}
LIST_AGGREGATIONS = frozenset({"last_n", "first_n"})
RANKED_AGGREGATIONS = frozenset({"top_k"})
SKETCHES = frozenset({"approx_count_distinct", "approx_percentile"})
# Aggregations whose value is a list.
LIST_VALUED = LIST_AGGREGATIONS | RANKED_AGGREGATIONS | {"approx_percentile"}
# Aggregations that may leave out `expr` (they count events).
COUNTING = frozenset({"count", "decayed_count"})
# top_k keeps this many counters per value it returns: a window with at most that many
# distinct values is counted exactly (docs/registry.md gives the bound beyond).
TOP_K_COUNTERS_PER_K = 4
MAX_N = 1000
MAX_K = 100
MIN_PRECISION, MAX_PRECISION = 8, 16
# The range of each whole-number parameter, by spec field (a half-life is any positive
# duration; quantiles are checked one by one).
PARAMETER_LIMITS = {"n": (1, MAX_N), "k": (1, MAX_K), "precision": (MIN_PRECISION, MAX_PRECISION)}
MAX_QUANTILES = 20
# approx_percentile: values kept exactly, histogram bins per sign (as in the engine).
PERCENTILE_EXACT = 32
PERCENTILE_BINS = 2048
PERCENTILE_ALPHA = 0.01

_FIXED_WIDTHS = {"count": 1, "sum": 1, "mean": 2, "std": 3, "min": 1, "max": 1, "first": 2,
                 "last": 2, "decayed_sum": 2, "decayed_count": 2}

if set(_FIXED_WIDTHS) | LIST_AGGREGATIONS | RANKED_AGGREGATIONS | SKETCHES != set(AGGREGATIONS):
    raise RuntimeError("aggregation widths and names disagree")  # keep the lists in step


def parameter(feature: FeatureSpec) -> int:
    """The feature's parameter as the kernels take it: n, k, the half-life, the precision
    or the number of quantiles; 0 for aggregations without one."""
    field = PARAMETERS.get(feature.agg)
    value = getattr(feature, field) if field else None
    if value is None and field in DEFAULTS:
        value = DEFAULTS[field]
    if value is None:
        return 0
    return len(value) if field == "q" else int(value)


def state_size(agg: str, param: int) -> int:
    """Entries a list state keeps: n for last_n / first_n, the counters of top_k."""
    if agg in LIST_AGGREGATIONS:
        return param
    if agg in RANKED_AGGREGATIONS:
        return TOP_K_COUNTERS_PER_K * param
    return 0


def width(agg: str, param: int = 0) -> int:
    """Number of float64 slots the aggregation's state takes."""
    if agg in _FIXED_WIDTHS:
        return _FIXED_WIDTHS[agg]
    if agg == "approx_count_distinct":
        registers = 1 << (param - 3)  # 8 six-bit registers a slot
        return 1 + registers + registers // 2  # then the exact form's hashes
    if agg == "approx_percentile":
        return 1 + PERCENTILE_EXACT + 3 + 2 * (2 + PERCENTILE_BINS)  # 3: 0, -inf, +inf
    return 1 + 2 * state_size(agg, param)  # a count, then (time or value, value or count)


def output_items(agg: str, param: int) -> int:
    """Output rows beyond the feature's own: list entries (and top_k's counts)."""
    if agg in LIST_AGGREGATIONS or agg == "approx_percentile":
        return param
    if agg in RANKED_AGGREGATIONS:
        return 2 * param
    return 0
