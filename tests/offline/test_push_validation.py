"""Pushed rows checked against a source's schema and converted to its types."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from featurestore.errors import InputError
from featurestore.offline.push_validation import validate_rows
from transforms.spec import ColumnType

SCHEMA = {
    "user_id": ColumnType.INT,
    "event_ts": ColumnType.TIMESTAMP,
    "amount": ColumnType.FLOAT,
    "merchant": ColumnType.STRING,
    "online": ColumnType.BOOL,
}
TARGET = pa.schema(
    [("user_id", pa.int64()), ("event_ts", pa.timestamp("us")), ("amount", pa.float64()),
     ("merchant", pa.string()), ("online", pa.bool_())]
)  # fmt: skip
NOON = dt.datetime(2024, 1, 1, 12)


def _validate(rows: object) -> pa.Table:
    return validate_rows(rows, SCHEMA, "event_ts", ["user_id"], source_name="transactions")


def test_list_of_dicts_converts_to_the_source_types() -> None:
    table = _validate(
        [
            {"user_id": 1, "event_ts": "2024-01-01T13:00:00+01:00", "amount": 5},
            {"user_id": 2.0, "event_ts": NOON.replace(tzinfo=dt.UTC), "merchant": "m",
             "online": True},
            {"user_id": np.int32(3), "event_ts": NOON, "amount": float("nan")},
        ]
    )  # fmt: skip
    assert table.schema == TARGET
    assert table.to_pylist() == [
        {"user_id": 1, "event_ts": NOON, "amount": 5.0, "merchant": None, "online": None},
        {"user_id": 2, "event_ts": NOON, "amount": None, "merchant": "m", "online": True},
        {"user_id": 3, "event_ts": NOON, "amount": None, "merchant": None, "online": None},
    ]


def test_dataframes_and_arrow_tables() -> None:
    frame = pd.DataFrame(
        {"user_id": [1, None], "event_ts": pd.to_datetime([NOON, NOON]).tz_localize("UTC"),
         "amount": [1, 2]}
    )  # fmt: skip
    with pytest.raises(InputError, match=r"row 1: required column 'user_id' is null"):
        _validate(frame)
    frame.loc[1, "user_id"] = 4  # a float column of integers, as pandas leaves it
    table = _validate(frame)
    assert table.schema == TARGET
    assert table.column("user_id").to_pylist() == [1, 4]
    assert table.column("event_ts").to_pylist() == [NOON, NOON]
    assert _validate(pl.from_pandas(frame)).equals(table)
    arrow = pa.table(
        {"user_id": pa.array([7], pa.int32()), "event_ts": ["2024-01-01 12:00:00"],
         "merchant": pa.array(["x"]).dictionary_encode()}
    )  # fmt: skip
    assert _validate(arrow).to_pylist()[0] == {
        "user_id": 7, "event_ts": NOON, "amount": None, "merchant": "x", "online": None,
    }  # fmt: skip
    assert _validate({"user_id": [1], "event_ts": [NOON]}).num_rows == 1
    assert _validate([]).schema == TARGET


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"user_id": 1, "event_ts": NOON, "amout": 1.0}],
         "push to 'transactions': unknown column 'amout' (did you mean 'amount'?); columns: "
         "user_id, event_ts, amount, merchant, online"),
        ([{"user_id": 1, "amount": 1.0}],
         "push to 'transactions': missing required column 'event_ts'"),
        ([{"user_id": 1, "event_ts": NOON}, {"event_ts": NOON}],
         "push to 'transactions': row 1: required column 'user_id' is null"),
        ([{"user_id": 1, "event_ts": NOON}, {"user_id": "2", "event_ts": NOON}],
         "push to 'transactions': row 1: column 'user_id' expects an integer, got '2' (str)"),
        ([{"user_id": 2.5, "event_ts": NOON}],
         "push to 'transactions': row 0: column 'user_id' expects an integer, got 2.5 (float)"),
        ([{"user_id": 1, "event_ts": NOON, "online": 1}],
         "push to 'transactions': row 0: column 'online' expects true or false, got 1 (int)"),
        ([{"user_id": 1, "event_ts": NOON, "merchant": 7}],
         "push to 'transactions': row 0: column 'merchant' expects a string, got 7 (int)"),
        ([{"user_id": 1, "event_ts": NOON, "amount": True}],
         "push to 'transactions': row 0: column 'amount' expects a number, got True (bool)"),
        ([{"user_id": 1, "event_ts": 1704110400}],
         "push to 'transactions': row 0: column 'event_ts' expects an ISO-8601 timestamp or "
         "a datetime, got 1704110400 (int)"),
        ([{"user_id": 1, "event_ts": "noon"}],
         "push to 'transactions': row 0: column 'event_ts' expects an ISO-8601 timestamp or "
         "a datetime, got 'noon' (str)"),
        ({"user_id": [1, 2], "event_ts": [NOON]},
         "push to 'transactions': columns have different lengths: {'user_id': 2, 'event_ts': 1}"),
        ([{"user_id": 1, "event_ts": NOON}, [1, NOON]],
         "push to 'transactions': row 1 is a list, not a mapping"),
        (pd.DataFrame({"user_id": [1.0, 2.5], "event_ts": [NOON, NOON]}),
         "push to 'transactions': row 1: column 'user_id' expects an integer, got 2.5 (float)"),
        (pa.table({"user_id": [1], "event_ts": [NOON], "merchant": [3]}),
         "push to 'transactions': column 'merchant' has type int64; the source's 'merchant' "
         "is string"),
        (pa.table({"user_id": [1], "event_ts": [1.5]}),
         "push to 'transactions': column 'event_ts' has type double; expected timestamps "
         "(naive = UTC, or tz-aware), dates, or ISO-8601 strings"),
        ("rows", "push to 'transactions': rows must be a DataFrame, an Arrow table, a list "
         "of dicts or a dict of columns; got str"),
    ],
)  # fmt: skip
def test_bad_rows_name_the_row_and_column(rows: object, message: str) -> None:
    with pytest.raises(InputError) as error:
        _validate(rows)
    assert str(error.value) == message


def test_arrow_overflow_is_named() -> None:
    rows = pa.table({"user_id": pa.array([1, 2**63], pa.uint64()), "event_ts": [NOON, NOON]})
    with pytest.raises(InputError, match="row 1: column 'user_id' expects an integer"):
        _validate(rows)
