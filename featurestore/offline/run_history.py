"""The materialization history: one row per view per run (`featurestore_materializations`).

`featurestore_view_runs` keeps only each view's last run, which incremental runs continue
from; this table keeps every run, for people: when it started, up to which end, what was
read and how long the view took. A row is written inside the run's DuckDB transaction,
so a run that fails records nothing. This module alone names, writes and reads the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from featurestore.offline.history_rows import newest_rows
from featurestore.times import format_micros

if TYPE_CHECKING:
    from featurestore.offline.materialize import ViewRun

HISTORY_TABLE = "featurestore_materializations"

_COLUMNS = ("view, end_us, start_us, incremental, rebuild, events, entities, recomputed, "
            "duration_s, registry_version")


@dataclass(frozen=True)
class MaterializationRecord:
    """What one materialization did for one feature view.

    Attributes:
        run_at: when the run started (UTC).
        view: the feature view.
        end_us: the run's end: events before it were folded (microseconds, UTC).
        start_us: the previous end, from which an incremental run continued (None: the
            view was rebuilt from all events).
        incremental: True when the stored states were continued, not rebuilt.
        rebuild: why the view was rebuilt (None when incremental).
        events: events folded.
        entities: entities whose state was written.
        recomputed: entities recomputed from all their events (late, added or corrected
            data).
        duration_s: the view's wall time in the run, seconds.
        registry_version: the applied registry version the run built.
    """

    run_at: datetime
    view: str
    end_us: int
    start_us: int | None
    incremental: bool
    rebuild: str | None
    events: int
    entities: int
    recomputed: int
    duration_s: float
    registry_version: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: times as ISO-8601 text (UTC), the ends also in microseconds."""
        return {
            "run_at": self.run_at.isoformat(), "view": self.view,
            "end": format_micros(self.end_us), "end_us": self.end_us,
            "start": None if self.start_us is None else format_micros(self.start_us),
            "start_us": self.start_us, "incremental": self.incremental,
            "rebuild": self.rebuild, "events": self.events, "entities": self.entities,
            "recomputed": self.recomputed, "duration_s": self.duration_s,
            "registry_version": self.registry_version,
        }


def create_run_history_table(con: duckdb.DuckDBPyConnection) -> None:
    """Create the table if the offline file has none yet."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} ("
                "run_at TIMESTAMPTZ NOT NULL, view VARCHAR NOT NULL, end_us BIGINT NOT NULL, "
                "start_us BIGINT, incremental BOOLEAN NOT NULL, rebuild VARCHAR, "
                "events BIGINT NOT NULL, entities BIGINT NOT NULL, "
                "recomputed BIGINT NOT NULL, duration_s DOUBLE NOT NULL, "
                "registry_version BIGINT NOT NULL)")


def record_view_run(con: duckdb.DuckDBPyConnection, run: ViewRun, end_us: int,
                    run_at: datetime, duration_s: float, registry_version: int) -> None:
    """Append one view's row (inside the caller's transaction).

    Args:
        con: a connection to the offline file, in the run's transaction.
        run: what the run did for the view.
        end_us: the run's end, microseconds.
        run_at: when the run started (aware; naive is taken as UTC).
        duration_s: the view's wall time, seconds.
        registry_version: the applied registry version the run built.
    """
    if run_at.tzinfo is None:
        run_at = run_at.replace(tzinfo=UTC)
    con.execute(f"INSERT INTO {HISTORY_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_at, run.view, end_us, run.start_us, run.incremental, run.rebuild,
                 run.events, run.entities, run.recomputed, duration_s, registry_version])


def read_run_history(con: duckdb.DuckDBPyConnection, view: str | None = None,
                     limit: int | None = None) -> list[MaterializationRecord]:
    """The recorded rows, newest run first (none when no run recorded any).

    Args:
        con: a connection to the offline file (read-only is enough).
        view: only this view's rows; default every view's.
        limit: at most this many rows; default all.

    Raises:
        InputError: `limit` is negative.
    """
    rows = newest_rows(con, HISTORY_TABLE, _COLUMNS,
                       where=("view", view) if view is not None else None,
                       # Views of one run share run_at: list them in a stable order.
                       then_by="view", limit=limit)
    return [MaterializationRecord(*row) for row in rows]
