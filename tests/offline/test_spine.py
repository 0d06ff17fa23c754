"""Spines: accepted forms, validation messages, and timestamp normalisation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import FeatureStoreWarning, InputError
from featurestore.offline.spine import load_spine, spine_micros

JAN1 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in microseconds


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": [1, 0, 1],
            "user_id": [3, 1, 2],
            "event_ts": pd.to_datetime(
                ["2024-01-01 00:00:00", "2024-01-01 00:00:01", "2024-01-01 00:00:00.000002"],
                format="ISO8601",
            ),
            "amount_now": [1.5, None, 3.0],
        },
        index=[10, 11, 12],
    )


def test_every_accepted_form_gives_the_same_table(tmp_path: Path) -> None:
    frame = _frame()
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(arrow, tmp_path / "spine.parquet")
    forms = [frame, pl.from_pandas(frame), arrow, tmp_path / "spine.parquet",
             str(tmp_path / "spine.parquet")]  # fmt: skip
    loaded = [load_spine(form, ["user_id"], "event_ts") for form in forms]
    for table in loaded:
        assert table.column_names == ["label", "user_id", "event_ts", "amount_now"]
        assert table.column("user_id").to_pylist() == [3, 1, 2]
        assert table.schema.field("event_ts").type == pa.timestamp("us")
        assert spine_micros(table, "event_ts").tolist() == [JAN1, JAN1 + 1_000_000, JAN1 + 2]
        assert table.column("amount_now").to_pylist() == [1.5, None, 3.0]


def test_tz_aware_and_string_timestamps_become_utc() -> None:
    local = pd.to_datetime(["2024-01-01 01:00"]).tz_localize("Europe/Paris")
    paris = pd.DataFrame({"user_id": [1], "event_ts": local})
    table = load_spine(paris, ["user_id"], "event_ts")
    assert table.schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    assert spine_micros(table, "event_ts").tolist() == [JAN1]
    text = pa.table(
        {"user_id": [1, 2, 3],
         "event_ts": ["2024-01-01T00:00:00", "2024-01-01T02:00:00+02:00", "2024-01-01"]}
    )  # fmt: skip
    assert spine_micros(load_spine(text, ["user_id"], "event_ts"), "event_ts").tolist() == [
        JAN1, JAN1, JAN1,
    ]  # fmt: skip
    nanos = pa.table(
        {"user_id": [1], "event_ts": pa.array([JAN1 * 1000 + 999], pa.timestamp("ns"))}
    )
    assert spine_micros(load_spine(nanos, ["user_id"], "event_ts"), "event_ts").tolist() == [JAN1]
    dates = pa.table({"user_id": [1], "event_ts": [dt.date(2024, 1, 1)]})
    assert spine_micros(load_spine(dates, ["user_id"], "event_ts"), "event_ts").tolist() == [JAN1]


def test_row_order_and_columns_are_kept_exactly() -> None:
    rng = np.random.default_rng(7)
    size = 1000
    table = pa.table(
        {"event_ts": pa.array(rng.integers(0, 10**12, size), pa.timestamp("us")),
         "user_id": rng.integers(0, 5, size), "noise": rng.normal(size=size)}
    )  # fmt: skip
    assert load_spine(table, ["user_id"], "event_ts").equals(table)


def test_missing_columns_are_named() -> None:
    frame = _frame()
    with pytest.raises(InputError) as error:
        load_spine(frame, ["customer_id"], "event_ts")
    assert str(error.value) == (
        "spine has no column 'customer_id' (entity key); its columns: label, user_id, "
        "event_ts, amount_now"
    )
    with pytest.raises(InputError, match=r"^spine has no column 'ts' \(timestamp\)"):
        load_spine(frame, ["user_id"], "ts")


def test_nulls_in_keys_warn_and_nulls_in_the_timestamp_are_named() -> None:
    frame = _frame()
    frame.loc[11, "user_id"] = None
    with pytest.warns(FeatureStoreWarning) as caught:
        table = load_spine(frame, ["user_id"], "event_ts")
    assert [str(warning.message) for warning in caught] == [
        "1 spine row has a null user_id: it gets the features of an unseen entity"]
    assert table.num_rows == len(frame)
    frame = _frame()
    frame.loc[12, "event_ts"] = pd.NaT
    with pytest.raises(InputError, match=r"^spine column 'event_ts' \(timestamp\) has 1 null"):
        load_spine(frame, ["user_id"], "event_ts")


def test_mistyped_or_unparseable_timestamps_are_named() -> None:
    numbers = pa.table({"user_id": [1], "event_ts": [1704067200]})
    with pytest.raises(InputError) as error:
        load_spine(numbers, ["user_id"], "event_ts")
    assert str(error.value) == (
        "spine column 'event_ts' has type int64; expected timestamps (naive = UTC, or "
        "tz-aware), dates, or ISO-8601 strings"
    )
    text = pa.table({"user_id": [1, 2], "event_ts": ["2024-01-01", "yesterday"]})
    with pytest.raises(InputError) as error:
        load_spine(text, ["user_id"], "event_ts")
    assert str(error.value) == (
        "spine column 'event_ts' holds a value that is not an ISO-8601 timestamp at row 1: "
        "'yesterday'"
    )


def test_unreadable_spines(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^spine file not found: "):
        load_spine(tmp_path / "missing.parquet", ["user_id"], "event_ts")
    (tmp_path / "bad.parquet").write_text("user_id,event_ts\n")
    with pytest.raises(InputError, match="is not readable Parquet"):
        load_spine(tmp_path / "bad.parquet", ["user_id"], "event_ts")
    with pytest.raises(InputError, match=r"^spine must be a pandas or polars DataFrame.*got list"):
        load_spine([{"user_id": 1}], ["user_id"], "event_ts")
    duplicated = pa.table([[1], [2], [dt.datetime(2024, 1, 1)]], ["k", "k", "ts"])
    with pytest.raises(InputError, match=r"^spine has 2 columns named 'k'"):
        load_spine(duplicated, ["k"], "ts")
