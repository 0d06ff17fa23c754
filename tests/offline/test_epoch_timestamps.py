"""Sources whose timestamp column holds epoch integers (`timestamp_unit`).

One project reads the same events five times: once with a TIMESTAMP column and once per
unit with epoch integers. Every path that reads events (training sets, snapshots,
materialize and lookups, pushes) must give the epoch views exactly the reference view's
values.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.errors import InputError, RegistryError
from featurestore.offline.push_validation import validate_rows
from featurestore.offline.sources import epoch_integer_micros_sql
from featurestore.registry.plan import compute_plan
from featurestore.sample_data import generate_transactions
from featurestore.view_states import state_key
from transforms.spec import ColumnType

UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
FEATURES = """\
      n_1h: {agg: count, window: 1h}
      amount_7d: {agg: sum, expr: amount, window: 7d}
      last_category: {agg: last, expr: merchant_category, window: 30d}
      latest_hour: {agg: max, expr: "hour(event_ts)", window: 30d}
"""
END = dt.datetime(2024, 1, 21, tzinfo=dt.UTC)


def _registry() -> str:
    lines = ["project: epochs", "entities:", "  user:", "    keys: [user_id]", "sources:",
             "  reference:", "    path: data/reference.parquet", "    timestamp: event_ts"]
    for unit in UNITS:
        lines += [f"  events_{unit}:", f"    path: data/events_{unit}.parquet",
                  "    timestamp: event_ts", f"    timestamp_unit: {unit}"]
    lines.append("feature_views:")
    for name in ("reference", *(f"events_{unit}" for unit in UNITS)):
        lines += [f"  {name}_view:", f"    source: {name}", "    entity: user", "    features:"]
        lines.append(FEATURES.rstrip("\n"))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    folder = tmp_path_factory.mktemp("epochs")
    data = folder / "data"
    data.mkdir()
    generate_transactions(data / "raw.parquet", events=1_500, users=20, days=20, seed=3)
    raw = pq.read_table(data / "raw.parquet")
    # Whole seconds, so that every unit holds the reference's times exactly.
    seconds = raw.column("event_ts").cast(pa.int64()).to_numpy() // 1_000_000
    reference = raw.set_column(1, "event_ts", pa.array(seconds * 1_000_000,
                                                       pa.timestamp("us", tz="UTC")))
    pq.write_table(reference, data / "reference.parquet")
    for unit, per_second in UNITS.items():
        values = seconds * per_second
        if unit == "ns":
            values = values + 999  # below a microsecond: floored away
        pq.write_table(raw.set_column(1, "event_ts", pa.array(values, pa.int64())),
                       data / f"events_{unit}.parquet")
    (folder / "registry.yaml").write_text(_registry())
    store = FeatureStore(folder)
    store.apply()
    return store


def _columns(frame: pd.DataFrame, view: str) -> pd.DataFrame:
    names = [name for name in frame.columns if name.startswith(f"{view}__")]
    return frame[names].rename(columns=lambda name: name.split("__", 1)[1])


def _features(view: str) -> list[str]:
    return [f"{view}:{name}" for name in ("n_1h", "amount_7d", "last_category", "latest_hour")]


def test_epoch_sources_give_the_reference_training_set(store: FeatureStore) -> None:
    times = pd.date_range("2024-01-02", "2024-01-20", periods=40, tz="UTC")
    spine = pd.DataFrame({"user_id": np.arange(40) % 20 + 1, "event_ts": times})
    views = ["reference_view", *(f"events_{unit}_view" for unit in UNITS)]
    frame = store.get_training_set(spine, features=[f for v in views for f in _features(v)],
                                   full_names=True)
    expected = _columns(frame, "reference_view")
    assert expected["n_1h"].sum() > 0 and expected["latest_hour"].notna().any()
    for view in views[1:]:
        pd.testing.assert_frame_equal(_columns(frame, view), expected)


def test_epoch_sources_give_the_reference_snapshot(store: FeatureStore) -> None:
    frame = store.snapshot("2024-01-15T06:00:00", full_names=True)
    expected = _columns(frame, "reference_view")
    for unit in UNITS:
        pd.testing.assert_frame_equal(_columns(frame, f"events_{unit}_view"), expected)


def test_materialize_lookup_and_push_agree_with_the_reference(store: FeatureStore) -> None:
    store.materialize(end=END)
    at = END + dt.timedelta(minutes=30)
    entities = {"user_id": [1, 2, 3, 99]}
    # The same event pushed as epoch integers in each unit, and as a datetime.
    when = END + dt.timedelta(minutes=5, seconds=7)
    seconds = int(when.timestamp())
    store.push("reference", [{"user_id": 99, "event_ts": when, "amount": 5.0,
                              "merchant_category": "grocery"}])
    for unit, per_second in UNITS.items():
        value = seconds * per_second + (999 if unit == "ns" else 0)
        store.push(f"events_{unit}", {"user_id": [99], "event_ts": [value], "amount": [5.0],
                                      "merchant_category": ["grocery"]})
    expected = store.get_online_features(features=_features("reference_view"),
                                         entities=entities, at=at)
    assert expected["n_1h"][3] == 1
    for unit in UNITS:
        got = store.get_online_features(features=_features(f"events_{unit}_view"),
                                        entities=entities, at=at)
        assert got == expected, unit
    spine = pd.DataFrame({"user_id": entities["user_id"], "event_ts": [at] * 4})
    offline = store.get_training_set(spine, features=_features("events_ns_view"),
                                     output="arrow")
    assert offline.drop_columns(["event_ts"]).to_pydict() == expected


def test_nanoseconds_floor_to_microseconds() -> None:
    values = [-1_500, -1_000, -1, 0, 999, 1_999]
    sql = epoch_integer_micros_sql("v", "ns")
    got = duckdb.sql(f"SELECT {sql} FROM (SELECT unnest(?) AS v)", params=[values]).fetchall()
    assert [row[0] for row in got] == [-2, -1, -1, 0, 0, 1]
    schema = {"event_ts": ColumnType.TIMESTAMP, "user_id": ColumnType.INT}
    pushed = validate_rows({"event_ts": values, "user_id": [1] * 6}, schema, "event_ts",
                           ["user_id"], timestamp_unit="ns")
    micros = pushed.column("event_ts").cast(pa.int64()).to_pylist()
    assert micros == [-2, -1, -1, 0, 0, 1]
    arrow = validate_rows(pa.table({"event_ts": values, "user_id": [1] * 6}), schema,
                          "event_ts", ["user_id"], timestamp_unit="ns")
    assert arrow.column("event_ts").cast(pa.int64()).to_pylist() == micros


def test_pushed_epoch_values_must_be_integers_or_times() -> None:
    schema = {"event_ts": ColumnType.TIMESTAMP}
    with pytest.raises(InputError, match=r"row 0: column 'event_ts' expects an integer "
                                         r"\(epoch ms\), an ISO-8601 timestamp"):
        validate_rows({"event_ts": [1.5]}, schema, "event_ts", timestamp_unit="ms")
    iso = validate_rows({"event_ts": ["2024-01-01T00:00:01Z", 1_704_067_201_000]}, schema,
                        "event_ts", timestamp_unit="ms")
    assert iso.column("event_ts").cast(pa.int64()).to_pylist() == [1_704_067_201_000_000] * 2


def _plan_error(folder: Path, source: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"user_id": [1], "event_ts": pa.array([1], pa.int64()),
                             "when": pa.array([0], pa.timestamp("us"))}), folder / "e.parquet")
    (folder / "registry.yaml").write_text(
        "project: p\nentities:\n  user:\n    keys: [user_id]\nsources:\n  events:\n"
        f"{source}feature_views:\n  v:\n    source: events\n    entity: user\n"
        "    features:\n      n: {agg: count}\n")
    with pytest.raises(RegistryError) as caught:
        FeatureStore(folder).plan()
    return str(caught.value)


def test_an_integer_timestamp_without_a_unit_suggests_one(tmp_path: Path) -> None:
    message = _plan_error(tmp_path, "    path: e.parquet\n    timestamp: event_ts\n")
    assert ("registry.yaml:8:16: sources.events.timestamp: timestamp column 'event_ts' has "
            "type BIGINT; expected TIMESTAMP (naive = UTC) or TIMESTAMPTZ; if it holds epoch "
            "integers, say in which unit with `timestamp_unit: s` (or ms, us, ns) on the "
            "source") in message


def test_a_unit_on_a_timestamp_column_is_an_error(tmp_path: Path) -> None:
    message = _plan_error(
        tmp_path, "    path: e.parquet\n    timestamp: when\n    timestamp_unit: ms\n")
    assert ("registry.yaml:9:21: sources.events.timestamp_unit: timestamp column 'when' has "
            "type TIMESTAMP, but timestamp_unit 'ms' says it holds epoch integers") in message


def test_an_unknown_unit_is_a_located_error(tmp_path: Path) -> None:
    message = _plan_error(
        tmp_path, "    path: e.parquet\n    timestamp: event_ts\n    timestamp_unit: millis\n")
    assert "sources.events.timestamp_unit" in message
    assert "unknown timestamp unit 'millis': expected s, ms, us or ns (did you mean 'ms'?)" \
        in message


def test_state_keys_ignore_keys_left_at_their_defaults(store: FeatureStore) -> None:
    registry = store.registry
    key = state_key(registry, "reference_view", "f")
    source = registry.sources["reference"]
    assert "timestamp_unit" not in source.model_dump_json(exclude_defaults=True)
    changed = registry.model_copy(update={"sources": {
        **registry.sources, "reference": source.model_copy(update={"timestamp_unit": "s"})}})
    assert state_key(changed, "reference_view", "f") != key


def test_a_unit_change_makes_the_views_of_the_source_stale(store: FeatureStore) -> None:
    registry = store.registry
    source = registry.sources["events_ms"]
    changed = registry.model_copy(update={"sources": {
        **registry.sources, "events_ms": source.model_copy(update={"timestamp_unit": "s"})}})
    plan = compute_plan(registry, changed)
    assert plan.stale_views == ("events_ms_view",)
    assert "timestamp_unit" in plan.render()
