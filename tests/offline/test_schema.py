"""Source schemas: type mapping, timestamp checks, and missing-column messages."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from featurestore.errors import SourceError
from featurestore.offline.schema import check_columns, column_type, describe_source
from featurestore.offline.sources import SourceSpec
from transforms.spec import ColumnType


def test_duckdb_types_map_to_kernel_types(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events AS SELECT 1::TINYINT AS a, 2::UBIGINT AS b, 1.5::REAL AS c,"
        " 2.25::DECIMAL(10, 2) AS d, true AS e, 'x' AS f, 'k'::ENUM ('k') AS g,"
        " DATE '2024-01-01' AS h, TIMESTAMP_NS '2024-01-01' AS i, [1, 2] AS j,"
        " TIMESTAMPTZ '2024-01-01 00:00:00+00' AS event_ts"
    )
    schema = describe_source(con, SourceSpec("s", None, "events", None, "event_ts"), tmp_path)
    assert schema == {
        "a": ColumnType.INT,
        "b": ColumnType.INT,
        "c": ColumnType.FLOAT,
        "d": ColumnType.FLOAT,
        "e": ColumnType.BOOL,
        "f": ColumnType.STRING,
        "g": ColumnType.STRING,
        "h": ColumnType.TIMESTAMP,
        "i": ColumnType.TIMESTAMP,
        "event_ts": ColumnType.TIMESTAMP,
    }  # the list column "j" has no kernel type and is left out
    assert column_type("INTERVAL") is None


def test_missing_source_names_source_and_path(tmp_path: Path) -> None:
    con = duckdb.connect()
    spec = SourceSpec("transactions", "data/tx.parquet", None, None, "event_ts")
    with pytest.raises(SourceError) as error:
        describe_source(con, spec, tmp_path)
    assert str(error.value) == (
        f"source 'transactions': file not found: {tmp_path / 'data' / 'tx.parquet'}"
    )


def test_unreadable_file_and_missing_table_and_bad_query(tmp_path: Path) -> None:
    con = duckdb.connect()
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(SourceError, match=r"^source 'b' \(path 'broken.parquet'\) cannot be"):
        describe_source(con, SourceSpec("b", "broken.parquet", None, None, "ts"), tmp_path)
    with pytest.raises(SourceError, match=r"^source 't' \(table 'nope'\) cannot be read: .*nope"):
        describe_source(con, SourceSpec("t", None, "nope", None, "ts"), tmp_path)
    with pytest.raises(SourceError, match=r"^source 'q' \(query 'SELEC 1'\) cannot be read"):
        describe_source(con, SourceSpec("q", None, None, "SELEC 1", "ts"), tmp_path)


def test_timestamp_column_missing_or_mistyped(tmp_path: Path) -> None:
    con = duckdb.connect()
    (tmp_path / "e.csv").write_text("user_id,event_time,when\n1,2024-01-01 00:00:00,soon\n")
    missing = SourceSpec("tx", "e.csv", None, None, "event_ts")
    with pytest.raises(SourceError) as error:
        describe_source(con, missing, tmp_path)
    assert str(error.value) == (
        "source 'tx' (path 'e.csv'): no timestamp column 'event_ts' (did you mean "
        "'event_time'?); its columns: user_id, event_time, when"
    )
    mistyped = SourceSpec("tx", "e.csv", None, None, "when")
    with pytest.raises(SourceError) as error:
        describe_source(con, mistyped, tmp_path)
    assert str(error.value) == (
        "source 'tx' (path 'e.csv'): timestamp column 'when' has type VARCHAR; expected "
        "TIMESTAMP (naive = UTC) or TIMESTAMPTZ (DuckDB read it from CSV as text: use a "
        "`query:` source that casts it)"
    )
    dated = SourceSpec("tx", None, None, "SELECT DATE '2024-01-01' AS d", "d")
    with pytest.raises(SourceError, match="timestamp column 'd' has type DATE"):
        describe_source(con, dated, tmp_path)


def test_check_columns_names_the_feature_that_needs_the_column() -> None:
    schema = {"user_id": ColumnType.INT, "amount": ColumnType.FLOAT}
    check_columns(schema, {"amount": "user_txn:amount_sum_7d"}, "transactions")
    with pytest.raises(SourceError) as error:
        check_columns(
            schema,
            {"amout": "user_txn:amount_sum_7d", "merchant": "user_txn:last_category"},
            "transactions",
        )
    assert str(error.value).splitlines() == [
        "source 'transactions' has no column 'amout' of a usable type (int, float, bool, "
        "string or timestamp), needed by user_txn:amount_sum_7d (did you mean 'amount'?)",
        "source 'transactions' has no column 'merchant' of a usable type (int, float, bool, "
        "string or timestamp), needed by user_txn:last_category",
        "columns of 'transactions': user_id, amount",
    ]
