"""Statistics stored by every materialization, per view (`featurestore_view_statistics`).

Each run profiles the view's latest-values table right after writing it, in the same
DuckDB transaction, so the stored statistics always describe the values that run left
(a failed run leaves neither). This module alone names, writes and reads the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import orjson

from featurestore.offline.sources import quote_identifier
from featurestore.registry.state import table_exists
from featurestore.statistics.model import DatasetStatistics, format_value
from featurestore.statistics.profile import ProfiledColumn, profile
from featurestore.times import format_micros

STATISTICS_TABLE = "featurestore_view_statistics"


@dataclass(frozen=True)
class ViewStatisticsRun:
    """The statistics one materialization stored for one view.

    Attributes:
        view: the view.
        end_us: the materialization's end (events before it were folded), microseconds.
        run_at: when the run wrote them (ISO-8601).
        statistics: the statistics of its features' latest values.
    """

    view: str
    end_us: int
    run_at: str
    statistics: DatasetStatistics

    def render(self) -> str:
        """One line: end time, then each feature's count, null fraction and mean."""
        parts = [f"{column.name} count {column.count:,} null "
                 f"{100 * column.null_fraction:.1f}%"
                 + (f" mean {format_value(column.mean)}" if column.mean is not None else "")
                 for column in self.statistics.columns]
        return f"{format_micros(self.end_us)}  " + "; ".join(parts)

    def to_dict(self) -> dict:
        """The JSON form."""
        return {"view": self.view, "end": format_micros(self.end_us), "run_at": self.run_at,
                "statistics": self.statistics.to_dict()}


def create_statistics_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the table if the offline file has none yet."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATISTICS_TABLE} (view VARCHAR NOT NULL, "
                "end_us BIGINT NOT NULL, run_at TIMESTAMPTZ NOT NULL, "
                "statistics VARCHAR NOT NULL)")


def record_view_statistics(con: duckdb.DuckDBPyConnection, view: str, table: str,
                           features: list[str], end_us: int) -> None:
    """Profile `features` of the view's latest-values `table` and store the result
    (inside the caller's transaction)."""
    relation = quote_identifier(table)
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {relation})"
                             ).fetchall())
    columns = [ProfiledColumn(name, str(types[name])) for name in features if name in types]
    rows = con.execute(f"SELECT count(*) FROM {relation}").fetchone()
    statistics = profile(con, relation, columns, int(rows[0]) if rows else None,
                         f"view '{view}' (materialized up to {format_micros(end_us)})")
    con.execute(f"INSERT INTO {STATISTICS_TABLE} VALUES (?, ?, now(), ?)",
                [view, end_us, orjson.dumps(statistics.to_dict()).decode()])


def read_history(con: duckdb.DuckDBPyConnection, view: str) -> list[ViewStatisticsRun]:
    """Every stored run of `view`, oldest first (none when nothing was stored)."""
    if not table_exists(con, STATISTICS_TABLE):
        return []
    rows = con.execute(f"SELECT end_us, run_at, statistics FROM {STATISTICS_TABLE} "
                       "WHERE view = ? ORDER BY run_at, end_us", [view]).fetchall()
    return [ViewStatisticsRun(view, int(end_us), _iso(run_at),
                              DatasetStatistics.from_dict(orjson.loads(text)))
            for end_us, run_at, text in rows]


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
