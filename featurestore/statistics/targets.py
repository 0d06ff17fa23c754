"""What `stats` reads: a source, a training-set file or a view's latest values, as
FROM-clause text for the statistics pass, with the columns it offers and an upper
bound of its rows that costs no scan (file metadata, table sizes, file bytes)."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import duckdb

from featurestore.compilation import source_spec
from featurestore.context import StoreContext
from featurestore.errors import InputError, NotMaterializedError
from featurestore.offline.sources import (
    CSV_SUFFIXES,
    PARQUET_SUFFIXES,
    SourceSpec,
    is_glob,
    pushed_segments,
    quote_identifier,
    quote_literal,
    resolve_path,
    source_errors,
    source_relation,
)
from featurestore.registry.state import table_exists
from featurestore.registry.suggestions import did_you_mean
from featurestore.statistics.profile import ProfiledColumn
from featurestore.table_files import table_format
from featurestore.times import format_micros

ARROW_INPUT = "featurestore_statistics_input"
"""The name an Arrow IPC training set is registered under on the connection."""


@dataclass(frozen=True)
class StatisticsInput:
    """One input of the statistics pass.

    Attributes:
        target: what it is, for people (`source 'transactions'`).
        relation: FROM-clause text reading it.
        columns: every column it has, with DuckDB types, in order.
        default: the columns profiled when none are asked for.
        row_bound: at least its number of rows, None when unknown without a scan.
    """

    target: str
    relation: str
    columns: tuple[ProfiledColumn, ...]
    default: tuple[str, ...]
    row_bound: int | None

    def select(self, names: list[str] | None) -> list[ProfiledColumn]:
        """The columns to profile: `names` in their order, else the default ones.

        Raises:
            InputError: a name that is no column of the input.
        """
        by_name = {column.name: column for column in self.columns}
        # Each column once, in the order first asked for.
        wanted = list(dict.fromkeys(names)) if names else list(self.default)
        for name in wanted:
            if name not in by_name:
                raise InputError(f"{self.target} has no column '{name}'"
                                 f"{did_you_mean(name, by_name)}")
        return [by_name[name] for name in wanted]


def describe(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[ProfiledColumn, ...]:
    """The columns of a FROM-clause text, with their DuckDB types (reads no rows)."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return tuple(ProfiledColumn(str(name), str(kind)) for name, kind, *_ in rows)


def source_input(con: duckdb.DuckDBPyConnection, store: StoreContext,
                 name: str) -> tuple[StatisticsInput, SourceSpec]:
    """A registry source, pushed events included (as materialization reads it).

    Raises:
        InputError: no source is named `name` (with a suggestion).
        SourceError: the source cannot be read.
    """
    sources = store.registry.sources
    if name not in sources:
        raise InputError(f"unknown source '{name}'{did_you_mean(name, sources)}; "
                         f"sources: {', '.join(sources) or 'none'}")
    spec = source_spec(store.registry, name, store.offline_path)
    with source_errors(spec):
        relation = source_relation(spec, store.base_dir)
        columns = describe(con, relation)
        bound = _source_bound(con, spec, store.base_dir, len(columns))
    return StatisticsInput(f"source '{name}'", relation, columns,
                           tuple(column.name for column in columns), bound), spec


def _source_bound(con: duckdb.DuckDBPyConnection, spec: SourceSpec, base_dir: Path,
                  width: int) -> int | None:
    segments = [str(path) for path in pushed_segments(spec, base_dir)]
    pushed = _parquet_rows(con, segments) if segments else 0
    if spec.table:
        own = _table_rows(con, spec.table)
    elif spec.path and "://" not in spec.path:
        path = resolve_path(spec.path, base_dir)
        files = sorted(glob.glob(path)) if is_glob(path) else [path]
        lowered = path.lower()
        if lowered.endswith(PARQUET_SUFFIXES):
            own = _parquet_rows(con, files)
        elif lowered.endswith(CSV_SUFFIXES) and not lowered.endswith((".gz", ".zst")):
            own = _text_rows(files, width)
        else:
            own = None
    else:
        # A query's rows are unknown until it runs (it may be any join).
        own = None
    return None if own is None else own + pushed


def training_set_input(con: duckdb.DuckDBPyConnection, path: Path) -> StatisticsInput:
    """A training-set file, read by its extension (see `featurestore.table_files`).

    Raises:
        InputError: the file is missing, has an unknown extension, or is not readable
            in its format.
    """
    kind = table_format(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    text = quote_literal(str(path.resolve()))
    try:
        if kind in ("Arrow IPC", "Feather"):
            relation, bound = _arrow_relation(con, path), None
        elif kind == "CSV":
            relation = f"read_csv_auto({text})"
        elif kind == "JSON lines":
            relation = f"read_json_auto({text}, format = 'newline_delimited')"
        else:
            relation = f"read_parquet({text})"
        columns = describe(con, relation)
        if kind == "Parquet":
            bound = _parquet_rows(con, [str(path.resolve())])
        elif kind in ("CSV", "JSON lines"):
            bound = _text_rows([str(path)], len(columns))
        else:
            bound = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
    except (duckdb.Error, OSError, ValueError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise InputError(f"{path} is not readable {kind}: {detail}") from error
    return StatisticsInput(f"training set {path}", relation, columns,
                           tuple(column.name for column in columns), bound)


def _arrow_relation(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """Register an Arrow IPC file as a dataset: DuckDB scans it in batches, projecting
    only the columns it needs (the file's record batches are memory-mapped)."""
    import pyarrow.dataset as ds

    con.register(ARROW_INPUT, ds.dataset(str(path), format="ipc"))
    return ARROW_INPUT


def check_view_name(store: StoreContext, name: str) -> None:
    """Refuse a name that is no feature view of the registry (with a suggestion).

    Raises:
        InputError: no feature view is named `name`.
    """
    views = store.registry.feature_views
    if name not in views:
        raise InputError(f"unknown feature view '{name}'{did_you_mean(name, views)}; "
                         f"views: {', '.join(views) or 'none'}")


def view_input(con: duckdb.DuckDBPyConnection, store: StoreContext,
               name: str) -> StatisticsInput:
    """The latest values of a view's last materialization (`features_<view>`).

    Raises:
        InputError: no feature view is named `name` (with a suggestion).
        NotMaterializedError: the view was never materialized.
    """
    from featurestore.offline.materialize import RUNS_TABLE

    check_view_name(store, name)
    views = store.registry.feature_views
    table = f"features_{name}"
    run = (con.execute(f"SELECT end_us FROM {RUNS_TABLE} WHERE view = ?", [name]).fetchone()
           if table_exists(con, RUNS_TABLE) else None)
    if run is None or not table_exists(con, table):
        raise NotMaterializedError(f"feature view '{name}' was never materialized: "
                                   "run `featurestore materialize` first")
    relation = quote_identifier(table)
    columns = describe(con, relation)
    keys = set(store.registry.entities[views[name].entity].keys) | {"as_of"}
    default = tuple(column.name for column in columns if column.name not in keys)
    return StatisticsInput(f"view '{name}' (materialized up to {format_micros(int(run[0]))})",
                           relation, columns, default, _table_rows(con, table))


def _parquet_rows(con: duckdb.DuckDBPyConnection, files: list[str]) -> int | None:
    """Rows of Parquet files from their footers (no data read)."""
    if not files:
        return 0
    listed = "[" + ", ".join(quote_literal(file) for file in files) + "]"
    try:
        found = con.execute(f"SELECT sum(num_rows) FROM parquet_file_metadata({listed})"
                            ).fetchone()
    except duckdb.Error:
        return None
    return int(found[0] or 0) if found else None


def _table_rows(con: duckdb.DuckDBPyConnection, table: str) -> int | None:
    """A DuckDB table's row count as the catalog keeps it (no scan)."""
    name = table.split(".")[-1]
    found = con.execute("SELECT estimated_size FROM duckdb_tables() WHERE table_name = ?",
                        [name]).fetchone()
    return int(found[0]) if found else None


def _text_rows(files: list[str], width: int) -> int:
    """An upper bound of the rows of CSV or JSON-lines files: every row takes at least
    one byte per column (a separator, or the newline), so bytes / columns."""
    return sum(Path(file).stat().st_size for file in files) // max(width, 1)
