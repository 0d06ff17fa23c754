"""Entity keys: canonical types, partition numbers, dense ids, spine lookups."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from featurestore.errors import InputError
from featurestore.offline.keys import (
    dense_entities,
    entity_ids,
    normalize_keys,
    partition_of_keys,
)
from transforms.spec import ColumnType

INT_KEY = {"user_id": ColumnType.INT}


def test_key_widths_do_not_change_partitions() -> None:
    con = duckdb.connect()
    values = list(range(-50, 50))
    expected = partition_of_keys(con, pa.table({"user_id": values}), INT_KEY, 7)
    assert set(expected.tolist()) == set(range(7))
    for kind in (pa.int8(), pa.int16(), pa.int32(), pa.float64()):
        table = pa.table({"user_id": pa.array(values).cast(kind)})
        np.testing.assert_array_equal(partition_of_keys(con, table, INT_KEY, 7), expected)
    # The same numbers in a fresh connection (and so a fresh process) hash the same.
    again = partition_of_keys(duckdb.connect(), pa.table({"user_id": values}), INT_KEY, 7)
    np.testing.assert_array_equal(again, expected)
    assert partition_of_keys(con, pa.table({"user_id": values}), INT_KEY, 1).tolist() == [0] * 100


def test_partitions_ignore_insertion_order_settings() -> None:
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    table = pa.table({"user_id": np.arange(200_000)})
    ordered = partition_of_keys(duckdb.connect(), table, INT_KEY, 5)
    np.testing.assert_array_equal(partition_of_keys(con, table, INT_KEY, 5), ordered)


def test_normalize_keys_is_exact_or_refuses() -> None:
    table = pa.table({"user_id": [1.0, 2.0], "name": pa.array([7, 8], pa.int16())})
    normalized = normalize_keys(table, {"user_id": ColumnType.INT, "name": ColumnType.STRING})
    assert normalized.schema == pa.schema([("user_id", pa.int64()), ("name", pa.string())])
    assert normalized.to_pylist() == [{"user_id": 1, "name": "7"}, {"user_id": 2, "name": "8"}]
    with pytest.raises(InputError, match=r"^key column 'user_id' does not convert to the source"):
        normalize_keys(pa.table({"user_id": [1.5]}), INT_KEY)
    with pytest.raises(InputError, match=r"^key column 'user_id' has type bool; the source's"):
        normalize_keys(pa.table({"user_id": [True]}), INT_KEY)
    with pytest.raises(InputError, match=r"^missing key column 'user_id'; columns: id"):
        normalize_keys(pa.table({"id": [1]}), INT_KEY)


def test_dense_entities_from_sorted_keys() -> None:
    first = pa.chunked_array([["a", "a"], ["a", "b", "b"]])
    second = pa.chunked_array([[1, 2, 2], [2, 2]])
    entity, starts = dense_entities([first, second])
    assert entity.tolist() == [0, 1, 1, 2, 2]
    assert starts.tolist() == [0, 1, 3]
    entity, starts = dense_entities([pa.chunked_array([], pa.int64())])
    assert entity.tolist() == [] and starts.tolist() == []


def test_entity_ids_cast_the_spine_keys_and_mark_unknown_keys() -> None:
    key_table = pa.table({"user_id": pa.array([3, 5, 9], pa.int64())})
    spine = pa.table({"user_id": pa.array([9, 4, 3, 9, 5], pa.int32()), "label": [1] * 5})
    assert entity_ids(key_table, spine).tolist() == [2, -1, 0, 2, 1]
    empty = pa.table({"user_id": pa.array([], pa.int64())})
    assert entity_ids(empty, spine).tolist() == [-1] * 5
    with pytest.raises(InputError, match=r"^key column 'user_id' does not convert.*'x'"):
        entity_ids(key_table, pa.table({"user_id": ["x"]}))
