"""Reading a source's columns without stopping at the first problem.

`schema.inspect_source` raises on the first thing wrong, which suits the code that then
reads events. `probe_source` is for checking definitions: it returns what it found,
the source's columns or the reason they could not be read, with every fault tied to the
source key it is about (`path`, `table`, `query` or `timestamp`) so that the caller can
point at the registry line that names it. Messages do not name the source; the caller
says where it is.
"""

from __future__ import annotations

import difflib
import glob
from dataclasses import dataclass
from pathlib import Path, PurePath

import duckdb

from featurestore.offline.schema import describe_relation, timestamp_problem
from featurestore.offline.sources import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    SourceSpec,
    base_relation,
    file_reader,
    is_glob,
    resolve_path,
)
from featurestore.registry.suggestions import did_you_mean

_TABLES = "SELECT table_schema, table_name FROM information_schema.tables"


@dataclass(frozen=True)
class OfflineFile:
    """The offline DuckDB file, as table and query sources see it.

    Attributes:
        label: how messages name the file (as the user would recognise it).
        exists: False until the first apply creates it; no table exists before that.
    """

    label: str
    exists: bool


@dataclass(frozen=True)
class SourceFault:
    """One reason a source cannot be used as defined.

    Attributes:
        key: the source key the fault is about: "path", "table", "query", "timestamp"
            or "timestamp_unit".
        message: what is wrong, with a suggestion when a near miss is known.
    """

    key: str
    message: str


@dataclass(frozen=True)
class SourceProbe:
    """What reading a source found.

    Attributes:
        duckdb_types: column → DuckDB type of the source itself; None when it could not
            be read at all.
        faults: everything wrong with it (empty when it is usable as defined).
    """

    duckdb_types: dict[str, str] | None
    faults: tuple[SourceFault, ...]


def probe_source(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, base_dir: Path | str, offline: OfflineFile
) -> SourceProbe:
    """Read a source's columns and check its timestamp column, collecting every fault.

    Args:
        con: a connection to the offline database (or an in-memory one when the offline
            file does not exist yet).
        spec: the source.
        base_dir: folder that relative paths are resolved against.
        offline: the offline file, for table sources and for messages.

    Returns:
        The columns, or None with the reason the source cannot be read; a missing or
        mistyped timestamp column is a fault next to the columns.
    """
    fault = _location_fault(spec, base_dir, offline)
    if fault is not None:
        return SourceProbe(None, (fault,))
    try:
        types = describe_relation(con, base_relation(spec, base_dir))
    except duckdb.Error as error:
        return SourceProbe(None, (_read_fault(con, spec, offline, error),))
    problem = timestamp_problem(spec.timestamp, types, spec.timestamp_unit)
    # With a unit, a column of the wrong kind is the unit's mistake as much as the data's.
    key = "timestamp_unit" if spec.timestamp_unit and spec.timestamp in types else "timestamp"
    faults = () if problem is None else (SourceFault(key, problem),)
    return SourceProbe(types, faults)


def _location_fault(
    spec: SourceSpec, base_dir: Path | str, offline: OfflineFile
) -> SourceFault | None:
    """What is wrong with where the source is, found without asking DuckDB."""
    if spec.table and not offline.exists:
        return SourceFault(
            "table",
            f"no table '{spec.table}': the offline store {offline.label} does not exist yet, "
            "so it holds no tables (create the table in it, or read a file with 'path:')",
        )
    if not spec.path:
        return None
    if file_reader(spec.path) is None:
        return SourceFault(
            "path",
            f"cannot tell the format of '{spec.path}': expected a file name ending in "
            f"{', '.join(PARQUET_SUFFIXES + CSV_SUFFIXES)}",
        )
    path = resolve_path(spec.path, base_dir)
    if "://" in path:
        return None  # a remote file is only known to exist once DuckDB reads it
    if is_glob(path):
        if glob.glob(path, recursive=True):
            return None
        return SourceFault("path", f"no file matches '{spec.path}'")
    if Path(path).exists():
        return None
    return SourceFault("path", f"file not found: {spec.path}{_near_file(spec.path, Path(path))}")


def _near_file(written: str, path: Path) -> str:
    """A did-you-mean suffix naming a file beside `path` with a close name, or ""."""
    if not path.parent.is_dir():
        return f" (there is no folder {PurePath(written).parent})"
    names = [entry.name for entry in path.parent.iterdir() if entry.is_file()]
    # Stricter than for column names: a shared extension alone makes names look alike.
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.8)
    return f" (did you mean '{PurePath(written).with_name(close[0])}'?)" if close else ""


def _read_fault(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, offline: OfflineFile, error: duckdb.Error
) -> SourceFault:
    """The fault behind a DuckDB error raised while describing the source."""
    # DuckDB messages carry a multi-line hint; the first line says what failed.
    detail = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    if spec.path:
        return SourceFault("path", f"cannot read '{spec.path}': {detail}")
    if spec.table:
        tables = _table_names(con)
        if spec.table.lower() in (name.lower() for name in tables):
            return SourceFault("table", f"cannot read table '{spec.table}': {detail}")
        hint = did_you_mean(spec.table, tables)
        return SourceFault(
            "table", f"no table '{spec.table}' in the offline store {offline.label}{hint}"
        )
    note = ""
    if not offline.exists and isinstance(error, duckdb.CatalogException):
        note = f" (the offline store {offline.label} does not exist yet, so it holds no tables)"
    return SourceFault("query", f"query cannot run: {detail}{note}")


def _table_names(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Tables and views a table source could name: `name`, or `schema.name` outside main."""
    rows = con.sql(_TABLES).fetchall()
    return sorted(name if schema == "main" else f"{schema}.{name}" for schema, name in rows)
