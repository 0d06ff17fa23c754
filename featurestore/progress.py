"""Progress display for long commands (materialization): partitions, events, rate, ETA."""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class MaterializeProgress:
    """One progress bar per feature view, counting partitions, with events and rate."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("partitions, {task.fields[events]:,} events, "
                       "{task.fields[rate]:,.0f} events/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(file=sys.stderr), transient=False)
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> MaterializeProgress:
        # The display starts with the first update: a run that fails before any work
        # (a bad --end) leaves its one-line error alone, not after an empty display.
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._tasks:
            self._progress.stop()

    def update(self, view: str, done: int, total: int, events: int) -> None:
        """Record that `done` of `total` partitions of `view` are folded."""
        if not self._tasks:
            self._progress.start()
        if view not in self._tasks:
            self._tasks[view] = self._progress.add_task(view, total=total, events=0, rate=0.0)
        task = self._tasks[view]
        elapsed = self._progress.tasks[task].elapsed or 0.0
        rate = events / elapsed if elapsed > 0 else 0.0
        self._progress.update(task, completed=done, total=total, events=events, rate=rate)
