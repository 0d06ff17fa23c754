"""Reading the offline file's history tables (materializations, checks): newest first.

Each table has a `run_at TIMESTAMPTZ` column. It is read as epoch microseconds and
turned into an aware UTC datetime here, so what callers get does not depend on the
DuckDB session's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb

from featurestore.errors import InputError
from featurestore.registry.state import table_exists

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def newest_rows(con: duckdb.DuckDBPyConnection, table: str, columns: str, *,
                where: tuple[str, object] | None = None, then_by: str | None = None,
                limit: int | None = None) -> list[tuple]:
    """Rows of `table`, newest `run_at` first: `(run_at, *columns)` each.

    Args:
        con: a connection to the offline file (read-only is enough).
        table: the history table; none yet means no rows.
        columns: the other columns to read, as SQL.
        where: (column, value): only rows whose column equals the value.
        then_by: the order among rows of one run_at, as SQL.
        limit: at most this many rows; default all.

    Raises:
        InputError: a negative limit.
    """
    if limit is not None and limit < 0:
        raise InputError(f"limit must be 0 or more, got {limit}")
    if not table_exists(con, table):
        return []
    sql = f"SELECT epoch_us(run_at), {columns} FROM {table}"
    params: list[object] = []
    if where is not None:
        sql += f" WHERE {where[0]} = ?"
        params.append(where[1])
    sql += " ORDER BY run_at DESC" + (f", {then_by}" if then_by else "")
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [(_EPOCH + timedelta(microseconds=row[0]), *row[1:])
            for row in con.execute(sql, params).fetchall()]
