"""Registry models: durations, round trips, service expansion and the compiler spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from featurestore.errors import RegistryError, SourceError
from featurestore.registry import Registry, load_registry, parse_registry
from featurestore.registry.durations import DurationSyntaxError, format_duration, parse_duration
from transforms.spec import ColumnType, FeatureSpec, RequestViewSpec

REPO = Path(__file__).resolve().parents[2]
HOUR = 3_600_000_000
DAY = 24 * HOUR

SCHEMAS = {
    "transactions": {
        "user_id": ColumnType.INT,
        "event_ts": ColumnType.TIMESTAMP,
        "amount": ColumnType.FLOAT,
        "merchant_category": ColumnType.STRING,
    }
}


@pytest.fixture(scope="module")
def demo() -> Registry:
    return load_registry(REPO / "registry.yaml")[0]


@pytest.mark.parametrize(
    ("text", "microseconds"),
    [("90s", 90_000_000), ("5m", 300_000_000), ("1h", HOUR), ("7d", 7 * DAY), ("36h", 36 * HOUR)],
)
def test_durations_parse_and_format(text: str, microseconds: int) -> None:
    assert parse_duration(text) == microseconds
    assert parse_duration(format_duration(microseconds)) == microseconds


def test_format_picks_the_largest_exact_unit() -> None:
    assert format_duration(48 * HOUR) == "2d"
    assert format_duration(90 * 60_000_000) == "90m"


@pytest.mark.parametrize("text", ["0h", "1.5h", "1 h", "h", "10w", "-1d", "01d", ""])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(DurationSyntaxError, match="invalid duration"):
        parse_duration(text)


def test_model_round_trips_through_json(demo: Registry) -> None:
    dumped = demo.model_dump(mode="json")
    assert dumped["feature_views"]["user_txn"]["features"]["amount_sum_7d"]["window"] == "7d"
    assert Registry.model_validate(dumped) == demo
    assert Registry.model_validate_json(demo.model_dump_json()) == demo


def test_models_are_frozen_and_strict(demo: Registry) -> None:
    with pytest.raises(ValidationError):
        demo.project = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Registry.model_validate({"project": "p", "colour": "blue"})


def test_to_graph_spec_translates_the_demo(demo: Registry) -> None:
    spec = demo.to_graph_spec(SCHEMAS)
    [view] = spec.views
    assert (view.name, view.source, view.keys, view.timestamp) == (
        "user_txn",
        "transactions",
        ("user_id",),
        "event_ts",
    )
    features = {feature.name: feature for feature in view.features}
    assert features["txn_count_1h"] == FeatureSpec(
        "txn_count_1h", "count", None, HOUR, 5 * 60_000_000
    )
    assert features["amount_sum_7d"] == FeatureSpec("amount_sum_7d", "sum", "amount", 7 * DAY, HOUR)
    assert features["last_category"] == FeatureSpec(
        "last_category", "last", "merchant_category", 90 * DAY, DAY
    )
    assert spec.request_views == (
        RequestViewSpec(
            "txn_context",
            (("amount_now", ColumnType.FLOAT),),
            (
                (
                    "amount_z",
                    "where(user_txn.amount_std_30d > 0, (amount_now - user_txn.amount_mean_30d)"
                    " / user_txn.amount_std_30d, None)",
                ),
                ("log_amount_now", "log1p(amount_now)"),
            ),
        ),
    )
    assert spec.schema("transactions") == SCHEMAS["transactions"]


def test_hops_come_from_feature_then_view_then_default() -> None:
    registry = parse_registry(
        """
project: p
entities: {user: {keys: [user_id, region]}}
sources:
  orders: {table: orders, timestamp: ts}
  unused: {query: "select 1", timestamp: ts}
feature_views:
  v:
    source: orders
    entity: user
    hop: 30m
    features:
      own: {agg: sum, expr: x, window: 2h, hop: 10m}
      from_view: {agg: sum, expr: x, window: 2h}
      lifetime: {agg: max, expr: x}
  w:
    source: orders
    entity: user
    features:
      default: {agg: count, window: 30d}
request_views:
  r:
    request: {a: int32, b: bool, c: timestamp, d: float32}
    features: {e: "a + v.own"}
"""
    )
    spec = registry.to_graph_spec({"orders": {"x": ColumnType.FLOAT}, "other": {}})
    hops = {
        (view.name, f.name): (f.window_us, f.hop_us) for view in spec.views for f in view.features
    }
    assert hops == {
        ("v", "own"): (2 * HOUR, 10 * 60_000_000),
        ("v", "from_view"): (2 * HOUR, 30 * 60_000_000),
        ("v", "lifetime"): (None, None),
        ("w", "default"): (30 * DAY, DAY),
    }
    assert spec.views[0].keys == ("user_id", "region")
    assert spec.request_views[0].request == (
        ("a", ColumnType.INT),
        ("b", ColumnType.BOOL),
        ("c", ColumnType.TIMESTAMP),
        ("d", ColumnType.FLOAT),
    )
    # Only sources that feature views read are part of the spec.
    assert [name for name, _ in spec.schemas] == ["orders"]


def test_to_graph_spec_needs_every_used_schema(demo: Registry) -> None:
    with pytest.raises(SourceError, match="no column schema given for source 'transactions'"):
        demo.to_graph_spec({})


def test_service_features_expand_nested_services_in_order() -> None:
    registry = parse_registry(
        """
project: p
entities: {user: {keys: [user_id]}}
sources: {orders: {path: o.parquet, timestamp: ts}}
feature_views:
  v: {source: orders, entity: user, features: {a: {agg: count}, b: {agg: count}}}
services:
  base: [v:a]
  full: [v:b, base, v:a]
"""
    )
    assert registry.service_features("base") == (("v", "a"),)
    assert registry.service_features("full") == (("v", "b"), ("v", "a"))


def test_an_invalid_online_setting_is_echoed_without_its_password() -> None:
    text = "project: p\nstore:\n  online: https://app:secret@cache:6379/0\n"
    with pytest.raises(RegistryError) as caught:
        parse_registry(text)
    assert "got 'https://app:***@cache:6379/0'" in str(caught.value)
    assert "secret" not in str(caught.value)
