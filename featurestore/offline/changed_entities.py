"""Which entities an incremental materialization must recompute from their history.

Events that reach the offline record after a run may carry any event time: a file
added to a glob, a pushed segment, rows appended to (or corrected in) a table. Folding
them on top of stored states would put old events after newer ones, so the entities
they belong to are recomputed from all their events instead, and every other entity
continues its fold with the events since the last run.

- New files and new pushed segments: every entity with an event in them.
- Tables and queries: a per-entity checksum of the source's rows before the last run's
  end (row count and the sum of row hashes) is kept per view; an entity whose checksum
  moved is recomputed. With `changes: append` only the row counts are compared (rows
  are only ever added), and a count that dropped is refused: the declaration is wrong.

The keys land in a Parquet file (`EntityFilter.keys_file`) that the event reads join
against, so the sets never pass through Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from featurestore.errors import SourceError
from featurestore.offline.event_query import TS_COLUMN, plan_events
from featurestore.offline.manifest import ManifestChanges
from featurestore.offline.sources import (
    SourceSpec,
    fetch_table,
    located_errors,
    quote_identifier,
    quote_literal,
)

_NOW = "fs_checksums_now"


def checksum_table(view: str) -> str:
    """The quoted name of a view's per-entity checksum table."""
    return quote_identifier(f"featurestore_checksums__{view}")


@dataclass(frozen=True)
class ViewSource:
    """How a view reads its source: the pinned spec, keys and value columns."""

    spec: SourceSpec
    base_dir: Path
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    string_columns: tuple[str, ...]


def key_columns(count: int) -> list[str]:
    """The canonical key column names of an event query: __k0, __k1, ..."""
    return [f"__k{i}" for i in range(count)]


def new_data_keys(con: duckdb.DuckDBPyConnection, source: ViewSource, changes: ManifestChanges,
                  end_us: int | None) -> list[str]:
    """SELECTs of the keys of entities with events (before `end_us`, if given) in new
    files or new segments; empty when there are none."""
    keys = ", ".join(key_columns(len(source.keys)))
    selects = []
    if changes.new_files:
        spec = dataclasses.replace(source.spec, files=changes.new_files, segments=())
        query = plan_events(con, spec, source.base_dir, source.keys, (), (), None, end_us)
        selects.append(f"SELECT {keys} FROM ({query.parts[0][0]})")
    if changes.new_segments:
        spec = dataclasses.replace(source.spec, segments=changes.new_segments)
        query = plan_events(con, spec, source.base_dir, source.keys, (), (), None, end_us)
        selects.append(f"SELECT {keys} FROM ({query.parts[-1][0]})")
    return selects


def compute_checksums(con: duckdb.DuckDBPyConnection, source: ViewSource,
                      previous_end_us: int | None, end_us: int) -> None:
    """Per-entity row counts and hash sums of the source itself (no segments) into a
    temporary table: before the previous end (to compare) and before `end_us` (to keep)."""
    spec = dataclasses.replace(source.spec, segments=())
    query = plan_events(con, spec, source.base_dir, source.keys, source.columns,
                        source.string_columns, None, end_us)
    keys = key_columns(len(source.keys))
    values = [TS_COLUMN] + [f"__n{i}" for i in range(len(query.numeric_columns))]
    values += [f"__s{i}" for i in range(len(query.string_columns))]
    row_hash = f"CAST(hash({', '.join(values)}) AS HUGEINT)"
    before = f"{TS_COLUMN} < {int(previous_end_us)}" if previous_end_us is not None else "false"
    with located_errors(query.source, query.location):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_NOW} AS SELECT {', '.join(keys)}, "
            f"count(*) FILTER (WHERE {before}) AS rows_before, "
            f"sum({row_hash}) FILTER (WHERE {before}) AS sum_before, "
            f"count(*) AS rows_now, sum({row_hash}) AS sum_now "
            f"FROM ({query.parts[0][0]}) GROUP BY ALL").fetchall()


def checksum_changes(con: duckdb.DuckDBPyConnection, view: str, source: str, policy: str,
                     key_count: int) -> str:
    """A SELECT of the keys whose checksum moved since the stored one (see module doc).

    Raises:
        SourceError: `changes: append` is declared but rows went away.
    """
    keys = key_columns(key_count)
    joined = (f"{_NOW} n FULL OUTER JOIN {checksum_table(view)} s "
              f"USING ({', '.join(keys)})")
    if policy == "append":
        shrunk = con.execute(f"SELECT count(*) FROM {joined} WHERE coalesce(n.rows_before, 0) "
                             "< coalesce(s.rows, 0)").fetchall()[0][0]
        if shrunk:
            raise SourceError(
                f"source '{source}' is declared `changes: append`, but rows of {shrunk:,} "
                "entities went away since the last run: declare `changes: rewrite`, or run "
                "`featurestore materialize --full`")
        differs = "coalesce(n.rows_before, 0) <> coalesce(s.rows, 0)"
    else:
        differs = ("coalesce(n.rows_before, 0) <> coalesce(s.rows, 0) "
                   "OR n.sum_before IS DISTINCT FROM s.checksum")
    return f"SELECT {', '.join(keys)} FROM {joined} WHERE {differs}"


def keep_checksums(con: duckdb.DuckDBPyConnection, view: str) -> None:
    """Store the checksums before this run's end, for the next run to compare with."""
    con.execute(f"CREATE OR REPLACE TABLE {checksum_table(view)} AS SELECT * EXCLUDE "
                f"(rows_before, sum_before, rows_now, sum_now), rows_now AS rows, "
                f"sum_now AS checksum FROM {_NOW}").fetchall()


def drop_checksums(con: duckdb.DuckDBPyConnection, view: str) -> None:
    """Forget a view's checksums (its source is no table or query any more)."""
    con.execute(f"DROP TABLE IF EXISTS {checksum_table(view)}")


def write_keys(con: duckdb.DuckDBPyConnection, selects: Sequence[str], key_count: int,
               path: Path) -> pa.Table:
    """Write the distinct keys of `selects` to a Parquet file; return them."""
    keys = ", ".join(key_columns(key_count))
    union = " UNION ".join(f"SELECT {keys} FROM ({select})" for select in selects)
    con.execute(f"COPY (SELECT DISTINCT {keys} FROM ({union})) TO "
                f"{quote_literal(str(path))} (FORMAT parquet)").fetchall()
    return fetch_table(con, f"SELECT * FROM read_parquet({quote_literal(str(path))})")
