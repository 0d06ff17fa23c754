"""Every verdict on one source, as materialize and validate both check it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from featurestore.validation import records
from featurestore.validation.checks import (
    check_columns,
    check_freshness,
    check_row_count,
    measure_source,
)
from featurestore.validation.verdicts import Verdict

if TYPE_CHECKING:
    from featurestore.context import StoreContext


def source_verdicts(con: duckdb.DuckDBPyConnection, store: StoreContext, name: str,
                    end_us: int | None, now_us: int) -> tuple[list[Verdict], int | None]:
    """The verdicts of a source's column rules (over its rows before `end_us`; None: all
    rows), freshness and row count change, and its row count when one was measured
    (for `records.record_count`; None when the source has neither of the last two)."""
    registry = store.registry
    verdicts = check_columns(con, registry, name, store.offline_path, store.base_dir, end_us)
    source = registry.sources[name]
    if source.freshness is None and source.row_count_change is None:
        return verdicts, None
    measure = measure_source(con, registry, name, store.offline_path, store.base_dir)
    verdicts += check_freshness(registry, name, measure, now_us)
    verdicts += check_row_count(registry, name, measure.rows,
                                records.previous_count(con, name))
    return verdicts, measure.rows
