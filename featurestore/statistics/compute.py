"""`stats` end to end: pick the input, open the connection that can read it, run the
one statistics pass; and read a view's stored statistics history."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import duckdb

from featurestore.context import StoreContext
from featurestore.errors import InputError, NotMaterializedError
from featurestore.offline.sources import source_errors
from featurestore.statistics.history import ViewStatisticsRun, read_history
from featurestore.statistics.model import DatasetStatistics
from featurestore.statistics.profile import profile
from featurestore.statistics.targets import (
    check_view_name,
    source_input,
    training_set_input,
    view_input,
)

_Result = TypeVar("_Result")


def compute_statistics(store: StoreContext, source: str | None = None,
                       training_set: str | os.PathLike[str] | None = None,
                       view: str | None = None,
                       columns: Sequence[str] | None = None) -> DatasetStatistics:
    """Statistics of exactly one of a source, a training-set file or a view's latest
    materialized values (see `FeatureStore.stats`)."""
    given = [flag for flag, value in (("source", source), ("training_set", training_set),
                                      ("view", view)) if value is not None]
    if len(given) != 1:
        raise InputError("give exactly one of source, training_set or view "
                         f"(got {', '.join(given) or 'none'})")
    names = list(columns) if columns else None
    if view is not None:
        return _view_statistics(store, view, names)
    if training_set is not None:
        return _training_set_statistics(store, Path(training_set), names)
    return _source_statistics(store, str(source), names)


def _view_statistics(store: StoreContext, view: str,
                     names: list[str] | None) -> DatasetStatistics:
    check_view_name(store, view)

    def read(con: duckdb.DuckDBPyConnection) -> DatasetStatistics:
        found = view_input(con, store, view)
        return profile(con, found.relation, found.select(names), found.row_bound,
                       found.target)

    return _offline(store, read, f"feature view '{view}' was never materialized: "
                    "run `featurestore materialize` first")


def _training_set_statistics(store: StoreContext, path: Path,
                             names: list[str] | None) -> DatasetStatistics:
    with _memory_connection(store.base_dir) as con:
        found = training_set_input(con, path)
        selected = found.select(names)
        try:
            return profile(con, found.relation, selected, found.row_bound, found.target)
        except duckdb.Error as error:
            raise InputError(f"{path} is not readable: "
                             f"{str(error).strip().splitlines()[0]}") from error


def _source_statistics(store: StoreContext, source: str,
                       names: list[str] | None) -> DatasetStatistics:
    def read(con: duckdb.DuckDBPyConnection) -> DatasetStatistics:
        found, spec = source_input(con, store, source)
        with source_errors(spec):
            return profile(con, found.relation, found.select(names), found.row_bound,
                           found.target)

    # A table or query source reads the offline file; a project with none yet reads
    # only files, on a connection of its own (nothing is created).
    if store.offline_path.exists():
        return _offline(store, read, None)
    with _memory_connection(store.base_dir) as con:
        return read(con)


def view_statistics_history(store: StoreContext, view: str) -> list[ViewStatisticsRun]:
    """The statistics every materialization stored for `view`, oldest first.

    Raises:
        InputError: no feature view is named `view`.
        NotMaterializedError: the view was never materialized.
    """
    check_view_name(store, view)
    message = (f"feature view '{view}' was never materialized: run `featurestore "
               "materialize` first")
    runs = _offline(store, lambda con: read_history(con, view), message)
    if not runs:
        raise NotMaterializedError(message)
    return runs


def _offline(store: StoreContext, work: Callable[[duckdb.DuckDBPyConnection], _Result],
             missing: str | None) -> _Result:
    """Run `work` on the offline file, read-only (a file that does not exist yet means
    nothing was materialized: `missing` is the error then)."""
    if not store.offline_path.exists():
        raise NotMaterializedError(missing or f"no offline file {store.offline_path}")
    return store.offline_database().run(work, read_only=True)


@contextlib.contextmanager
def _memory_connection(base_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection whose relative paths start at `base_dir` and
    whose spill files go to the system's temporary folder (not the working folder)."""
    con = duckdb.connect()
    try:
        con.execute("SET file_search_path = ?", [str(base_dir)])
        spill = Path(tempfile.gettempdir()) / "featurestore-duckdb"
        con.execute("SET temp_directory = ?", [str(spill)])
        yield con
    finally:
        con.close()
