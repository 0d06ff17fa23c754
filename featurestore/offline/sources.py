"""Where a source's events come from, as DuckDB SQL text.

A source is a Parquet or CSV file or glob, a table in the offline DuckDB database, or a
SQL query. This module turns a `SourceSpec` into FROM-clause text, joins in the events
pushed for that source (see `segments.py`), and runs queries that return Arrow.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from featurestore.errors import SourceError
from featurestore.offline.query_paths import anchor_query_paths
from featurestore.offline.segments import list_segments
from featurestore.times import EPOCH_UNITS

if TYPE_CHECKING:
    from featurestore.validation.rules import RowFilter

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".csv.zst", ".tsv.zst")
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class SourceCopy:
    """A Parquet copy of a source's files, read instead of them (see `source_cache.py`).

    Attributes:
        parquet: the copy: the same columns, types and rows as `relation`.
        relation: the FROM-clause text the copy stands for; the copy is read only where
            `base_relation` would produce exactly this text, so a spec narrowed to other
            files (`dataclasses.replace(spec, files=...)`) reads those files again.
    """

    parquet: str
    relation: str


@dataclass(frozen=True)
class SourceSpec:
    """Where one source's events are read from.

    Exactly one of `path`, `table` and `query` is set.

    Attributes:
        name: the source's name in the registry (used in error messages).
        path: a Parquet or CSV file or glob; relative paths are resolved against the
            base directory given to each function (the registry's folder).
        table: a table (optionally `schema.table`) in the offline DuckDB database.
        query: a SQL SELECT whose result is the source.
        timestamp: the event-time column (TIMESTAMP, naive = UTC, or TIMESTAMPTZ).
        pushed_dir: the folder of this source's pushed-event segments
            (`segments.segment_dir(offline_dir, name)`); relative to the base directory
            when not absolute. None when the source takes no pushes.
        segments: the segment files to read, pinned (a materialization reads exactly
            the segments it records); None reads whatever `pushed_dir` holds.
        files: for a `path` source, the files to read instead of what the path
            matches (a non-empty tuple of absolute paths); None reads the path.
        cached: a Parquet copy of the files, checked fresh by whoever set it
            (`source_cache.SourceCache.use`); None reads the files themselves.
        timestamp_unit: `s`, `ms`, `us` or `ns` when the source's own timestamp column
            holds epoch integers in that unit; None when it holds timestamps. Pushed
            segments always hold timestamps.
        row_filter: rows kept out wherever the source is read (its quarantined rows,
            `featurestore.validation.rules`); None keeps every row.
    """

    name: str
    path: str | None
    table: str | None
    query: str | None
    timestamp: str
    pushed_dir: str | None = None
    segments: tuple[str, ...] | None = None
    files: tuple[str, ...] | None = None
    cached: SourceCopy | None = None
    timestamp_unit: str | None = None
    row_filter: RowFilter | None = None

    def __post_init__(self) -> None:
        given = [kind for kind in ("path", "table", "query") if getattr(self, kind)]
        if len(given) != 1:
            raise SourceError(
                f"source '{self.name}': give exactly one of path, table or query "
                f"(got {', '.join(given) or 'none'})"
            )

    @property
    def location(self) -> str:
        """Where the source is, for error messages: `path '...'`, `table '...'`, ..."""
        if self.path:
            return f"path '{self.path}'"
        if self.table:
            return f"table '{self.table}'"
        query = " ".join(str(self.query).split())
        return f"query '{query[:80]}{'...' if len(query) > 80 else ''}'"


def quote_identifier(name: str) -> str:
    """Quote a column or table name for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """Quote a string constant for DuckDB SQL."""
    return "'" + text.replace("'", "''") + "'"


def floor_div_sql(expression: str, divisor: int) -> str:
    """SQL for an integer expression divided by a positive divisor, floored.

    DuckDB's integer `//` truncates towards zero; times must floor, so that an instant
    before 1970 never moves later than it happened.
    """
    if divisor == 1:
        return expression
    return (f"({expression} // {divisor} - "
            f"CASE WHEN {expression} % {divisor} < 0 THEN 1 ELSE 0 END)")


def epoch_integer_micros_sql(quoted: str, unit: str) -> str:
    """SQL for an epoch-integer column in `unit` as BIGINT microseconds (see EPOCH_UNITS).

    A value beyond the BIGINT microsecond range is a DuckDB overflow error, not a wrap.
    """
    multiplier, divisor = EPOCH_UNITS[unit]
    integer = f"CAST({quoted} AS BIGINT)"
    if multiplier != 1:
        return f"({integer} * {multiplier})"
    return floor_div_sql(integer, divisor)


def resolve_path(path: str, base_dir: Path | str) -> str:
    """Resolve a source path against the base directory; URLs are left as they are."""
    if "://" in path:
        return path
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = Path(base_dir) / candidate
    return str(candidate)


def is_glob(path: str) -> bool:
    """True when a source path is a glob pattern rather than one file name."""
    return bool(_GLOB_CHARACTERS & set(path))


def file_reader(path: str) -> str | None:
    """DuckDB's reader for a file path by its extension: `read_parquet`,
    `read_csv_auto`, or None when the extension is neither."""
    lowered = path.lower()
    if lowered.endswith(PARQUET_SUFFIXES):
        return "read_parquet"
    if lowered.endswith(CSV_SUFFIXES):
        return "read_csv_auto"
    return None


def _file_reader(spec: SourceSpec, path: str) -> str:
    """`read_parquet(...)` or `read_csv_auto(...)`, chosen by the file extension."""
    reader = file_reader(path)
    if reader is None:
        raise SourceError(
            f"source '{spec.name}': cannot tell the format of {spec.location}; expected a "
            f"file name ending in one of {', '.join(PARQUET_SUFFIXES + CSV_SUFFIXES)}"
        )
    # A glob may match files whose schemas differ by a column: align them by name.
    options = ", union_by_name = true" if is_glob(path) else ""
    return f"{reader}({quote_literal(path)}{options})"


def base_relation(spec: SourceSpec, base_dir: Path | str) -> str:
    """FROM-clause text of the source itself, without pushed events, in its own types.

    A spec with a Parquet copy (`spec.cached`) of exactly these files reads the copy.

    Raises:
        SourceError: the path has an unknown extension, or names a file that is missing.
    """
    if spec.cached is not None and reads_copy(spec, base_dir):
        return f"read_parquet({quote_literal(spec.cached.parquet)})"
    return direct_relation(spec, base_dir)


def reads_copy(spec: SourceSpec, base_dir: Path | str) -> bool:
    """Whether `base_relation` reads the spec's Parquet copy rather than its files.

    Raises:
        SourceError: see `direct_relation`.
    """
    return spec.cached is not None and spec.cached.relation == direct_relation(spec, base_dir)


def direct_relation(spec: SourceSpec, base_dir: Path | str) -> str:
    """FROM-clause text reading the source's own files, table or query (no copy).

    Raises:
        SourceError: the path has an unknown extension, or names a file that is missing.
    """
    if spec.path and spec.files:
        # The files a glob matched are read by the reader the glob's extension picks.
        reader = file_reader(spec.path) or file_reader(spec.files[0])
        listed = ", ".join(quote_literal(file) for file in spec.files)
        return f"{reader}([{listed}], union_by_name = true)"
    if spec.path:
        path = resolve_path(spec.path, base_dir)
        if "://" not in path and not is_glob(path) and not Path(path).exists():
            raise SourceError(f"source '{spec.name}': file not found: {path}")
        return _file_reader(spec, path)
    if spec.table:
        return ".".join(quote_identifier(part) for part in spec.table.split("."))
    # A trailing semicolon is harmless on its own but breaks the query as a subquery.
    query = anchor_query_paths(str(spec.query).strip().rstrip(";"), base_dir)
    return f"({query})"


def kept_rows(spec: SourceSpec, relation: str) -> str:
    """`relation` (a part of the source) without the rows its row filter keeps out.

    Applied to each part (the source's own rows, its pushed segments) where it is read,
    so materialization, training sets and checks all see the same rows.
    """
    return relation if spec.row_filter is None else spec.row_filter.relation(relation)


def pushed_segments(spec: SourceSpec, base_dir: Path | str) -> list[Path]:
    """The complete pushed-event segments of the source, oldest first."""
    if spec.segments is not None:
        return [Path(path) for path in spec.segments]
    if not spec.pushed_dir:
        return []
    return list_segments(Path(resolve_path(spec.pushed_dir, base_dir)))


def segments_relation(segments: list[Path]) -> str:
    """FROM-clause text reading the given segment files (a non-empty list)."""
    files = ", ".join(quote_literal(str(path)) for path in segments)
    # Segments written before the source gained a column lack it: align by name.
    return f"read_parquet([{files}], union_by_name = true)"


def source_relation(spec: SourceSpec, base_dir: Path | str) -> str:
    """FROM-clause text for the source, including its pushed events.

    The timestamp column is normalised to a naive TIMESTAMP holding UTC, whatever the
    source's own type (TIMESTAMP, TIMESTAMPTZ, or epoch integers in `timestamp_unit`;
    pushed segments hold TIMESTAMP): comparisons with it then never depend
    on the connection's TimeZone setting. When pushed segments exist they are appended
    with UNION ALL BY NAME; the segment list is fixed when this text is built, so a
    query over it sees one consistent set of events even while pushes continue.

    Args:
        spec: the source.
        base_dir: folder that relative paths are resolved against.

    Returns:
        A parenthesised subquery usable as `SELECT ... FROM <text>`.
    """
    column = quote_identifier(spec.timestamp)
    normalise = f"* REPLACE (make_timestamp(epoch_us({column})) AS {column})"
    own = normalise
    if spec.timestamp_unit is not None:
        micros = epoch_integer_micros_sql(column, spec.timestamp_unit)
        own = f"* REPLACE (make_timestamp({micros}) AS {column})"
    parts = [f"SELECT {own} FROM {kept_rows(spec, base_relation(spec, base_dir))}"]
    segments = pushed_segments(spec, base_dir)
    if segments:
        parts.append(f"SELECT {normalise} FROM {kept_rows(spec, segments_relation(segments))}")
    return "(" + " UNION ALL BY NAME ".join(parts) + ")"


@contextlib.contextmanager
def source_errors(spec: SourceSpec) -> Iterator[None]:
    """Turn DuckDB errors raised while reading `spec` into a SourceError naming it."""
    with located_errors(spec.name, spec.location):
        yield


@contextlib.contextmanager
def located_errors(name: str, location: str) -> Iterator[None]:
    """Turn DuckDB errors into a SourceError naming the source and where it is."""
    try:
        yield
    except duckdb.Error as error:
        # DuckDB messages carry a multi-line hint; the first line says what failed.
        detail = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise SourceError(
            f"source '{name}' ({location}) cannot be read: {detail}"
        ) from error


def fetch_table(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None
) -> pa.Table:
    """Run a SELECT and return its whole result as an Arrow table."""
    relation = con.sql(sql, params=dict(params) if params else None)
    # DuckDB 2 renamed fetch_arrow_table to to_arrow_table; 1.x has only the former.
    to_table = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    return to_table()


def count_rows(con: duckdb.DuckDBPyConnection, spec: SourceSpec, base_dir: Path | str) -> int:
    """Number of events in the source, pushed events included.

    Raises:
        SourceError: the source cannot be read.
    """
    with source_errors(spec):
        relation = source_relation(spec, base_dir)
        result = con.sql(f"SELECT count(*) FROM {relation}").fetchall()
    return int(result[0][0])
