"""Expectations checked by a materialization, inside its DuckDB transaction.

Source rules are checked first (rows before the run's end, pushed ones included), before
any state is folded, so a broken `fail` rule stops the run early; feature rules are
checked against the latest values the run wrote, before anything is committed or
published. A stopped run rolls back everything; only its verdicts are then recorded, in
a transaction of their own, so that a failed validation can be shown later.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import duckdb

from featurestore.times import now_micros
from featurestore.validation import records
from featurestore.validation.checks import check_features, checked_sources
from featurestore.validation.errors import ExpectationError
from featurestore.validation.source_verdicts import source_verdicts
from featurestore.validation.verdicts import Verdict

if TYPE_CHECKING:
    from featurestore.context import StoreContext


class RunChecks:
    """The expectations of one materialization run.

    Attributes:
        verdicts: every verdict so far, in registry order.
        quarantined: rows newly recorded in the quarantine table by this run.
    """

    def __init__(self, store: StoreContext, end_us: int) -> None:
        self._store = store
        self._end_us = end_us
        self._now_us = now_micros()
        self._run_at = dt.datetime.fromtimestamp(self._now_us / 1e6, dt.UTC)
        self._counts: dict[str, int] = {}
        self.verdicts: list[Verdict] = []
        self.quarantined = 0

    @property
    def active(self) -> bool:
        """Whether the registry has any expectation a run checks."""
        registry = self._store.registry
        return bool(checked_sources(registry)) or any(
            feature.expect is not None for view in registry.feature_views.values()
            for feature in view.features.values())

    def check_sources(self, con: duckdb.DuckDBPyConnection) -> None:
        """Check every source's rules, freshness and row count.

        Raises:
            ExpectationError: a rule with `on_fail: fail` is broken.
        """
        # A run retried (the offline file was locked) starts its checks again.
        self.verdicts, self._counts, self.quarantined = [], {}, 0
        for name in checked_sources(self._store.registry):
            verdicts, rows = source_verdicts(con, self._store, name, self._end_us,
                                             self._now_us)
            self.verdicts += verdicts
            if rows is not None:
                self._counts[name] = rows
        self._stop_on_failure()

    def check_features(self, con: duckdb.DuckDBPyConnection) -> None:
        """Check the feature rules against the latest values this run wrote.

        Raises:
            ExpectationError: a rule with `on_fail: fail` is broken.
        """
        self.verdicts += check_features(con, self._store.registry)
        self._stop_on_failure()

    def record(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write quarantined rows, verdicts and row counts (in the run's transaction)."""
        store, registry = self._store, self._store.registry
        records.create_tables(con)
        for name in checked_sources(registry):
            if any(e.on_fail == "quarantine" for e in registry.sources[name].expect.values()):
                self.quarantined += records.record_quarantine(
                    con, registry, name, store.offline_path, store.base_dir, self._end_us,
                    self._run_at)
        records.record_verdicts(con, self.verdicts, self._run_at)
        for name, rows in self._counts.items():
            records.record_count(con, name, rows, self._run_at)

    def record_failure(self, con: duckdb.DuckDBPyConnection, error: ExpectationError) -> None:
        """After the run rolled back: keep only its verdicts, in a transaction of their own."""
        records.create_tables(con)
        con.begin()
        records.record_verdicts(con, error.verdicts, self._run_at)
        con.commit()

    def _stop_on_failure(self) -> None:
        failed = [v for v in self.verdicts if v.broken and v.policy == "fail"]
        if failed:
            raise ExpectationError(failed, self.verdicts)

    def render(self) -> list[str]:
        """Lines for the materialize report: broken rules, and rows quarantined."""
        lines = [verdict.render() for verdict in self.verdicts if verdict.broken]
        if self.quarantined:
            rows = "row" if self.quarantined == 1 else "rows"
            lines.append(f"{self.quarantined:,} {rows} newly quarantined "
                         "(featurestore quarantine list)")
        return lines
