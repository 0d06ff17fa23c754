"""Source relations: Parquet, CSV, globs, tables, queries, and pushed segments."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import SourceError
from featurestore.offline.segments import append_segment, segment_dir
from featurestore.offline.sources import SourceSpec, count_rows, source_relation


def _write_parquet(path: Path, users: list[int], day: int = 1) -> None:
    pq.write_table(
        pa.table(
            {
                "user_id": users,
                "event_ts": pa.array(
                    [f"2024-01-{day:02d} 00:00:0{i % 10}" for i in range(len(users))]
                ).cast(pa.timestamp("us")),
            }
        ),
        path,
    )


def _rows(con: duckdb.DuckDBPyConnection, spec: SourceSpec, base_dir: Path) -> list[tuple]:
    relation = source_relation(spec, base_dir)
    return con.sql(f"SELECT user_id, event_ts FROM {relation} ORDER BY ALL").fetchall()


def test_exactly_one_location_is_required() -> None:
    with pytest.raises(SourceError, match=r"source 'x': give exactly one of .*\(got path, table"):
        SourceSpec("x", "a.parquet", "t", None, "ts")
    with pytest.raises(SourceError, match=r"\(got none\)"):
        SourceSpec("x", None, None, None, "ts")


def test_parquet_file_relative_to_the_base_directory(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    _write_parquet(tmp_path / "data" / "events.parquet", [1, 2])
    spec = SourceSpec("s", "data/events.parquet", None, None, "event_ts")
    con = duckdb.connect()
    assert [row[0] for row in _rows(con, spec, tmp_path)] == [1, 2]
    assert count_rows(con, spec, tmp_path) == 2


def test_glob_unions_files_by_column_name(tmp_path: Path) -> None:
    _write_parquet(tmp_path / "a.parquet", [1])
    pq.write_table(
        pa.table({"extra": ["x"], "event_ts": pa.array([0], pa.timestamp("us")), "user_id": [2]}),
        tmp_path / "b.parquet",
    )
    spec = SourceSpec("s", str(tmp_path / "*.parquet"), None, None, "event_ts")
    con = duckdb.connect()
    assert [row[0] for row in _rows(con, spec, Path("/elsewhere"))] == [1, 2]
    columns = con.sql(f"SELECT * FROM {source_relation(spec, tmp_path)}").columns
    assert sorted(columns) == ["event_ts", "extra", "user_id"]


def test_csv_file_and_csv_glob(tmp_path: Path) -> None:
    (tmp_path / "one.csv").write_text("user_id,event_ts,amount\n1,2024-01-01 10:00:00,2.5\n")
    (tmp_path / "two.csv").write_text("user_id,event_ts,amount\n2,2024-01-02 10:00:00,1\n")
    con = duckdb.connect()
    single = SourceSpec("s", "one.csv", None, None, "event_ts")
    assert _rows(con, single, tmp_path) == [(1, dt.datetime(2024, 1, 1, 10))]
    both = SourceSpec("s", "*.csv", None, None, "event_ts")
    assert count_rows(con, both, tmp_path) == 2


def test_table_and_query_sources(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute(
        "CREATE TABLE raw.events AS SELECT 5 AS user_id, TIMESTAMP '2024-01-01' AS event_ts"
    )
    table = SourceSpec("s", None, "raw.events", None, "event_ts")
    assert [row[0] for row in _rows(con, table, tmp_path)] == [5]
    query = SourceSpec(
        "s", None, None, "SELECT user_id + 1 AS user_id, event_ts FROM raw.events;", "event_ts"
    )
    assert [row[0] for row in _rows(con, query, tmp_path)] == [6]


def test_timestamptz_is_normalised_to_naive_utc(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Asia/Tokyo'")
    con.execute(
        "CREATE TABLE events AS SELECT 1 AS user_id,"
        " TIMESTAMPTZ '2024-01-01 12:00:00+00:00' AS event_ts"
    )
    spec = SourceSpec("s", None, "events", None, "event_ts")
    relation = source_relation(spec, tmp_path)
    kind = con.sql(f"SELECT typeof(event_ts) FROM {relation}").fetchall()[0][0]
    assert kind == "TIMESTAMP"
    assert con.sql(f"SELECT event_ts::VARCHAR FROM {relation}").fetchall() == [
        ("2024-01-01 12:00:00",)
    ]


def test_relation_includes_every_complete_pushed_segment(tmp_path: Path) -> None:
    _write_parquet(tmp_path / "events.parquet", [1])
    pushed = segment_dir(tmp_path / "data", "s")
    spec = SourceSpec("s", "events.parquet", None, None, "event_ts", pushed_dir="data/pushed/s")
    con = duckdb.connect()
    assert "pushed" not in source_relation(spec, tmp_path)
    for user in (2, 3):
        segment = pa.table(
            {"user_id": pa.array([user], pa.int64()),
             "event_ts": pa.array([0], pa.timestamp("us")),
             "amount": pa.array([1.0])}
        )  # fmt: skip
        append_segment(tmp_path / "data", "s", segment)
    # A temporary file left by an interrupted append is not a segment.
    (pushed / ".segment-0-0-0.parquet.tmp").write_bytes(b"PAR1 partial")
    assert [row[0] for row in _rows(con, spec, tmp_path)] == [1, 2, 3]
    assert count_rows(con, spec, tmp_path) == 3


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    con = duckdb.connect()
    (tmp_path / "e.json").write_text("{}")
    with pytest.raises(SourceError, match=r"source 's': cannot tell the format of path 'e\.json'"):
        count_rows(con, SourceSpec("s", "e.json", None, None, "ts"), tmp_path)
    with pytest.raises(SourceError, match=r"source 's': file not found: .*/nope\.parquet"):
        count_rows(con, SourceSpec("s", "nope.parquet", None, None, "ts"), tmp_path)
    with pytest.raises(SourceError, match=r"source 's' \(path 'none\*\.csv'\) cannot be read"):
        count_rows(con, SourceSpec("s", "none*.csv", None, None, "ts"), tmp_path)
