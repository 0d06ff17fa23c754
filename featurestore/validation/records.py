"""The tables expectations keep in the offline file, and the one module that writes them.

- `featurestore_quarantine`: every quarantined row a materialization read: the source,
  column, rule, the value, the whole row as JSON, and the run that recorded it. A row
  is recorded once: a later run (a full one re-reads everything) adds only rows not
  recorded yet. Identical rows are told apart by their occurrence number.
- `featurestore_validations`: every verdict of every materialization, failed ones too.
- `featurestore_source_counts`: each source's row count per successful run, which
  `row_count_change` compares with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson

from featurestore.offline.sources import quote_identifier, source_errors, source_relation
from featurestore.registry import Registry
from featurestore.validation.checks import before, flagged_spec
from featurestore.validation.rules import ROW_COLUMN, flag_column, source_rules
from featurestore.validation.verdicts import Verdict

QUARANTINE_TABLE = "featurestore_quarantine"
VALIDATIONS_TABLE = "featurestore_validations"
COUNTS_TABLE = "featurestore_source_counts"


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the three tables when missing."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (source VARCHAR NOT NULL, "
                "column_name VARCHAR NOT NULL, rule VARCHAR NOT NULL, "
                "description VARCHAR NOT NULL, value VARCHAR, row_json VARCHAR NOT NULL, "
                "occurrence BIGINT NOT NULL, event_us BIGINT, run_at TIMESTAMPTZ NOT NULL)")
    con.execute(f"CREATE TABLE IF NOT EXISTS {VALIDATIONS_TABLE} (run_at TIMESTAMPTZ NOT NULL, "
                "kind VARCHAR NOT NULL, target VARCHAR NOT NULL, column_name VARCHAR, "
                "rule VARCHAR NOT NULL, description VARCHAR NOT NULL, policy VARCHAR NOT NULL, "
                "checked BIGINT NOT NULL, breaking BIGINT NOT NULL, broken BOOLEAN NOT NULL, "
                "example VARCHAR, detail VARCHAR)")
    con.execute(f"CREATE TABLE IF NOT EXISTS {COUNTS_TABLE} (source VARCHAR NOT NULL, "
                "rows BIGINT NOT NULL, run_at TIMESTAMPTZ NOT NULL)")


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the offline file holds table `name` (the tables appear with the first run
    that has expectations)."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
                            [name]).fetchone()[0])  # type: ignore[index]


def record_quarantine(con: duckdb.DuckDBPyConnection, registry: Registry, name: str,
                      offline_path: Path, base_dir: Path, end_us: int,
                      run_at: dt.datetime) -> int:
    """Record the quarantined rows of a source before `end_us` not recorded yet.

    Returns:
        How many rows were added.
    """
    rules = source_rules(registry, name)
    spec = flagged_spec(registry, name, offline_path)
    relation = source_relation(spec, base_dir)
    added = 0
    for i, rule in enumerate(rules):
        if rule.policy != "quarantine":
            continue
        column = quote_identifier(rule.column)
        found = (f"SELECT CAST({column} AS VARCHAR) AS value, {ROW_COLUMN} AS row_json, "
                 f"row_number() OVER (PARTITION BY {ROW_COLUMN}) AS occurrence, "
                 f"epoch_us({quote_identifier(spec.timestamp)}) AS event_us FROM {relation} "
                 f"WHERE {flag_column(i)} AND {before(spec.timestamp, end_us)}")
        with source_errors(spec):
            result = con.execute(
                f"INSERT INTO {QUARANTINE_TABLE} SELECT ?, ?, ?, ?, value, row_json, "
                f"occurrence, event_us, ? FROM ({found}) AS found WHERE NOT EXISTS ("
                f"SELECT 1 FROM {QUARANTINE_TABLE} AS q WHERE q.source = ? "
                "AND q.column_name = ? AND q.rule = ? AND q.row_json = found.row_json "
                "AND q.occurrence = found.occurrence)",
                [name, rule.column, rule.rule, rule.describe(), run_at,
                 name, rule.column, rule.rule]).fetchone()
        added += int(result[0]) if result else 0
    return added


def record_verdicts(con: duckdb.DuckDBPyConnection, verdicts: Sequence[Verdict],
                    run_at: dt.datetime) -> None:
    """Append a run's verdicts."""
    for verdict in verdicts:
        con.execute(f"INSERT INTO {VALIDATIONS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [run_at, verdict.kind, verdict.target, verdict.column, verdict.rule,
                     verdict.description, verdict.policy, verdict.checked, verdict.breaking,
                     verdict.broken, verdict.example, verdict.detail])


def record_count(con: duckdb.DuckDBPyConnection, source: str, rows: int,
                 run_at: dt.datetime) -> None:
    """Keep a source's row count for the next run's `row_count_change`."""
    con.execute(f"INSERT INTO {COUNTS_TABLE} VALUES (?, ?, ?)", [source, rows, run_at])


def previous_count(con: duckdb.DuckDBPyConnection, source: str) -> int | None:
    """The source's row count at the last run that recorded one (None: none did)."""
    if not has_table(con, COUNTS_TABLE):
        return None
    row = con.execute(f"SELECT rows FROM {COUNTS_TABLE} WHERE source = ? "
                      "ORDER BY run_at DESC LIMIT 1", [source]).fetchone()
    return None if row is None else int(row[0])


@dataclass(frozen=True)
class QuarantineGroup:
    """Quarantined rows of one source, column and rule: how many, and the newest run."""

    source: str
    column: str
    rule: str
    description: str
    rows: int
    newest_run: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, the time as ISO-8601."""
        return {"source": self.source, "column": self.column, "rule": self.rule,
                "description": self.description, "rows": self.rows,
                "newest_run": self.newest_run.isoformat()}


@dataclass(frozen=True)
class QuarantinedRow:
    """One quarantined row: the rule it broke, its value and the whole row."""

    source: str
    column: str
    rule: str
    description: str
    value: str | None
    row: str
    run_at: dt.datetime

    def as_json(self) -> dict[str, Any]:
        """JSON-ready: the row as its JSON object, the time as ISO-8601."""
        return {"source": self.source, "column": self.column, "rule": self.rule,
                "description": self.description, "value": self.value,
                "row": orjson.loads(self.row), "run_at": self.run_at.isoformat()}


def quarantine_groups(con: duckdb.DuckDBPyConnection,
                      source: str | None = None) -> list[QuarantineGroup]:
    """Per source, column and rule: rows quarantined and the newest run that added some."""
    if not has_table(con, QUARANTINE_TABLE):
        return []
    rows = con.execute(
        f"SELECT source, column_name, rule, any_value(description), count(*), max(run_at) "
        f"FROM {QUARANTINE_TABLE} WHERE ? IS NULL OR source = ? "
        "GROUP BY source, column_name, rule ORDER BY source, column_name, rule",
        [source, source]).fetchall()
    return [QuarantineGroup(*row) for row in rows]


def quarantined_rows(con: duckdb.DuckDBPyConnection, source: str, rule: str | None = None,
                     column: str | None = None, limit: int | None = None) -> list[QuarantinedRow]:
    """A source's quarantined rows (optionally of one rule or column), oldest event first."""
    if not has_table(con, QUARANTINE_TABLE):
        return []
    sql = (f"SELECT source, column_name, rule, description, value, row_json, run_at "
           f"FROM {QUARANTINE_TABLE} WHERE source = ? AND (? IS NULL OR rule = ?) "
           "AND (? IS NULL OR column_name = ?) "
           "ORDER BY event_us NULLS LAST, column_name, rule, row_json, occurrence")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = con.execute(sql, [source, rule, rule, column, column]).fetchall()
    return [QuarantinedRow(*row) for row in rows]


@dataclass(frozen=True)
class BrokenRule:
    """An expectation the latest validation broke (for the console's warnings)."""

    target: str
    column: str | None
    rule: str
    policy: str
    breaking: int
    run_at: dt.datetime


def latest_broken(con: duckdb.DuckDBPyConnection) -> list[BrokenRule]:
    """The expectations broken in the newest recorded run (materialize or validate)."""
    if not has_table(con, VALIDATIONS_TABLE):
        return []
    rows = con.execute(f"SELECT target, column_name, rule, policy, breaking, run_at "
                       f"FROM {VALIDATIONS_TABLE} WHERE broken AND run_at = "
                       f"(SELECT max(run_at) FROM {VALIDATIONS_TABLE}) "
                       "ORDER BY target, column_name, rule").fetchall()
    return [BrokenRule(*row) for row in rows]
