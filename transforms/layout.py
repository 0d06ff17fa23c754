"""A feature view's layout: the int64 tables that tell the shared kernels what to compute.

`transforms/engine.py` runs every view; what one view specialises (which aggregation
sits at which slot, read from which row expression, over which windows and hops) is
data, laid out here from the view's plan:

- FT, one row per feature, grouped: the features of windowed group 0 (in definition
  order), then group 1, ..., then the lifetime features. Columns: aggregation code, first
  slot in the group's state, row-expression column (-1: every event counts), output row,
  window and hop in microseconds (for a windowed `last`, which is a lifetime state).
- GT, one row per windowed group (ascending hop), then one for the lifetime state.
  Columns: hop, tile levels, state width, feature range in FT, window range in WT,
  longest window.
- WT, one row per distinct window of a group (ascending): its length in hops and the
  range of its members in MT.
- MT: FT rows of each window's members, in definition order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms import engine
from transforms.graph import FeaturePlan, GroupPlan, ViewPlan

AGG_CODES = {"count": engine.COUNT, "sum": engine.SUM, "mean": engine.MEAN,
             "std": engine.STD, "min": engine.MIN, "max": engine.MAX,
             "first": engine.FIRST, "last": engine.LAST}


@dataclass(frozen=True)
class ViewLayout:
    """The tables of one view (see the module docstring) and the scratch size they need."""

    features: np.ndarray  # FT
    groups: np.ndarray  # GT
    windows: np.ndarray  # WT
    members: np.ndarray  # MT
    max_blocks: int  # tiles in the longest window decomposition

    @property
    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(FT, GT, WT, MT), in the order the kernels take them."""
        return self.features, self.groups, self.windows, self.members


def view_layout(plan: ViewPlan) -> ViewLayout:
    """Lay out a view's plan for the shared kernels."""
    ordered: list[FeaturePlan] = []
    groups: list[list[int]] = []
    windows: list[list[int]] = []
    members: list[int] = []
    for group in [*plan.groups, plan.lifetime]:
        f0 = len(ordered)
        ordered.extend(group.features)
        w0 = len(windows)
        if group is not plan.lifetime:
            for window in group.windows:
                m0 = len(members)
                members.extend(f0 + k for k, f in enumerate(group.features)
                               if f.window_us == window)
                windows.append([window // _hop(group), m0, len(members)])
        groups.append([group.hop_us or 0, group.levels if group.hop_us else 0, group.width,
                       f0, len(ordered), w0, len(windows), group.max_window_us])
    features = [[AGG_CODES[f.agg], f.offset, f.expr_index, f.index, f.window_us or 0,
                 f.hop_us or 0] for f in ordered]
    bound = max([g.block_bound() for g in plan.groups] + [1])
    return ViewLayout(
        features=_table(features, 6), groups=_table(groups, 8), windows=_table(windows, 3),
        members=np.array(members, np.int64), max_blocks=bound)


def _hop(group: GroupPlan) -> int:
    assert group.hop_us is not None  # windowed groups have a hop
    return group.hop_us


def _table(rows: list[list[int]], width: int) -> np.ndarray:
    return np.array(rows, np.int64).reshape((len(rows), width))
