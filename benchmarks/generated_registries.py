"""Generated registries for the compile benchmark: N feature views x 8 features.

The views read the sample transactions and are made to differ (windows, aggregations,
expressions and constants vary with the view and the position), so that no two share a
generated module. `warmup=True` gives a registry that shares no view with the measured
ones; `edited=True` changes one feature's window.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

EVENTS_FILE = "transactions.parquet"
# What the generated registries vary over.
WINDOWS = ("1h", "1d", "7d", "30d")
WARMUP_WINDOWS = ("2h", "3d", "14d", "60d")  # the engine warm-up registry: other windows
EDITED_WINDOW = "2d"  # the window the edit gives to feature 0 of view 0
AGGREGATIONS = ("count", "sum", "mean", "std", "max", "min", "last")
CATEGORIES = ("grocery", "restaurants", "fuel", "online_retail", "travel", "electronics")
FEATURES_PER_VIEW = 8


def _feature(view: int, index: int, windows: Sequence[str], constant_offset: int) -> str:
    """One feature line of a generated view: its aggregation, expression and window vary
    with the view and the position, and constants carry the view's number."""
    agg = AGGREGATIONS[(view + index) % len(AGGREGATIONS)]
    window = windows[(view + 3 * index) % len(windows)]
    k = 100 + 25 * view + constant_offset
    category = CATEGORIES[(view + index) % len(CATEGORIES)]
    choices = {
        "count": [None],
        "sum": ["amount", f"amount > {k}", "log1p(amount)",
                f"where(merchant_category == '{category}', amount, 0)"],
        "mean": ["amount", f"min(amount, {k})", "log1p(amount)",
                 f"merchant_category == '{category}'"],
        "std": ["amount", "log1p(amount)", f"clip(amount, 0, {k})"],
        "max": ["amount", f"where(merchant_category == '{category}', amount, None)"],
        "min": ["amount", f"amount * {1 + view / 100:g}"],
        "last": ["merchant_category", "amount"],
    }[agg]
    expr = choices[(view // len(AGGREGATIONS) + index) % len(choices)]
    shown = "" if expr is None else f", expr: {json.dumps(expr)}"
    return f"      f{index}_{agg}: {{agg: {agg}{shown}, window: {window}}}"


def generated_registry(views: int, *, warmup: bool = False, edited: bool = False) -> str:
    """A registry of `views` feature views x 8 features over the sample transactions.

    Args:
        views: how many feature views.
        warmup: the engine warm-up registry instead: other windows and constants, so it
            shares no view with the measured registries.
        edited: feature 0 of view 0 gets the window EDITED_WINDOW (the edit case).
    """
    windows = WARMUP_WINDOWS if warmup else WINDOWS
    lines = [
        f"project: compile_bench_{'warmup' if warmup else views}",
        "store:",
        "  offline: data/offline.duckdb",
        "entities:",
        "  user:",
        "    keys: [user_id]",
        "sources:",
        "  transactions:",
        f"    path: data/{EVENTS_FILE}",
        "    timestamp: event_ts",
        "feature_views:",
    ]
    for view in range(views):
        lines += [f"  v{view:02d}:", "    source: transactions", "    entity: user",
                  "    features:"]
        for index in range(FEATURES_PER_VIEW):
            line = _feature(view, index, windows, 7 if warmup else 0)
            if edited and view == 0 and index == 0:
                head, _, _ = line.rpartition("window: ")
                line = f"{head}window: {EDITED_WINDOW}}}"
            lines.append(line)
    return "\n".join(lines) + "\n"
