"""Loading registry text: positions, every problem in one run, and valid edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.errors import RegistryError
from featurestore.registry import load_registry, parse_registry, resolve_registry_path
from transforms.spec import ColumnType

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """\
project: shop
entities:
  user: {keys: [user_id]}
sources:
  orders: {path: orders.parquet, timestamp: ts}
feature_views:
  user_orders:
    source: orders
    entity: user
    features:
      order_count: {agg: count}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(RegistryError) as caught:
        parse_registry(text)
    return caught.value.problems


def test_demo_registry_is_valid() -> None:
    registry, text = load_registry(REPO / "registry.yaml")
    assert registry.project == "fraud_demo"
    assert list(registry.feature_views["user_txn"].features) == [
        "txn_count_1h",
        "amount_sum_7d",
        "amount_mean_30d",
        "amount_std_30d",
        "amount_max_1d",
        "big_txn_7d",
        "log_amount_sum_1d",
        "last_category",
        "recent_amounts",
        "first_categories_30d",
        "top_categories_30d",
        "amount_decayed_1d",
        "txn_decayed_1h",
        "distinct_categories_30d",
        "amount_quantiles_30d",
    ]
    assert text.startswith("project: fraud_demo")


def test_minimal_registry_uses_defaults() -> None:
    registry = parse_registry(MINIMAL)
    assert registry.store.online == "local"
    assert registry.store.offline is None
    assert registry.request_views == {}
    feature = registry.feature_views["user_orders"].features["order_count"]
    assert (feature.expr, feature.window, feature.hop) == (None, None, None)


def test_every_problem_is_reported_in_file_order() -> None:
    text = (
        MINIMAL.replace("source: orders", "source: order").replace(
            "{agg: count}", "{agg: cnt, window: 2 hours}\n      total: {agg: sum, expr: price}"
        )
        + "services:\n  s1: [user_orders:order_count, user_orders:totl]\n"
    )
    # The malformed feature is set aside; the rest of its view is still checked, and a
    # service naming the malformed feature is not told that it does not exist.
    assert problems_of(text) == [
        "registry.yaml:8:13: feature_views.user_orders.source: "
        "unknown source 'order' (did you mean 'orders'?)",
        "registry.yaml:11:26: feature_views.user_orders.features.order_count.agg: "
        "unknown aggregation 'cnt': expected one of count, sum, mean, min, max, std, "
        "first, last, decayed_sum, decayed_count, last_n, first_n, top_k, "
        "approx_count_distinct, approx_percentile (did you mean 'count'?)",
        "registry.yaml:11:39: feature_views.user_orders.features.order_count.window: "
        "invalid duration '2 hours': expected a positive whole number and a unit "
        "(s, m, h or d), such as '90s', '5m', '1h' or '7d'",
        "registry.yaml:14:33: services.s1[1]: "
        "unknown feature 'totl' in view 'user_orders' (did you mean 'total'?)",
    ]


def test_references_to_a_malformed_definition_are_not_called_unknown() -> None:
    # The source has a shape error; the view that uses it must not add "unknown source".
    text = MINIMAL.replace("{path: orders.parquet, timestamp: ts}", "{path: orders.parquet}")
    assert problems_of(text) == [
        "registry.yaml:5:3: sources.orders: missing required key 'timestamp'"
    ]


def test_file_name_is_the_one_given() -> None:
    with pytest.raises(RegistryError) as caught:
        parse_registry("project: [a]\n", "conf/features.yaml")
    assert caught.value.problems == ["conf/features.yaml:1:10: project: expected text, got a list"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "registry.yaml:1:1: expected a mapping with 'project' and more, got an empty file"),
        ("- a\n- b\n", "registry.yaml:1:1: expected a mapping with 'project' and more, got a list"),
        ("entities: {}\n", "registry.yaml:1:1: missing required key 'project'"),
        (
            "project: 1st\n",
            "registry.yaml:1:10: project: '1st' is not a valid name: "
            "use letters, digits and underscores, not starting with a digit",
        ),
        (
            "project: class\n",
            "registry.yaml:1:10: project: 'class' is a reserved word and cannot be a name",
        ),
        (
            "project: a\nproject: b\n",
            "registry.yaml:2:1: project: duplicate key 'project' (first defined on line 1)",
        ),
        ("project: a\n? [x]\n: 1\n", "registry.yaml:2:3: keys must be plain names"),
        (
            "project: a\n---\nproject: b\n",
            "registry.yaml:2:1: invalid YAML: but found another document",
        ),
    ],
)
def test_document_level_problems(text: str, message: str) -> None:
    assert problems_of(text) == [message]


def test_expression_error_points_into_a_quoted_string() -> None:
    text = MINIMAL.replace("{agg: count}", "{agg: sum, expr: 'amount + * 2'}")
    [problem] = problems_of(text)
    line = text.splitlines()[10]
    position = int(problem.split(":")[2])
    assert problem.startswith("registry.yaml:11:")
    # The column lands on the offending character inside the quotes.
    assert line[position - 1] == "*"


def test_expression_in_a_block_scalar_points_at_the_value() -> None:
    text = MINIMAL.replace(
        "{agg: count}", "\n        agg: sum\n        expr: >\n          amount + * 2"
    )
    [problem] = problems_of(text)
    assert problem.startswith("registry.yaml:13:15: feature_views.user_orders.features.")
    assert "invalid expression" in problem


def test_feature_view_expression_cannot_name_view_features() -> None:
    text = MINIMAL.replace("{agg: count}", "{agg: sum, expr: 'user_orders.order_count'}")
    assert problems_of(text) == [
        "registry.yaml:11:38: feature_views.user_orders.features.order_count.expr: "
        "'user_orders.order_count' is a feature reference; "
        "a feature view expression can only use its source's columns"
    ]


def test_request_view_rules() -> None:
    text = MINIMAL + (
        "request_views:\n"
        "  ctx:\n"
        "    request: {x: float64}\n"
        "    features:\n"
        "      x: 'x * 2'\n"
        "      y: 'ctx.x + user_orders.order_count'\n"
    )
    assert problems_of(text) == [
        "registry.yaml:16:7: request_views.ctx.features.x: "
        "feature 'x' has the same name as a request field",
        "registry.yaml:17:11: request_views.ctx.features.y: "
        "'ctx' is a request view; request features can use feature view features only",
    ]


def test_names_are_shared_by_views_and_services() -> None:
    text = MINIMAL + (
        "request_views:\n  user_orders: {features: {a: '1'}}\n"
        "services:\n  user_orders: [user_orders:order_count]\n"
    )
    assert problems_of(text) == [
        "registry.yaml:13:3: request_views.user_orders: "
        "name 'user_orders' is already used by feature view 'user_orders'",
        "registry.yaml:15:3: services.user_orders: "
        "name 'user_orders' is already used by feature view 'user_orders'",
    ]


def test_service_members_must_resolve() -> None:
    text = MINIMAL + (
        "services:\n  s1: [user_orders, s2]\n  s3: [user_order:order_count]\n  s4: ['x:y:z']\n"
    )
    assert problems_of(text) == [
        "registry.yaml:13:8: services.s1[0]: "
        "'user_orders' is a view, not a service: list its features as 'user_orders:feature'",
        "registry.yaml:13:21: services.s1[1]: unknown service 's2'",
        "registry.yaml:14:8: services.s3[0]: "
        "unknown view 'user_order' (did you mean 'user_orders'?)",
        "registry.yaml:15:8: services.s4[0]: "
        "'x:y:z' is not a feature reference: write 'view:feature' or a service name",
    ]


def test_window_rules_use_the_view_hop() -> None:
    text = MINIMAL.replace("    features:", "    hop: 1h\n    features:").replace(
        "{agg: count}", "{agg: count, window: 90m}"
    )
    assert problems_of(text) == [
        "registry.yaml:12:41: feature_views.user_orders.features.order_count.window: "
        "window 90m is not a multiple of the view's hop 1h"
    ]


def test_list_and_decayed_aggregations_reach_the_spec() -> None:
    text = MINIMAL.replace(
        "      order_count: {agg: count}",
        "      a: {agg: decayed_sum, expr: price, half_life: 1h, window: 7d}\n"
        "      b: {agg: decayed_count, half_life: 30m}\n"
        "      c: {agg: last_n, expr: price, n: 5, window: 1d}\n"
        "      d: {agg: first_n, expr: category, n: 1000, expect: {not_null: 0.5}}\n"
        "      e: {agg: top_k, expr: category, k: 3}",
    )
    registry = parse_registry(text)
    schema = {"orders": {"price": ColumnType.FLOAT, "category": ColumnType.STRING}}
    [view] = registry.to_graph_spec(schema).views
    assert [(f.agg, f.expr, f.n, f.k, f.half_life_us) for f in view.features] == [
        ("decayed_sum", "price", None, None, 3_600_000_000),
        ("decayed_count", None, None, None, 1_800_000_000),
        ("last_n", "price", 5, None, None),
        ("first_n", "category", 1000, None, None),
        ("top_k", "category", None, 3, None),
    ]
    features = registry.feature_views["user_orders"].features
    assert [features[name].summary() for name in "abce"] == [
        "decayed_sum of price, half-life 1h", "decayed_count, half-life 30m",
        "last_n(5) of price", "top_k(3) of category"]


def test_aggregation_parameter_problems() -> None:
    text = MINIMAL.replace(
        "      order_count: {agg: count}",
        "      a: {agg: last_n, expr: price}\n"
        "      b: {agg: sum, expr: price, n: 5}\n"
        "      c: {agg: first_n, expr: price, n: 0}\n"
        "      d: {agg: top_k, expr: price, k: true}\n"
        "      e: {agg: top_k, expr: price, k: 2.5}\n"
        "      f: {agg: top_k, expr: price, k: 101}\n"
        "      g: {agg: decayed_count, half_life: 1h, k: 3}\n"
        "      h: {agg: decayed_sum, half_life: 1h}\n"
        "      i: {agg: last_n, expr: price, n: 3, expect: {not_null: 0.1, range: [0, 1]}}",
    )
    prefix = "registry.yaml:{}: feature_views.user_orders.features."
    expected = [
        ("11:7", "a: aggregation 'last_n' needs 'n'"),
        ("12:34", "b.n: 'n' does not apply to 'sum'"),
        ("13:41", "c.n: 'n' must be between 1 and 1000, got 0"),
        ("14:39", "d.k: expected a whole number, got true/false"),
        ("15:39", "e.k: expected a whole number, got the number 2.5"),
        ("16:39", "f.k: 'k' must be between 1 and 100, got 101"),
        ("17:46", "g.k: 'k' does not apply to 'decayed_count'"),
        ("18:7", "h: aggregation 'decayed_sum' needs 'expr' "
                 "(only 'count' and 'decayed_count' may leave it out)"),
        ("19:67", "i.expect.range: 'range' does not apply to a list feature ('last_n' gives "
                  "a list of values): its expectations can only have 'not_null'"),
    ]
    assert problems_of(text) == [prefix.format(at) + message for at, message in expected]


def test_sketch_aggregations_reach_the_spec() -> None:
    text = MINIMAL.replace(
        "      order_count: {agg: count}",
        "      a: {agg: approx_count_distinct, expr: category, window: 7d}\n"
        "      b: {agg: approx_count_distinct, expr: category, precision: 12}\n"
        "      c: {agg: approx_percentile, expr: price, q: [0.5, 0.9, 1], window: 1d,\n"
        "          expect: {not_null: 0.5}}",
    )
    registry = parse_registry(text)
    schema = {"orders": {"price": ColumnType.FLOAT, "category": ColumnType.STRING}}
    [view] = registry.to_graph_spec(schema).views
    assert [(f.agg, f.expr, f.precision, f.q) for f in view.features] == [
        ("approx_count_distinct", "category", None, None),
        ("approx_count_distinct", "category", 12, None),
        ("approx_percentile", "price", None, (0.5, 0.9, 1.0)),
    ]
    assert all(isinstance(q, float) for q in view.features[2].q)
    features = registry.feature_views["user_orders"].features
    assert [features[name].summary() for name in "abc"] == [
        "approx_count_distinct of category",
        "approx_count_distinct of category, precision 12",
        "approx_percentile([0.5, 0.9, 1]) of price"]


def test_sketch_parameter_problems() -> None:
    text = MINIMAL.replace(
        "      order_count: {agg: count}",
        "      a: {agg: approx_percentile, expr: price}\n"
        "      b: {agg: approx_percentile, expr: price, q: 0.5}\n"
        "      c: {agg: approx_percentile, expr: price, q: []}\n"
        "      d: {agg: approx_percentile, expr: price, q: [0.5, true, '0.9']}\n"
        "      e: {agg: approx_percentile, expr: price, q: [0, 1.5]}\n"
        f"      f: {{agg: approx_percentile, expr: price, q: {[0.5] * 21}}}\n"
        "      g: {agg: approx_count_distinct, expr: price, precision: 20}\n"
        "      h: {agg: sum, expr: price, q: [0.5], precision: 7}\n"
        "      i: {agg: approx_percentile, expr: price, q: [0.5], expect: {range: [0, 1]}}",
    )
    prefix = "registry.yaml:{}: feature_views.user_orders.features."
    expected = [
        ("11:7", "a: aggregation 'approx_percentile' needs 'q'"),
        ("12:51", "b.q: expected a list of quantiles such as [0.5, 0.9], got the number 0.5"),
        ("13:51", "c.q: 'q' needs 1 to 20 quantiles, got 0"),
        ("14:57", "d.q[1]: each quantile in 'q' must be a number from 0 to 1, got true/false"),
        ("14:63", "d.q[2]: each quantile in 'q' must be a number from 0 to 1, got '0.9'"),
        ("15:55", "e.q[1]: each quantile in 'q' must be a number from 0 to 1, got 1.5"),
        ("16:51", "f.q: 'q' needs 1 to 20 quantiles, got 21"),
        ("17:63", "g.precision: 'precision' must be between 8 and 16, got 20"),
        ("18:34", "h.q: 'q' does not apply to 'sum'"),
        ("18:44", "h.precision: 'precision' does not apply to 'sum'"),
        ("19:67", "i.expect.range: 'range' does not apply to a list feature "
                  "('approx_percentile' gives a list of values): its expectations can only "
                  "have 'not_null'"),
    ]
    assert problems_of(text) == [prefix.format(at) + message for at, message in expected]


def test_anchors_and_merge_keys_are_resolved() -> None:
    text = MINIMAL.replace(
        "      order_count: {agg: count}",
        "      order_count: &base {agg: count, window: 1d}\n"
        "      order_count_hourly: {<<: *base, hop: 1h}",
    )
    registry = parse_registry(text)
    feature = registry.feature_views["user_orders"].features["order_count_hourly"]
    assert (feature.agg, feature.window, feature.hop) == ("count", 86_400_000_000, 3_600_000_000)


def test_folder_and_missing_file(tmp_path: Path) -> None:
    assert resolve_registry_path(tmp_path) == tmp_path / "registry.yaml"
    with pytest.raises(RegistryError) as caught:
        load_registry(tmp_path)
    assert caught.value.problems == [f"{tmp_path / 'registry.yaml'}: no such file"]
    (tmp_path / "registry.yaml").write_text(MINIMAL)
    registry, _ = load_registry(tmp_path)
    assert registry.project == "shop"
