"""The demo registry's feature view (DESIGN §3) as compiler input, for tests and benchmarks."""

from __future__ import annotations

from transforms.spec import (
    MICROSECONDS,
    ColumnType,
    FeatureSpec,
    GraphSpec,
    RequestViewSpec,
    ViewSpec,
    default_hop,
)

H, D = MICROSECONDS["h"], MICROSECONDS["d"]


def feature(name: str, agg: str, expr: str | None, window: int | None,
            **parameters: object) -> FeatureSpec:
    hop = default_hop(window) if window is not None else None
    return FeatureSpec(name, agg, expr, window, hop, **parameters)  # type: ignore[arg-type]


DEMO_VIEW = ViewSpec("user_txn", "transactions", ("user_id",), "event_ts", (
    feature("txn_count_1h", "count", None, H),
    feature("amount_sum_7d", "sum", "amount", 7 * D),
    feature("amount_mean_30d", "mean", "amount", 30 * D),
    feature("amount_std_30d", "std", "amount", 30 * D),
    feature("amount_max_1d", "max", "amount", D),
    feature("big_txn_7d", "sum", "amount > 500", 7 * D),
    feature("log_amount_sum_1d", "sum", "log1p(amount)", D),
    feature("last_category", "last", "merchant_category", 90 * D),
    # One of each aggregation added after the first eight (registry.yaml has them too).
    feature("recent_amounts", "last_n", "amount", 7 * D, n=5),
    feature("first_categories_30d", "first_n", "merchant_category", 30 * D, n=3),
    feature("top_categories_30d", "top_k", "merchant_category", 30 * D, k=3),
    feature("amount_decayed_1d", "decayed_sum", "amount", None, half_life_us=D),
    feature("txn_decayed_1h", "decayed_count", None, D, half_life_us=H),
    feature("distinct_categories_30d", "approx_count_distinct", "merchant_category", 30 * D),
    feature("amount_quantiles_30d", "approx_percentile", "amount", 30 * D,
            q=(0.5, 0.9, 0.99)),
))
DEMO_REQUEST = RequestViewSpec("txn_context", (("amount_now", ColumnType.FLOAT),), (
    ("amount_z", "(amount_now - user_txn.amount_mean_30d) / (user_txn.amount_std_30d + 1e-6)"),
    ("log_amount_now", "log1p(amount_now)"),
))
DEMO_SCHEMA = (
    ("user_id", ColumnType.INT), ("event_ts", ColumnType.TIMESTAMP),
    ("amount", ColumnType.FLOAT), ("merchant_category", ColumnType.STRING),
)
DEMO_SPEC = GraphSpec(views=(DEMO_VIEW,), request_views=(DEMO_REQUEST,),
                      schemas=(("transactions", DEMO_SCHEMA),))
