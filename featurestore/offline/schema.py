"""Column types of a source, as DuckDB reports them and as the kernels see them."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb

from featurestore.errors import SourceError
from featurestore.offline.sources import (
    SourceSpec,
    base_relation,
    pushed_segments,
    segments_relation,
    source_errors,
)
from transforms.spec import ColumnType

_INTEGER_TYPES = frozenset(
    {
        "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
        "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT",
    }
)  # fmt: skip
_FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE", "REAL"})
_TIMESTAMP_TYPES = frozenset(
    {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE"}
)
_STRING_TYPES = frozenset({"VARCHAR", "UUID"})


def column_type(duckdb_type: str) -> ColumnType | None:
    """Map a DuckDB type name to the kernels' ColumnType; None if features cannot use it.

    DATE counts as a timestamp (midnight UTC); DECIMAL as float; ENUM and UUID as
    strings. Nested types, BLOB, TIME and INTERVAL have no kernel representation.
    """
    name = duckdb_type.upper()
    if name in _INTEGER_TYPES:
        return ColumnType.INT
    if name in _FLOAT_TYPES or name.startswith("DECIMAL"):
        return ColumnType.FLOAT
    if name == "BOOLEAN":
        return ColumnType.BOOL
    if name in _STRING_TYPES or name.startswith("ENUM("):
        return ColumnType.STRING
    if name in _TIMESTAMP_TYPES or name == "DATE":
        return ColumnType.TIMESTAMP
    return None


def is_integer_type(duckdb_type: str) -> bool:
    """True for DuckDB's integer types (the types epoch-integer timestamps may have)."""
    return duckdb_type.upper() in _INTEGER_TYPES


def kernel_schema(
    types: Mapping[str, str], timestamp: str | None = None, timestamp_unit: str | None = None
) -> dict[str, ColumnType]:
    """Column → ColumnType of every column of `types` the kernels can use.

    With a `timestamp_unit`, the timestamp column is a time (it is read as one, in
    microseconds), though DuckDB types it as an integer.
    """
    mapped = {name: column_type(kind) for name, kind in types.items()}
    if timestamp_unit is not None and timestamp in mapped and is_integer_type(types[timestamp]):
        mapped[timestamp] = ColumnType.TIMESTAMP
    return {name: kind for name, kind in mapped.items() if kind is not None}


def is_timezone_aware(duckdb_type: str) -> bool:
    """True for TIMESTAMPTZ, whose values are instants rather than UTC wall times."""
    return duckdb_type.upper() == "TIMESTAMP WITH TIME ZONE"


def describe_relation(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """Column name → DuckDB type name of a FROM-clause text, in column order."""
    rows = con.sql(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


@dataclass(frozen=True)
class SourceColumns:
    """What a source holds, as read from DuckDB.

    Attributes:
        duckdb_types: column → DuckDB type of the source itself.
        segment_types: column → DuckDB type of its pushed segments (empty without any).
        segments: the segment files this description covers, oldest first.
        timestamp: the source's timestamp column.
        timestamp_unit: the unit of its epoch integers, or None (see `SourceSpec`).
    """

    duckdb_types: dict[str, str]
    segment_types: dict[str, str]
    segments: tuple[Path, ...]
    timestamp: str | None = None
    timestamp_unit: str | None = None

    @property
    def schema(self) -> dict[str, ColumnType]:
        """Column → ColumnType of every column the kernels can use."""
        return kernel_schema(self.duckdb_types, self.timestamp, self.timestamp_unit)


def timestamp_problem(
    column: str, types: Mapping[str, str], timestamp_unit: str | None = None
) -> str | None:
    """What is wrong with a source's timestamp column, or None when it is usable.

    The column must exist and be TIMESTAMP (naive values are UTC) or TIMESTAMPTZ; with a
    `timestamp_unit`, an integer column instead.

    Args:
        column: the timestamp column the registry names.
        types: the source's columns → DuckDB type name.
        timestamp_unit: the source's `timestamp_unit`, or None.

    Returns:
        A message that does not name the source (callers say where it is).
    """
    if column not in types:
        return (
            f"no timestamp column '{column}'{_suggestion(column, types)}; "
            f"its columns: {', '.join(types) or '(none)'}"
        )
    kind = types[column]
    if timestamp_unit is not None:
        if is_integer_type(kind):
            return None
        return (
            f"timestamp column '{column}' has type {kind}, but timestamp_unit "
            f"'{timestamp_unit}' says it holds epoch integers; remove timestamp_unit, or "
            "use a `query:` source that gives integers"
        )
    if kind.upper() in _TIMESTAMP_TYPES:
        return None
    if is_integer_type(kind):
        return (
            f"timestamp column '{column}' has type {kind}; expected TIMESTAMP (naive = UTC) "
            "or TIMESTAMPTZ; if it holds epoch integers, say in which unit with "
            "`timestamp_unit: s` (or ms, us, ns) on the source"
        )
    hint = (
        " (DuckDB read it from CSV as text: use a `query:` source that casts it)"
        if kind.upper() == "VARCHAR"
        else ""
    )
    return (
        f"timestamp column '{column}' has type {kind}; "
        f"expected TIMESTAMP (naive = UTC) or TIMESTAMPTZ{hint}"
    )


def _check_timestamp(spec: SourceSpec, types: Mapping[str, str]) -> None:
    problem = timestamp_problem(spec.timestamp, types, spec.timestamp_unit)
    if problem is not None:
        raise SourceError(f"source '{spec.name}' ({spec.location}): {problem}")


def inspect_source(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, base_dir: Path | str
) -> SourceColumns:
    """Read a source's columns and check its timestamp column.

    Raises:
        SourceError: the source does not exist or cannot be read, or its timestamp
            column is missing or not a timestamp. The message names the source, where
            it is, and the column.
    """
    with source_errors(spec):
        types = describe_relation(con, base_relation(spec, base_dir))
        segments = tuple(pushed_segments(spec, base_dir))
        segment_types = describe_relation(con, segments_relation(list(segments))) if (
            segments
        ) else {}
    _check_timestamp(spec, types)
    return SourceColumns(types, segment_types, segments, spec.timestamp, spec.timestamp_unit)


def describe_source(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, base_dir: Path | str
) -> dict[str, ColumnType]:
    """The kernel-visible schema of a source: column → ColumnType.

    Columns of types the kernels cannot use (lists, structs, blobs, ...) are left out.
    The timestamp column must be TIMESTAMP (naive values are UTC) or TIMESTAMPTZ.

    Args:
        con: a connection to the offline database (table and query sources need it).
        spec: the source.
        base_dir: folder that relative paths are resolved against.

    Raises:
        SourceError: the source does not exist, cannot be read, lacks the timestamp
            column or has it mistyped.
    """
    return inspect_source(con, spec, base_dir).schema


def _suggestion(name: str, candidates: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_columns(
    schema: Mapping[str, ColumnType], needed: Mapping[str, str], source_name: str
) -> None:
    """Check that a source has every column the definitions use.

    Args:
        schema: the source's schema, from `describe_source`.
        needed: column → the `view:feature` (or other user) that needs it.
        source_name: the source, for the message.

    Raises:
        SourceError: one line per missing column, naming the column, who needs it, and
            a near-miss column name when there is one.
    """
    problems = [
        f"source '{source_name}' has no column '{column}' of a usable type "
        f"(int, float, bool, string or timestamp), needed by {user}"
        f"{_suggestion(column, schema)}"
        for column, user in needed.items()
        if column not in schema
    ]
    if problems:
        problems.append(f"columns of '{source_name}': {', '.join(schema) or '(none)'}")
        raise SourceError("\n".join(problems))
