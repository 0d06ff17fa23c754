"""The check history: every `verify` and `replay` that completed (`featurestore_checks`).

Each row says when the check started, which kind it was, whether it passed, the one-line
summary people read, and the whole report as JSON. A check that raised records nothing.
This module alone names, writes and reads the table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args

import duckdb
import orjson

from featurestore.errors import FeatureStoreError, InputError
from featurestore.offline.history_rows import newest_rows
from featurestore.offline.replay_report import ReplayReport
from featurestore.serving.verify import VerifyReport
from featurestore.times import format_micros

if TYPE_CHECKING:
    from featurestore.context import StoreContext

CHECKS_TABLE = "featurestore_checks"
CheckKind = Literal["verify", "replay"]
KINDS: tuple[str, ...] = get_args(CheckKind)
MISMATCHES_KEPT = 20
"""Verify mismatches kept in a row's details (the count is always there)."""

_Report = TypeVar("_Report", VerifyReport, ReplayReport)
_log = logging.getLogger(__name__)
_CREATE_TABLE = (f"CREATE TABLE IF NOT EXISTS {CHECKS_TABLE} (run_at TIMESTAMPTZ NOT NULL, "
                 "kind VARCHAR NOT NULL, passed BOOLEAN NOT NULL, summary VARCHAR NOT NULL, "
                 "details VARCHAR NOT NULL)")


@dataclass(frozen=True)
class CheckRecord:
    """One recorded check.

    Attributes:
        run_at: when the check started (UTC).
        kind: "verify" (online against offline) or "replay" (the served-value log).
        passed: True when no value differed (and, for verify, no view was stale).
        summary: one line for people.
        details: the report as JSON-ready data.
    """

    run_at: datetime
    kind: str
    passed: bool
    summary: str
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the time as ISO-8601 text, UTC)."""
        return {"run_at": self.run_at.isoformat(), "kind": self.kind, "passed": self.passed,
                "summary": self.summary, "details": self.details}


def run_check(store: StoreContext, check: Callable[[], _Report]) -> _Report:
    """Run a verify or a replay (`check`), record its outcome and return its report.

    Raises:
        Whatever `check` raises (nothing is recorded then). A record that cannot be
        written (the offline file stays locked by another process) is logged as a
        warning: the report the caller asked for still comes back.
    """
    run_at = datetime.now(UTC)
    report = check()
    try:
        if isinstance(report, ReplayReport):
            record_check(store, "replay", report.ok, replay_summary(report),
                         report.to_dict(), run_at)
        else:
            record_check(store, "verify", report.ok, verify_summary(report),
                         verify_details(report), run_at)
    except FeatureStoreError as error:
        _log.warning("the check's result was not recorded: %s", error)
    return report


def record_check(store: StoreContext, kind: str, passed: bool, summary: str,
                 details: Mapping[str, Any], run_at: datetime | None = None) -> None:
    """Append one check's row to the offline file.

    Args:
        store: the feature store's context.
        kind: "verify" or "replay".
        passed: whether the check passed.
        summary: one line for people.
        details: the report as JSON-ready data (other values are written as text).
        run_at: when the check started; default now.

    Raises:
        InputError: an unknown kind.
        StoreLockedError: the offline file stayed locked by another process.
    """
    _check_kind(kind)
    when = run_at or datetime.now(UTC)
    row = [when if when.tzinfo else when.replace(tzinfo=UTC), kind, passed, summary,
           orjson.dumps(dict(details), default=str,
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()]

    def insert(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(_CREATE_TABLE)
        con.execute(f"INSERT INTO {CHECKS_TABLE} VALUES (?, ?, ?, ?, ?)", row)

    store.offline_database().run(insert)


def read_checks(con: duckdb.DuckDBPyConnection, kind: str | None = None,
                limit: int | None = None) -> list[CheckRecord]:
    """The recorded checks, newest first (none when nothing was recorded).

    Args:
        con: a connection to the offline file (read-only is enough).
        kind: only checks of this kind; default both.
        limit: at most this many rows; default all.

    Raises:
        InputError: an unknown kind or a negative limit.
    """
    if kind is not None:
        _check_kind(kind)
    rows = newest_rows(con, CHECKS_TABLE, "kind, passed, summary, details",
                       where=("kind", kind) if kind is not None else None, limit=limit)
    return [CheckRecord(run_at, name, passed, summary, orjson.loads(details))
            for run_at, name, passed, summary, details in rows]


def verify_summary(report: VerifyReport) -> str:
    """One line: how many values differed of how many, and the stale views."""
    views = len(report.entities)
    entities = sum(report.entities.values())
    if report.mismatches:
        line = f"{len(report.mismatches):,} of {report.values:,} values differ"
    else:
        line = f"online == offline for all {report.values:,} values"
    line += f" ({entities:,} entities in {views} view{'s' if views != 1 else ''})"
    if report.stale:
        line += f"; stale: {', '.join(sorted(report.stale))}"
    return line


def verify_details(report: VerifyReport) -> dict[str, Any]:
    """The verify report as JSON-ready data (the first `MISMATCHES_KEPT` mismatches)."""
    return {
        "registry_version": report.registry_version, "values": report.values,
        "entities": dict(report.entities), "skipped": dict(report.skipped),
        "times": {view: [format_micros(at) for at in times]
                  for view, times in report.times.items()},
        "stale": dict(report.stale), "mismatches": len(report.mismatches),
        "first_mismatches": [
            {"view": m.view, "feature": m.feature, "entity": list(m.entity),
             "at": format_micros(m.at_us), "online": m.online, "offline": m.offline}
            for m in report.mismatches[:MISMATCHES_KEPT]],
        "ok": report.ok,
    }


def replay_summary(report: ReplayReport) -> str:
    """One line: how many values differed of how many, and how many were not replayable."""
    if not report.rows:
        return "no served values logged"
    if report.mismatch_count:
        line = (f"{report.mismatch_count:,} of {report.checked:,} values differ from the "
                "offline engine")
    else:
        line = f"served == offline for all {report.checked:,} values"
    line += f" ({report.rows:,} logged rows)"
    skipped = sum(report.not_replayable.values())
    if skipped:
        line += f"; {skipped:,} values not replayable"
    return line


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"unknown check kind '{kind}': expected one of {', '.join(KINDS)}")
