"""Loading registry text: positions, every problem in one run, and valid edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.errors import RegistryError
from featurestore.registry import load_registry, parse_registry, resolve_registry_path

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
        "first, last (did you mean 'count'?)",
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
