"""Expectations on demand (`featurestore validate`) and the quarantine's contents.

Nothing here writes: validate reads every current row of each source (pushed rows
included; no end time) and the latest feature values the last materialization wrote,
and compares row counts with the last recorded one. The quarantine is read as
materializations recorded it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import duckdb

from featurestore.errors import InputError
from featurestore.registry.suggestions import did_you_mean
from featurestore.times import now_micros
from featurestore.validation import records
from featurestore.validation.checks import check_features, checked_sources
from featurestore.validation.source_verdicts import source_verdicts
from featurestore.validation.verdicts import ValidationReport

if TYPE_CHECKING:
    from featurestore.context import StoreContext

_Result = TypeVar("_Result")


def validate(store: StoreContext, source: str | None = None) -> ValidationReport:
    """Check the expectations now (of one source, or all, and the features).

    Args:
        store: the feature store.
        source: only this source's expectations (its features are not checked then).

    Raises:
        InputError: `source` is not a source of the registry.
        SourceError: a source cannot be read.
    """
    registry = store.registry
    if source is not None:
        _check_source(store, source)
    now_us = now_micros()

    def work(con: duckdb.DuckDBPyConnection) -> ValidationReport:
        report = ValidationReport()
        for name in checked_sources(registry, source):
            report.verdicts += source_verdicts(con, store, name, None, now_us)[0]
        if source is None:
            report.verdicts += check_features(con, registry)
        return report

    return _reading(store, work)


def quarantine_groups(store: StoreContext,
                      source: str | None = None) -> list[records.QuarantineGroup]:
    """Per source, column and rule: quarantined rows and the newest run that added some.

    Raises:
        InputError: `source` is no source of the registry and has nothing quarantined.
    """
    groups = _reading(store, lambda con: records.quarantine_groups(con, source))
    if source is not None and not groups:
        _check_source(store, source)
    return groups


def quarantined_rows(store: StoreContext, source: str, rule: str | None = None,
                     column: str | None = None,
                     limit: int | None = None) -> list[records.QuarantinedRow]:
    """A source's quarantined rows with their values (optionally of one rule or column)."""
    if limit is not None and limit < 0:
        raise InputError(f"limit must be at least 0, got {limit}")
    rows = _reading(store, lambda con: records.quarantined_rows(con, source, rule, column,
                                                                limit))
    if not rows:
        _check_source(store, source)
    return rows


def _check_source(store: StoreContext, source: str) -> None:
    """A source named but not in the registry is an error (a source since removed keeps
    its quarantined rows listed)."""
    if source not in store.registry.sources:
        raise InputError(f"unknown source '{source}'"
                         f"{did_you_mean(source, store.registry.sources)}")


def _reading(store: StoreContext,
             work: Callable[[duckdb.DuckDBPyConnection], _Result]) -> _Result:
    """Run `work` on a read-only connection to the offline file; while there is no file
    yet, on an empty in-memory database (file and query sources still read)."""
    if store.offline_path.exists():
        return store.offline_database().run(work, read_only=True)
    with duckdb.connect() as con:
        con.execute("SET file_search_path = ?", [str(store.base_dir)])
        return work(con)
