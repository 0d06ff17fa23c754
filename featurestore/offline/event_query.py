"""Planning a partitioned read of a source's events: the SQL each partition runs.

A partition's query selects, from the source and from its pushed segments, the entity
keys in their canonical types, the event time in microseconds, and each value column as
DOUBLE (or VARCHAR, for string columns encoded later), keeps the rows whose key hash
falls in the partition, and sorts them. Sources that are costly to read again (CSV,
SQL queries) can first be *staged*: one pass writes the projected rows to one Parquet
folder per partition, and each partition then reads only its own folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from featurestore.errors import SourceError
from featurestore.offline.keys import CANONICAL_KEY_TYPES, partition_expression
from featurestore.offline.schema import (
    check_columns,
    column_type,
    inspect_source,
    is_integer_type,
    is_timezone_aware,
)
from featurestore.offline.sources import (
    PARQUET_SUFFIXES,
    SourceSpec,
    base_relation,
    epoch_integer_micros_sql,
    floor_div_sql,
    kept_rows,
    located_errors,
    quote_identifier,
    quote_literal,
    reads_copy,
    segments_relation,
)
from featurestore.times import EPOCH_UNITS
from transforms.spec import ColumnType

TS_COLUMN = "__ts"
_PARTITION_COLUMN = "__partition"
PARTITION_COLUMN = _PARTITION_COLUMN
"""The column a staged copy is partitioned by (folders `__partition=<p>/`)."""


@dataclass(frozen=True)
class EntityFilter:
    """Keep only the events of some entities, or all but those.

    Attributes:
        keys_file: a Parquet file with one column per entity key, `k0`, `k1`, ..., in
            the canonical key types (BIGINT or VARCHAR), one row per entity.
        keep: True keeps only those entities' events; False leaves them out.
    """

    keys_file: str
    keep: bool

    def condition(self, hashed: Sequence[str]) -> str:
        """SQL condition on a part's canonical key expressions."""
        operator = "IN" if self.keep else "NOT IN"
        keys = quote_literal(self.keys_file)
        return f"({', '.join(hashed)}) {operator} (SELECT * FROM read_parquet({keys}))"


@dataclass(frozen=True)
class EventQuery:
    """A planned read of one source's events; plain data, so it can go to a worker.

    Attributes:
        source: the source's name, for messages.
        location: where the source is, for messages.
        key_types: key column → its kind (INT or STRING).
        numeric_columns: value columns fetched as float64.
        string_columns: value columns fetched as strings and encoded.
        parts: per part (the source, then its segments): the SELECT text ending in a
            WHERE clause, and the canonical key expressions to hash.
        staged_dir: the folder `stage_partitions` wrote, when the query was staged.
        staged_partitions: the partition count the staged folder was written for.
    """

    source: str
    location: str
    key_types: tuple[tuple[str, ColumnType], ...]
    numeric_columns: tuple[str, ...]
    string_columns: tuple[str, ...]
    parts: tuple[tuple[str, tuple[str, ...]], ...]
    staged_dir: str | None = None
    staged_partitions: int = 0

    def unsorted_sql(self) -> str:
        """Every row of every partition, unsorted (what staging writes)."""
        return " UNION ALL ".join(select for select, _ in self.parts)

    def sql(self, partition: int, partitions: int) -> str:
        """The query that returns one partition's rows, sorted."""
        order = [f"__k{i}" for i in range(len(self.key_types))] + [TS_COLUMN]
        order += [f"__n{i} NULLS LAST" for i in range(len(self.numeric_columns))]
        rows = self._rows_sql(partition, partitions)
        return f"SELECT * FROM ({rows}) ORDER BY {', '.join(order)}"

    def _rows_sql(self, partition: int, partitions: int) -> str:
        if self.staged_dir is not None:
            if partitions != self.staged_partitions:
                raise ValueError(
                    f"staged for {self.staged_partitions} partitions, not {partitions}"
                )
            folder = Path(self.staged_dir) / f"{_PARTITION_COLUMN}={int(partition)}"
            if any(folder.glob("*.parquet")):
                return f"SELECT * FROM read_parquet({quote_literal(str(folder / '*.parquet'))})"
            # No event hashed to this partition: the same columns, no rows.
            return f"SELECT * FROM ({self.unsorted_sql()}) WHERE false"
        selects = []
        for select, hashed in self.parts:
            if partitions > 1:
                select += f" AND {partition_expression(hashed, partitions)} = {int(partition)}"
            selects.append(select)
        return " UNION ALL ".join(selects)


def micros_sql(column: str, duckdb_type: str, timestamp_unit: str | None = None) -> str:
    """SQL for a time column as BIGINT microseconds since the epoch, UTC.

    Nanosecond timestamps are floored (DuckDB's epoch_us rounds them), matching the
    truncation spines get, so an event never moves later than it happened. An integer
    column with a `timestamp_unit` holds epoch integers in that unit (nanoseconds are
    floored the same way).
    """
    quoted = quote_identifier(column)
    kind = duckdb_type.upper()
    if timestamp_unit is not None and is_integer_type(kind):
        return epoch_integer_micros_sql(quoted, timestamp_unit)
    if kind == "TIMESTAMP_NS":
        return floor_div_sql(f"epoch_ns({quoted})", 1000)
    if kind == "DATE":
        return f"epoch_us(CAST({quoted} AS TIMESTAMP))"
    return f"epoch_us({quoted})"


def _value_sql(column: str | None, duckdb_type: str | None, as_string: bool,
               timestamp_unit: str | None = None) -> str:
    """A value column as the kernels need it: DOUBLE, or VARCHAR for strings.

    `timestamp_unit` is given for the source's timestamp column only.
    """
    if column is None or duckdb_type is None:
        return "CAST(NULL AS VARCHAR)" if as_string else "CAST(NULL AS DOUBLE)"
    quoted = quote_identifier(column)
    if as_string:
        return f"CAST({quoted} AS VARCHAR)"
    epoch = timestamp_unit is not None and is_integer_type(duckdb_type)
    if epoch or column_type(duckdb_type) is ColumnType.TIMESTAMP:
        return f"CAST({micros_sql(column, duckdb_type, timestamp_unit)} AS DOUBLE)"
    return f"CAST({quoted} AS DOUBLE)"


def _time_conditions(
    column: str, duckdb_type: str, start_us: int | None, end_us: int | None,
    timestamp_unit: str | None = None,
) -> list[str]:  # fmt: skip
    """Exact bounds on the time in µs, plus bounds on the raw column 1 µs wider.

    The raw-column bounds let DuckDB skip Parquet row groups by their statistics; the
    exact bounds decide, in the microseconds the kernels see.
    """
    quoted = quote_identifier(column)
    aware = is_timezone_aware(duckdb_type)
    micros = micros_sql(column, duckdb_type, timestamp_unit)
    epoch = timestamp_unit is not None and is_integer_type(duckdb_type)
    multiplier, divisor = EPOCH_UNITS[timestamp_unit] if epoch and timestamp_unit else (1, 1)

    def moment(micros: int) -> str:
        if epoch:
            # The raw integer at or before `micros` (floored, so the bound only widens).
            return str((int(micros) * divisor) // multiplier)
        naive = f"make_timestamp({int(micros)}::BIGINT)"
        return f"timezone('UTC', {naive})" if aware else naive

    conditions = []
    if start_us is not None:
        conditions += [f"{quoted} >= {moment(start_us - 1)}", f"{micros} >= {start_us}"]
    if end_us is not None:
        # For epoch integers, `moment` floors: one raw unit more keeps the bound wider.
        upper = f"{moment(end_us + 1)} + 1" if epoch else moment(end_us + 1)
        conditions += [f"{quoted} < {upper}", f"{micros} < {end_us}"]
    return conditions


def _part_sql(
    relation: str,
    types: Mapping[str, str],
    timestamp: str,
    key_types: Mapping[str, ColumnType],
    values: tuple[Sequence[str], Sequence[str]],
    window: tuple[int | None, int | None],
    entities: EntityFilter | None = None,
    timestamp_unit: str | None = None,
) -> tuple[str, tuple[str, ...]]:
    numeric, strings = values
    hashed = tuple(
        f"CAST({quote_identifier(key)} AS {CANONICAL_KEY_TYPES[kind][0]})"
        for key, kind in key_types.items()
    )
    select = [f"{expression} AS __k{i}" for i, expression in enumerate(hashed)]
    # Segments always hold the timestamp as a naive TIMESTAMP (see push_validation).
    timestamp_type = types.get(timestamp, "TIMESTAMP")
    select.append(f"{micros_sql(timestamp, timestamp_type, timestamp_unit)} AS {TS_COLUMN}")
    units = {timestamp: timestamp_unit}
    select += [
        f"{_value_sql(name if name in types else None, types.get(name), False, units.get(name))}"
        f" AS __n{i}"
        for i, name in enumerate(numeric)
    ]
    select += [
        f"{_value_sql(name if name in types else None, types.get(name), True)} AS __s{i}"
        for i, name in enumerate(strings)
    ]
    conditions = [f"{quote_identifier(name)} IS NOT NULL" for name in (*key_types, timestamp)]
    conditions += _time_conditions(timestamp, timestamp_type, *window, timestamp_unit)
    if entities is not None:
        conditions.append(entities.condition(hashed))
    text = f"SELECT {', '.join(select)} FROM {relation} WHERE {' AND '.join(conditions)}"
    return text, hashed


def _value_roles(
    source: SourceSpec,
    schema: Mapping[str, ColumnType],
    columns: Sequence[str],
    string_columns: Sequence[str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split value columns into numeric and string ones, checking they match the source."""
    for name in string_columns:
        if name not in columns:
            raise ValueError(f"string column '{name}' is not among the columns to read")
    for name in columns:
        is_string = schema[name] is ColumnType.STRING
        if is_string != (name in string_columns):
            expected = "a string" if name in string_columns else "a number or timestamp"
            raise SourceError(
                f"source '{source.name}': column '{name}' is {schema[name]} but the "
                f"compiled definitions expect {expected}; run apply again"
            )
    numeric = tuple(name for name in columns if name not in string_columns)
    return numeric, tuple(string_columns)


def plan_events(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    base_dir: Path | str,
    keys: Sequence[str],
    columns: Sequence[str],
    string_columns: Sequence[str],
    start_us: int | None = None,
    end_us: int | None = None,
    entities: EntityFilter | None = None,
) -> EventQuery:
    """Check a source against what the kernels read, and plan the partition queries.

    The pushed segments present now are the ones every partition will read.

    Args:
        con: a connection to the offline database.
        spec: the source.
        base_dir: folder that relative paths are resolved against.
        keys: the entity key columns (integer or string typed).
        columns: the value columns the kernels read.
        string_columns: the subset of `columns` typed string.
        start_us: keep events with ts >= start_us (None: no lower bound).
        end_us: keep events with ts < end_us (None: no upper bound).
        entities: keep (or leave out) the events of some entities only.

    Raises:
        SourceError: the source cannot be read, lacks a column, or a key column is not
            an integer or string.
    """
    described = inspect_source(con, spec, base_dir)
    schema = described.schema
    needed = {name: "the entity keys" for name in keys}
    needed.update({name: "the feature definitions" for name in columns if name not in needed})
    check_columns(schema, needed, spec.name)
    key_types = {name: schema[name] for name in keys}
    for name, kind in key_types.items():
        if kind not in CANONICAL_KEY_TYPES:
            raise SourceError(
                f"source '{spec.name}': key column '{name}' is {kind}; keys must be "
                "integers or strings"
            )
    values = _value_roles(spec, schema, columns, string_columns)
    window = (start_us, end_us)
    parts = [
        _part_sql(
            kept_rows(spec, base_relation(spec, base_dir)), described.duckdb_types,
            spec.timestamp,
            key_types, values, window, entities, spec.timestamp_unit,
        )
    ]  # fmt: skip
    if described.segments:
        parts.append(
            _part_sql(
                kept_rows(spec, segments_relation(list(described.segments))),
                described.segment_types,
                spec.timestamp, key_types, values, window, entities, spec.timestamp_unit,
            )
        )  # fmt: skip
    return EventQuery(spec.name, spec.location, tuple(key_types.items()), *values, tuple(parts))


def is_costly_to_rescan(spec: SourceSpec, base_dir: Path | str) -> bool:
    """Whether reading the source once per partition costs much more than once.

    Parquet files (a CSV source's Parquet copy among them) and DuckDB tables are
    columnar: a partition's scan reads only the columns it needs and is cheap. CSV must
    be parsed again, a query computed again.
    """
    if spec.path:
        return not (spec.path.lower().endswith(PARQUET_SUFFIXES) or reads_copy(spec, base_dir))
    return bool(spec.query)


def stage_partitions(
    con: duckdb.DuckDBPyConnection, query: EventQuery, directory: Path | str, partitions: int
) -> EventQuery:
    """Read the source once, writing each partition's rows to its own Parquet folder.

    DuckDB streams the rows to disk (nothing is held in memory whole). The returned
    query reads `directory/__partition=<p>/` instead of the source; it is valid while
    the directory exists, and only for the same partition count.

    Args:
        con: a connection that can read the source.
        query: from `plan_events`.
        directory: an empty or absent folder to write into (the caller removes it).
        partitions: the partition count.
    """
    hashed = partition_expression(
        [f"__k{i}" for i in range(len(query.key_types))], partitions
    )
    target = quote_literal(str(directory))
    with located_errors(query.source, query.location):
        con.execute(
            f"COPY (SELECT *, {hashed} AS {_PARTITION_COLUMN} FROM ({query.unsorted_sql()})) "
            f"TO {target} (FORMAT parquet, PARTITION_BY ({_PARTITION_COLUMN}), "
            "OVERWRITE_OR_IGNORE true)"
        ).fetchall()
    return dataclasses.replace(query, staged_dir=str(directory), staged_partitions=partitions)

