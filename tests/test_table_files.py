"""Table files by extension: every format round-trips, text formats keep the UTC offset,
unknown extensions are refused with the list."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from featurestore.errors import InputError
from featurestore.table_files import (
    FORMATS,
    check_table_path,
    read_table_file,
    text_times,
    write_table_file,
)

UTC = dt.UTC
TABLE = pa.table({
    "user_id": pa.array([1, 2], pa.int64()),
    "naive_ts": pa.array([dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 2, 0, 0, 0, 5)],
                         pa.timestamp("us")),
    "paris_ts": pa.array([dt.datetime(2024, 1, 1, 12, tzinfo=UTC), None],
                         pa.timestamp("us", tz="Europe/Paris")),
    "flag": pa.array([True, None], pa.bool_()),
    "amount": pa.array([1.5, None], pa.float64()),
    "category": pa.array(["a", None], pa.string()),
})


@pytest.mark.parametrize("extension", [".parquet", ".pq", ".arrow", ".feather"])
def test_binary_formats_round_trip_exactly(tmp_path: Path, extension: str) -> None:
    path = tmp_path / f"table{extension}"
    write_table_file(TABLE, path)
    assert read_table_file(path).equals(TABLE)
    assert not list(tmp_path.glob(".*.partial"))


def test_csv_writes_times_in_utc_with_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    write_table_file(TABLE, path)
    lines = path.read_text().splitlines()
    assert lines[1] == ('1,"2024-01-01T12:00:00.000000+00:00",'
                        '"2024-01-01T12:00:00.000000+00:00",true,1.5,"a"')
    assert lines[2] == '2,"2024-01-02T00:00:00.000005+00:00",,,,'
    back = pa_csv.read_csv(path)
    assert back.schema.field("naive_ts").type == pa.timestamp("ns", tz="UTC")
    assert back.column("naive_ts")[0].as_py() == dt.datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert read_table_file(path).num_rows == 2


def test_csv_writes_list_features_as_json_arrays(tmp_path: Path) -> None:
    ranked = pa.struct([("value", pa.string()), ("count", pa.int64())])
    table = pa.table({
        "recent": pa.array([[3.5, 1.0], None], pa.list_(pa.float64())),
        "top": pa.array([[{"value": "a", "count": 2}], None], pa.list_(ranked)),
    })
    path = tmp_path / "lists.csv"
    write_table_file(table, path)
    rows = list(pa_csv.read_csv(path).to_pylist())
    assert [json.loads(rows[0]["recent"]), json.loads(rows[0]["top"])] == [
        [3.5, 1.0], [{"value": "a", "count": 2}]]
    assert path.read_text().splitlines()[2] == ","  # null lists stay empty, as nulls do


@pytest.mark.parametrize("extension", [".json", ".jsonl"])
def test_json_lines_one_object_per_row(tmp_path: Path, extension: str) -> None:
    path = tmp_path / f"table{extension}"
    write_table_file(TABLE, path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [
        {"user_id": 1, "naive_ts": "2024-01-01T12:00:00.000000+00:00",
         "paris_ts": "2024-01-01T12:00:00.000000+00:00", "flag": True, "amount": 1.5,
         "category": "a"},
        {"user_id": 2, "naive_ts": "2024-01-02T00:00:00.000005+00:00", "paris_ts": None,
         "flag": None, "amount": None, "category": None},
    ]
    assert dt.datetime.fromisoformat(rows[0]["naive_ts"]).tzinfo is not None
    back = read_table_file(path)
    assert back.column("user_id").to_pylist() == [1, 2]


def test_text_times_leave_other_columns_alone() -> None:
    converted = text_times(TABLE)
    assert converted.schema.field("naive_ts").type == pa.string()
    assert converted.select(["user_id", "flag", "amount", "category"]).equals(
        TABLE.select(["user_id", "flag", "amount", "category"]))


@pytest.mark.parametrize("name", ["out.txt", "out", "out.xlsx", "out.parquet.gz"])
def test_unknown_extensions_are_refused_with_the_list(tmp_path: Path, name: str) -> None:
    listed = ", ".join(FORMATS)
    with pytest.raises(InputError, match=f"; use one of {listed}$"):
        check_table_path(Path(name))
    with pytest.raises(InputError, match="use one of"):
        write_table_file(TABLE, tmp_path / name)
    assert not list(tmp_path.iterdir())


def test_reading_an_unknown_extension_says_it_is_not_readable(tmp_path: Path) -> None:
    path = tmp_path / "spine.yaml"
    path.write_text("a: 1\n")
    with pytest.raises(InputError, match=r"spine.yaml is not readable: .* has extension "
                                         r"'.yaml'; use one of \.parquet"):
        read_table_file(path)
