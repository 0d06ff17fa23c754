"""Events streamed to the kernels, sorted by (entity, time), one hash partition at a time.

Each partition is one DuckDB query over the source (and its pushed segments) that keeps
the rows whose `hash(keys) % partitions` is the partition's number, sorts them, and
returns Arrow. Memory is bounded by the largest partition, not by the source: choose the
count with `suggest_partitions`. A partition is read independently of the others, so a
worker process can read its own partitions from a planned `EventQuery`
(`event_query.plan_events`). CSV sources without a Parquet copy (`source_cache.py`) and
query sources are staged first (one pass writes each partition's rows to disk), so they
are not parsed or computed once per partition.

Within a partition rows are ordered by the entity keys, the timestamp, the numeric value
columns (as float64, in `columns` order, NaN last), then the string columns by dictionary
code: a total, deterministic order, whatever order the source stores its rows in. Rows
whose key or timestamp is null cannot belong to an entity or a time and are skipped.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from featurestore.offline.dictionaries import encode_strings
from featurestore.offline.event_query import (
    TS_COLUMN,
    EntityFilter,
    EventQuery,
    is_costly_to_rescan,
    plan_events,
    stage_partitions,
)
from featurestore.offline.keys import CANONICAL_KEY_TYPES, dense_entities, entity_ids
from featurestore.offline.sources import SourceSpec, fetch_table, located_errors, quote_literal

# A partition this size sorts in DuckDB and sits in numpy in a few hundred MB.
ROWS_PER_PARTITION = 4_000_000


def suggest_partitions(row_count: int, rows_per_partition: int = ROWS_PER_PARTITION) -> int:
    """How many partitions keep each one near `rows_per_partition` events (at least 1)."""
    return max(1, math.ceil(max(row_count, 0) / max(rows_per_partition, 1)))


@dataclass(frozen=True, eq=False)
class EventPartition:
    """The events of one hash partition, ready for the kernels.

    Attributes:
        index: the partition number.
        entity: int64 entity ids, dense within the partition (0, 1, ...).
        key_table: the distinct keys; row i holds the keys of entity i (INT keys as
            int64, STRING keys as string).
        ts: int64 event times, microseconds since the epoch, UTC.
        columns: column → float64 values (NaN = null; strings as dictionary codes).

    Every array is writable (none is a read-only view of an Arrow buffer).
    """

    index: int
    entity: np.ndarray
    key_table: pa.Table
    ts: np.ndarray
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ts)

    def entities_of(self, table: pa.Table) -> np.ndarray:
        """Entity ids of the rows of `table` (e.g. spine rows); -1 for keys with no events."""
        return entity_ids(self.key_table, table)


def _break_string_ties(
    entity: np.ndarray, ts: np.ndarray, numeric: list[np.ndarray], codes: list[np.ndarray]
) -> np.ndarray | None:
    """Permutation ordering rows equal in (entity, ts, numeric values) by string codes.

    DuckDB sorts by everything but the strings (sorting by the codes would need them in
    DuckDB, and sorting by the text costs more); runs of such ties are rare and short,
    so only their rows are re-sorted here. None when there is nothing to reorder.
    """
    if not codes or len(ts) < 2:
        return None
    same = (entity[1:] == entity[:-1]) & (ts[1:] == ts[:-1])
    for values in numeric:
        same &= (values[1:] == values[:-1]) | (np.isnan(values[1:]) & np.isnan(values[:-1]))
    if not same.any():
        return None
    run = np.concatenate(([0], np.cumsum(~same)))
    in_tie = np.zeros(len(ts), dtype=bool)
    in_tie[1:] |= same
    in_tie[:-1] |= same
    rows = np.flatnonzero(in_tie)
    # lexsort's last key is the primary one: the run, then the string codes in order.
    order = np.lexsort([values[rows] for values in reversed(codes)] + [run[rows]])
    permutation = np.arange(len(ts))
    permutation[rows] = rows[order]
    return permutation


def _writable(values: np.ndarray) -> np.ndarray:
    """The array itself, or a copy when it is a read-only view of an Arrow buffer.

    Kernels are compiled for writable arrays; handing them Arrow's zero-copy views would
    need a second compiled signature (or fail), so every array given out is writable.
    """
    return values if values.flags.writeable else values.copy()


def _float_column(table: pa.Table, name: str) -> np.ndarray:
    values = table.column(name).fill_null(np.nan).to_numpy()
    return _writable(values.astype(np.float64, copy=False))


def read_partition(
    con: duckdb.DuckDBPyConnection,
    query: EventQuery,
    dictionaries: Mapping[str, list[str]],
    partition: int,
    partitions: int,
) -> EventPartition:
    """Read one partition of a planned query.

    Args:
        con: a connection that can read the source.
        query: from `plan_events`.
        dictionaries: column → dictionary for each string column; values missing from a
            dictionary (pushed after it was built) are appended to it in place.
        partition: which partition, in [0, partitions).
        partitions: the partition count.
    """
    with located_errors(query.source, query.location):
        table = fetch_table(con, query.sql(partition, partitions))
    keys = [table.column(f"__k{i}") for i in range(len(query.key_types))]
    entity, starts = dense_entities(keys)
    key_table = pa.table(
        {
            name: column.take(pa.array(starts)).cast(CANONICAL_KEY_TYPES[kind][1])
            for (name, kind), column in zip(query.key_types, keys, strict=True)
        },
        schema=pa.schema(
            [(name, CANONICAL_KEY_TYPES[kind][1]) for name, kind in query.key_types]
        ),
    )
    ts = _writable(table.column(TS_COLUMN).to_numpy().astype(np.int64, copy=False))
    numeric = [_float_column(table, f"__n{i}") for i in range(len(query.numeric_columns))]
    codes = [
        _writable(encode_strings(table.column(f"__s{i}"), dictionaries[name], extend=True))
        for i, name in enumerate(query.string_columns)
    ]
    permutation = _break_string_ties(entity, ts, numeric, codes)
    if permutation is not None:
        numeric = [values[permutation] for values in numeric]
        codes = [values[permutation] for values in codes]
    columns = dict(zip(query.numeric_columns, numeric, strict=True))
    columns.update(zip(query.string_columns, codes, strict=True))
    return EventPartition(partition, entity, key_table, ts, columns)


def read_partitions(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    base_dir: Path | str,
    keys: Sequence[str],
    columns: Sequence[str],
    string_columns: Sequence[str],
    dictionaries: Mapping[str, list[str]],
    start_us: int | None,
    end_us: int | None,
    partitions: int,
    *,
    staging_dir: Path | str | None = None,
    prefetch: bool = True,
    entities: EntityFilter | None = None,
) -> Iterator[EventPartition]:
    """Stream a source's events in hash partitions, each sorted by (entity, time).

    Every partition number in [0, partitions) is yielded once, in order, even when
    empty, so callers can pair partition p with the spine rows of partition p
    (`keys.partition_of_keys`, `EventPartition.entities_of`).

    Args:
        con: a connection to the offline database.
        spec: the source.
        base_dir: folder that relative paths are resolved against.
        keys: the entity key columns.
        columns: the value columns the kernels read (`CompiledView.input_columns`).
        string_columns: the subset of `columns` typed string.
        dictionaries: column → dictionary for each string column (see `read_partition`).
        start_us: keep events with ts >= start_us (None: no lower bound).
        end_us: keep events with ts < end_us (None: no upper bound).
        partitions: how many partitions (see `suggest_partitions`).
        staging_dir: where CSV and query sources are staged when partitions > 1
            (default: the system's temporary folder); removed when iteration ends.
        prefetch: read partition p + 1 in a thread while the caller works on
            partition p (holds two partitions in memory at a time).
        entities: keep (or leave out) the events of some entities only.

    Raises:
        SourceError: the source cannot be read or does not match the definitions.
    """
    missing = [name for name in string_columns if name not in dictionaries]
    if missing:
        raise ValueError(f"no dictionary given for string column '{missing[0]}'")
    # Planning runs now, so a bad source fails at the call rather than at the first next().
    query = plan_events(con, spec, base_dir, keys, columns, string_columns, start_us, end_us,
                        entities)
    stage = partitions > 1 and is_costly_to_rescan(spec, base_dir)
    return _stream(con, query, dictionaries, max(partitions, 1), stage, staging_dir, prefetch)


def _stream(
    con: duckdb.DuckDBPyConnection,
    query: EventQuery,
    dictionaries: Mapping[str, list[str]],
    partitions: int,
    stage: bool,
    staging_dir: Path | str | None,
    prefetch: bool,
) -> Iterator[EventPartition]:
    if not stage:
        yield from _read_in_turn(con, query, dictionaries, partitions, prefetch)
        return
    # The staged copy lives as long as the iteration: closing the generator removes it.
    with tempfile.TemporaryDirectory(prefix="featurestore-events-", dir=staging_dir) as folder:
        staged = stage_partitions(con, query, Path(folder) / "staged", partitions)
        yield from _read_in_turn(con, staged, dictionaries, partitions, prefetch)


# Connection-local settings a source's SQL can depend on (relative paths in queries,
# unqualified table names); a cursor starts from the defaults, so they are copied.
_SESSION_SETTINGS = ("file_search_path", "search_path", "schema", "TimeZone")


def _cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A second connection to the same database, with `con`'s session settings."""
    names = ", ".join(quote_literal(name) for name in _SESSION_SETTINGS)
    settings = con.sql(f"SELECT name, value FROM duckdb_settings() WHERE name IN ({names})")
    cursor = con.cursor()
    # DuckDB would draw its progress bar from this thread over the caller's output.
    cursor.execute("SET enable_progress_bar = false")
    for name, value in settings.fetchall():
        if value is not None:
            cursor.execute(f"SET {name} = {quote_literal(str(value))}")
    return cursor


def _read_in_turn(
    con: duckdb.DuckDBPyConnection,
    query: EventQuery,
    dictionaries: Mapping[str, list[str]],
    partitions: int,
    prefetch: bool,
) -> Iterator[EventPartition]:
    """Partitions 0, 1, ...; with `prefetch`, DuckDB reads the next one meanwhile.

    DuckDB releases the GIL while it scans and sorts, so reading partition p + 1 in a
    thread overlaps with whatever the caller does with partition p (the kernels). The
    thread uses its own cursor: a DuckDB connection must not run two queries at once.
    Dictionaries may grow from that thread; codes already handed out stay valid.
    """
    if not prefetch or partitions == 1:
        for partition in range(partitions):
            yield read_partition(con, query, dictionaries, partition, partitions)
        return
    with ThreadPoolExecutor(max_workers=1) as pool, contextlib.closing(_cursor(con)) as cursor:
        pending = pool.submit(read_partition, cursor, query, dictionaries, 0, partitions)
        for partition in range(partitions):
            current = pending.result()
            if partition + 1 < partitions:
                pending = pool.submit(
                    read_partition, cursor, query, dictionaries, partition + 1, partitions
                )
            yield current
