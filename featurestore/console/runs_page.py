"""What the Runs page shows: materializations, pushes per hour, verify and replay."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from markupsafe import Markup

from featurestore.console.charts import histogram_svg
from featurestore.offline.check_history import CheckRecord, read_checks
from featurestore.offline.push_audit import newest_segment_time, read_push_audit
from featurestore.offline.run_history import MaterializationRecord, read_run_history
from featurestore.statistics.model import HistogramBin
from featurestore.store import FeatureStore

RUNS_SHOWN = 200
"""Materialization rows listed, newest first (one row per view per run)."""

CHECKS_SHOWN = 50
"""Verify and replay results listed, newest first."""

PUSH_HOURS = 48
"""Hours of pushes counted, back from the newest push."""


@dataclass(frozen=True)
class PushHour:
    """Pushes accepted in one hour (UTC) to one source."""

    hour: str
    source: str
    pushes: int
    rows: int


@dataclass(frozen=True)
class RunsPage:
    """Everything on the Runs page.

    Attributes:
        runs: materializations, one row per view per run, newest first.
        push_hours: pushes per hour and source, newest hour first (the last PUSH_HOURS
            hours before the newest push).
        push_plot: rows pushed per hour, oldest first, as SVG (None: no pushes).
        checks: verify and replay results, newest first.
    """

    runs: tuple[MaterializationRecord, ...]
    push_hours: tuple[PushHour, ...]
    push_plot: Markup | None
    checks: tuple[CheckRecord, ...]


def build_runs_page(store: FeatureStore) -> RunsPage:
    """Read the run history, the pushes' audit records and the recorded checks."""
    runs: tuple[MaterializationRecord, ...] = ()
    checks: tuple[CheckRecord, ...] = ()
    offline = store.context.offline_path
    if offline.exists():
        runs, checks = store.offline_database().run(
            lambda con: (tuple(read_run_history(con, None, RUNS_SHOWN)),
                         tuple(read_checks(con, None, CHECKS_SHOWN))), read_only=True)
    hours = push_hours(read_push_audit(offline.parent, since=_window_start(offline.parent)))
    return RunsPage(runs, hours, _push_plot(hours), checks)


def push_hours(records: list) -> tuple[PushHour, ...]:
    """Count pushes and rows per hour and source over the PUSH_HOURS hours up to the
    newest push, newest first."""
    if not records:
        return ()
    newest = max(record.time for record in records)
    start = _hour(newest) - timedelta(hours=PUSH_HOURS - 1)
    pushes: Counter[tuple[datetime, str]] = Counter()
    rows: Counter[tuple[datetime, str]] = Counter()
    for record in records:
        hour = _hour(record.time)
        if hour >= start:
            pushes[(hour, record.source)] += 1
            rows[(hour, record.source)] += record.rows
    return tuple(PushHour(f"{hour:%Y-%m-%d %H}:00", source, pushes[(hour, source)],
                          rows[(hour, source)])
                 for hour, source in sorted(pushes, key=lambda key: (-key[0].timestamp(),
                                                                      key[1])))


def _push_plot(hours: tuple[PushHour, ...]) -> Markup | None:
    """Rows pushed per hour, all sources, as bars: one per hour from the first to the
    last hour with a push, quiet hours included (as empty bars)."""
    if not hours:
        return None
    totals: Counter[str] = Counter()
    for hour in hours:
        totals[hour.hour] += hour.rows
    moment = datetime.strptime(min(totals), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    last = datetime.strptime(max(totals), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    bins = []
    while moment <= last:
        following = moment + timedelta(hours=1)
        bins.append(HistogramBin(moment.isoformat(), following.isoformat(),
                                 totals.get(f"{moment:%Y-%m-%d %H}:00", 0)))
        moment = following
    return Markup(histogram_svg(bins, title="Rows pushed per hour (UTC), all sources"))


def _window_start(offline_dir: Path) -> datetime | None:
    """The start of the hours counted: PUSH_HOURS before the newest segment's hour, told
    from the segments' names alone (reading every footer grows with every push)."""
    newest = newest_segment_time(offline_dir)
    return None if newest is None else _hour(newest) - timedelta(hours=PUSH_HOURS)


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
