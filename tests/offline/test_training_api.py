"""`FeatureStore.get_training_set`: spine forms, row order, selection, names, request
features, output types, errors, and sources read from the offline file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.errors import InputError
from tests.offline.training_project import (
    REGISTRY,
    at,
    make_project,
    row,
    spine_frame,
    write_events,
)
from tests.strategies import BASE, HOUR, MINUTE

T0 = BASE + 10 * HOUR
EVENTS = [
    (1, T0 - 50 * MINUTE, row(10.0, qty=2, category="b", flag=True)),
    (1, T0 - 20 * MINUTE, row(30.0, qty=5, category="a")),
    (2, T0 - 5 * MINUTE, row(None, qty=None, category=None, flag=True)),
    (2, T0 + 10 * MINUTE, row(70.0, qty=1, category="c")),
]  # fmt: skip
QUERIES = [(2, T0 + 30 * MINUTE), (1, T0), (3, T0), (1, T0 - 30 * MINUTE), (2, T0)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    return make_project(tmp_path_factory.mktemp("training_api"), EVENTS)


def _spine() -> pd.DataFrame:
    return spine_frame(QUERIES, ["ma", "mb", "ma", "mz", "mc"])


def test_every_spine_form_gives_the_same_result(store: FeatureStore, tmp_path: Path) -> None:
    frame = _spine()
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(arrow, tmp_path / "spine.parquet")
    forms = [frame, pl.from_pandas(frame), arrow, tmp_path / "spine.parquet",
             str(tmp_path / "spine.parquet")]
    results = [store.get_training_set(form, service="svc", output="arrow") for form in forms]
    for result in results[1:]:
        assert result.equals(results[0])


def test_rows_keep_their_order_and_every_spine_column(store: FeatureStore) -> None:
    frame = _spine().assign(note=list("vwxyz"))
    frame.index = [50, 40, 30, 20, 10]
    result = store.get_training_set(frame, features=["user_stats:n_1h", "user_stats:sum_1h"])
    assert list(result.columns) == [*frame.columns, "n_1h", "sum_1h"]
    assert list(result.index) == [0, 1, 2, 3, 4]
    assert result["note"].tolist() == list("vwxyz")
    assert result["user_id"].tolist() == [2, 1, 3, 1, 2]
    assert result["n_1h"].tolist() == [2, 2, 0, 1, 1]
    assert result["sum_1h"].tolist() == [70.0, 40.0, 0.0, 10.0, 0.0]


def test_pandas_and_arrow_types_follow_the_feature_types(store: FeatureStore) -> None:
    features = ["user_stats:n_1h", "user_stats:qty_sum_1d", "user_stats:qty_max_1d",
                "user_stats:mean_90m", "user_stats:last_cat_1h", "user_stats:latest_ts_1d",
                "ctx:double_now"]
    frame = store.get_training_set(_spine(), features=features)
    table = store.get_training_set(_spine(), features=features, output="arrow")
    assert [str(frame[name].dtype) for name in ("n_1h", "qty_sum_1d", "qty_max_1d")] == [
        "int64", "int64", "Int64"]
    assert frame["qty_max_1d"].tolist() == [1, 5, pd.NA, 2, pd.NA]
    assert frame["mean_90m"].isna().tolist() == [False, False, True, False, True]
    assert frame["last_cat_1h"].tolist()[:2] == ["c", "a"]
    assert pd.isna(frame["last_cat_1h"].iloc[2])
    assert str(frame["latest_ts_1d"].dtype).startswith("datetime64[")
    assert frame["latest_ts_1d"].iloc[1] == pd.Timestamp(at(T0 - 20 * MINUTE), tz="UTC")
    assert table.schema.field("n_1h").type == pa.int64()
    assert table.schema.field("last_cat_1h").type == pa.string()
    assert table.schema.field("latest_ts_1d").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("double_now").type == pa.float64()
    assert table.column("mean_90m").null_count == 2


def test_full_names_and_bare_name_clashes(store: FeatureStore) -> None:
    both = ["user_stats:n_1h", "merchant_stats:n_1h"]
    with pytest.raises(InputError, match="share the name 'n_1h'; pass full_names=True"):
        store.get_training_set(_spine(), features=both)
    result = store.get_training_set(_spine(), features=both, full_names=True)
    assert list(result.columns[-2:]) == ["user_stats__n_1h", "merchant_stats__n_1h"]
    # Events' merchants follow their times (mb, mc, mb, mb); ma has none, mz is unseen.
    assert result["merchant_stats__n_1h"].tolist() == [0, 2, 0, 0, 1]


def test_service_or_features_select_columns_in_request_order(store: FeatureStore) -> None:
    by_service = store.get_training_set(_spine(), service="svc")
    assert list(by_service.columns[-3:]) == ["sum_1h", "ratio", "amount_mean_1d"]
    mixed = store.get_training_set(_spine(), features=["ctx:double_now", "svc"])
    assert list(mixed.columns[-4:]) == ["double_now", "sum_1h", "ratio", "amount_mean_1d"]
    with pytest.raises(InputError, match="exactly one of 'features'"):
        store.get_training_set(_spine(), features=["svc"], service="svc")
    with pytest.raises(InputError, match="unknown feature 'n_2h' in view 'user_stats'"):
        store.get_training_set(_spine(), features=["user_stats:n_2h"])


def test_request_features_read_spine_columns(store: FeatureStore) -> None:
    spine = _spine().assign(amount_now=[1.0, 41.0, 3.0, None, 5.0])
    result = store.get_training_set(spine, features=["ctx:ratio", "ctx:double_now",
                                                     "user_stats:mean_90m"])
    # ratio = amount_now / (mean_90m + 1), mean_90m being 70, 20, null, 10, null.
    assert result["ratio"].iloc[0] == pytest.approx(1.0 / 71.0, rel=1e-12)
    assert result["ratio"].iloc[1] == pytest.approx(41.0 / 21.0, rel=1e-12)
    assert np.isnan(result["ratio"].iloc[3])  # amount_now is null
    assert np.isnan(result["ratio"].iloc[4])  # no amount in user 2's window
    assert result["double_now"].tolist()[:3] == [2.0, 82.0, 6.0]
    # Request features need no entity keys when they read no view feature.
    only_request = _spine()[["event_ts", "amount_now"]]
    assert list(store.get_training_set(only_request, features=["ctx:double_now"]).columns) == [
        "event_ts", "amount_now", "double_now"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=["amount_now"]),
     "spine has no column 'amount_now', a request field of request view 'ctx'; its columns: "
     "label, user_id, merchant, event_ts$"),
    (lambda f: f.assign(amount_now="high"),
     "spine column 'amount_now' has type (large_)?string, but request field 'amount_now' "
     "is float"),
    (lambda f: f.drop(columns=["user_id"]), "spine has no column 'user_id' \\(entity key\\)"),
    (lambda f: f.drop(columns=["event_ts"]), "spine has no column 'event_ts' \\(timestamp\\)"),
    (lambda f: f.assign(event_ts=[None, *f["event_ts"][1:]]),
     "spine column 'event_ts' \\(timestamp\\) has 1 null values"),
    (lambda f: f.assign(ratio=1.0), "spine already has a column named 'ratio'"),
])  # fmt: skip
def test_spine_errors_name_the_column(store: FeatureStore, change, message) -> None:
    with pytest.raises(InputError, match=message):
        store.get_training_set(change(_spine()), service="svc")


def test_bad_arguments(store: FeatureStore) -> None:
    with pytest.raises(InputError, match="output must be one of pandas, arrow"):
        store.get_training_set(_spine(), service="svc", output="polars")
    with pytest.raises(InputError, match="spine must be a pandas or polars DataFrame"):
        store.get_training_set([1, 2], service="svc")
    with pytest.raises(InputError, match="spine has no column 'ts' \\(timestamp\\)"):
        store.get_training_set(_spine(), service="svc", timestamp="ts")


def test_an_empty_spine_gives_typed_empty_columns(store: FeatureStore) -> None:
    empty = _spine().iloc[:0]
    result = store.get_training_set(empty, features=["user_stats:n_1h", "user_stats:qty_max_1d",
                                                     "user_stats:last_cat_1h", "ctx:ratio"])
    assert len(result) == 0
    assert [str(result[name].dtype) for name in ("n_1h", "qty_max_1d", "ratio")] == [
        "int64", "Int64", "float64"]


def test_a_table_source_in_the_offline_file_gives_the_same_values(
    store: FeatureStore, tmp_path: Path
) -> None:
    write_events(tmp_path, EVENTS)
    (tmp_path / "registry.yaml").write_text(
        REGISTRY.replace("path: events.parquet", "table: events")
    )
    with duckdb.connect(str(tmp_path / "training_test.duckdb")) as con:
        con.execute(f"CREATE TABLE events AS SELECT * FROM '{tmp_path / 'events.parquet'}'")
    from_table = FeatureStore(tmp_path).get_training_set(_spine(), service="svc")
    from_file = store.get_training_set(_spine(), service="svc")
    pd.testing.assert_frame_equal(from_table, from_file)


def test_pushed_events_are_part_of_the_source(tmp_path: Path) -> None:
    store = make_project(tmp_path, EVENTS)
    spine = spine_frame([(7, T0 + HOUR)])
    assert store.get_training_set(spine, features=["user_stats:n_1h"])["n_1h"].tolist() == [0]
    result = store.push("events", [{"user_id": 7, "merchant": "ma", "amount": 5.0,
                                     "event_ts": at(T0 + 30 * MINUTE)}])
    assert result.rows == 1
    assert store.get_training_set(spine, features=["user_stats:n_1h"])["n_1h"].tolist() == [1]
