"""A feature view's layout: the int64 tables that tell the shared kernels what to compute.

`transforms/engine.py` runs every view; what one view specialises (which aggregation
sits at which slot, read from which row expression, over which windows and hops) is
data, laid out here from the view's plan:

- FT, one row per feature, grouped: the features of windowed group 0 (in definition
  order), then group 1, ..., then the lifetime features. Columns: aggregation code, first
  slot in the group's state, row-expression column (-1: every event counts), output row,
  window and hop in microseconds (for a windowed `last` or `last_n`, which are lifetime
  states), parameter (n, k, half-life, precision or number of quantiles), entries a list
  state keeps, first output row of a list's entries (-1 for a scalar), state width.
- GT, one row per windowed group (ascending hop), then one for the lifetime state.
  Columns: hop, tile levels, state width, feature range in FT, window range in WT,
  longest window, and whether its states are stored compactly (it holds a sketch).
- WT, one row per distinct window of a group (ascending): its length in hops and the
  range of its members in MT.
- MT: FT rows of each window's members, in definition order.
- Q, float64, one row per FT row: approx_percentile's quantiles (NaN-padded).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from transforms import engine
from transforms.aggregations import (
    PERCENTILE_ALPHA,
    PERCENTILE_BINS,
    PERCENTILE_EXACT,
    SKETCHES,
    state_size,
    width,
)
from transforms.graph import FeaturePlan, GroupPlan, ViewPlan

# aggregations.py sizes the percentile state without importing Numba; the engine's own
# constants must agree (its machine code is cached by its own source alone).
if (engine.P_EXACT, engine.P_BINS, engine.P_ALPHA) != (
        PERCENTILE_EXACT, PERCENTILE_BINS, PERCENTILE_ALPHA):
    raise ImportError("the engine and transforms/aggregations.py size percentiles apart")

AGG_CODES = {"count": engine.COUNT, "sum": engine.SUM, "mean": engine.MEAN,
             "std": engine.STD, "min": engine.MIN, "max": engine.MAX,
             "first": engine.FIRST, "last": engine.LAST, "decayed_sum": engine.DECAYED_SUM,
             "decayed_count": engine.DECAYED_COUNT, "last_n": engine.LAST_N,
             "first_n": engine.FIRST_N, "top_k": engine.TOP_K,
             "approx_count_distinct": engine.APPROX_COUNT_DISTINCT,
             "approx_percentile": engine.APPROX_PERCENTILE}


@dataclass(frozen=True)
class ViewLayout:
    """The tables of one view (see the module docstring) and the scratch size they need."""

    features: np.ndarray  # FT
    groups: np.ndarray  # GT
    windows: np.ndarray  # WT
    members: np.ndarray  # MT
    quantiles: np.ndarray  # Q
    max_blocks: int  # tiles in the longest window decomposition

    @property
    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(FT, GT, WT, MT, Q), in the order the kernels take them."""
        return self.features, self.groups, self.windows, self.members, self.quantiles


def view_layout(plan: ViewPlan, only: frozenset[str] | None = None) -> ViewLayout:
    """Lay out a view's plan for the shared kernels.

    With `only`, the layout computes just those features (for the offline path: the
    states it builds are its own). Each kept feature's output rows, and each group's
    tile levels (and so every window's merge tree), stay those of the whole view, so the
    values are the same bits; the others' output rows are left alone.
    """
    ordered: list[FeaturePlan] = []
    groups: list[list[int]] = []
    windows: list[list[int]] = []
    members: list[int] = []
    for group in [*plan.groups, plan.lifetime]:
        kept = [f for f in group.features if only is None or f.name in only]
        if not kept and group is not plan.lifetime:
            continue
        if only is not None:  # the kept features' slots, packed
            offsets = np.cumsum([0] + [width(f.agg, f.param) for f in kept])
            kept = [replace(f, offset=int(o)) for f, o in zip(kept, offsets, strict=False)]
            state_width = int(offsets[-1])
        else:
            state_width = group.width
        f0 = len(ordered)
        ordered.extend(kept)
        w0 = len(windows)
        if group is not plan.lifetime:
            for window in sorted({f.window_us for f in kept if f.window_us}):
                m0 = len(members)
                members.extend(f0 + k for k, f in enumerate(kept) if f.window_us == window)
                windows.append([window // _hop(group), m0, len(members)])
        compact = any(f.agg in SKETCHES for f in kept)
        groups.append([group.hop_us or 0, group.levels if group.hop_us else 0, state_width,
                       f0, len(ordered), w0, len(windows), group.max_window_us, int(compact)])
    features = [[AGG_CODES[f.agg], f.offset, f.expr_index, f.index, f.window_us or 0,
                 f.hop_us or 0, f.param, state_size(f.agg, f.param), f.item_row,
                 width(f.agg, f.param)]
                for f in ordered]
    quantiles = np.full((len(ordered), max([len(f.quantiles) for f in ordered] + [1])), np.nan)
    for row, f in enumerate(ordered):
        quantiles[row, :len(f.quantiles)] = f.quantiles
    bound = max([g.block_bound() for g in plan.groups] + [1])
    return ViewLayout(
        features=_table(features, 10), groups=_table(groups, 9), windows=_table(windows, 3),
        members=np.array(members, np.int64), quantiles=quantiles, max_blocks=bound)


def _hop(group: GroupPlan) -> int:
    assert group.hop_us is not None  # windowed groups have a hop
    return group.hop_us


def _table(rows: list[list[int]], width: int) -> np.ndarray:
    return np.array(rows, np.int64).reshape((len(rows), width))
