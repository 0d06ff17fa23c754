"""What `featurestore replay` found: values compared, mismatches, and what it could not
replay (and why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from featurestore.times import format_micros

MISMATCHES_KEPT = 10
"""Mismatches a report keeps in full (all are counted)."""


@dataclass(frozen=True)
class ReplayMismatch:
    """One served value that differs from the offline engine's.

    Attributes:
        entity: the entity key columns and values of the logged row.
        at_us: the lookup time.
        column: the output column.
        served: the value served (as logged).
        expected: the value the offline engine computes.
        state_version: the online state version that answered (of the column's view).
    """

    entity: dict[str, object]
    at_us: int
    column: str
    served: object
    expected: object
    state_version: str | None

    def to_dict(self) -> dict[str, Any]:
        """The mismatch as JSON-ready data (`at` as ISO-8601 text)."""
        return {"entity": self.entity, "at": format_micros(self.at_us), "column": self.column,
                "served": self.served, "expected": self.expected,
                "state_version": self.state_version}

    def render(self) -> str:
        """One line naming the value and both results."""
        return (f"{self.column} entity {self.entity} at {format_micros(self.at_us)}: served "
                f"{self.served!r}, expected {self.expected!r} (state {self.state_version})")


@dataclass
class ReplayReport:
    """The outcome of replaying the served-value log.

    Attributes:
        rows: logged rows read (one per entity of a logged lookup).
        checked: values compared with the offline engine.
        mismatch_count: values that differ.
        mismatches: the first `MISMATCHES_KEPT` of them, in log order.
        not_replayable: why values could not be recomputed → how many.
    """

    rows: int = 0
    checked: int = 0
    mismatch_count: int = 0
    mismatches: list[ReplayMismatch] = field(default_factory=list)
    not_replayable: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no compared value differs (values not replayable are not matches,
        and are reported, but are no failure)."""
        return self.mismatch_count == 0

    def add_mismatch(self, mismatch: ReplayMismatch) -> None:
        """Count a mismatch, keeping the first few in full."""
        self.mismatch_count += 1
        if len(self.mismatches) < MISMATCHES_KEPT:
            self.mismatches.append(mismatch)

    def skip(self, reason: str, values: int = 1) -> None:
        """Count values that cannot be replayed, by reason."""
        self.not_replayable[reason] = self.not_replayable.get(reason, 0) + values

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {"rows": self.rows, "checked": self.checked, "mismatches": self.mismatch_count,
                "first_mismatches": [mismatch.to_dict() for mismatch in self.mismatches],
                "not_replayable": dict(self.not_replayable), "ok": self.ok}

    def render(self) -> str:
        """A readable account: what was compared, the first mismatches, what was not."""
        if not self.rows:
            return "no served values logged (turn logging on with serving.log_sample_rate)"
        lines = [f"{self.rows:,} logged rows, {self.checked:,} values recomputed offline"]
        if self.mismatch_count:
            lines.append(f"{self.mismatch_count:,} of {self.checked:,} values differ from "
                         "the offline engine:")
            lines.extend(f"  {mismatch.render()}" for mismatch in self.mismatches)
            if self.mismatch_count > len(self.mismatches):
                lines.append(f"  ... and {self.mismatch_count - len(self.mismatches):,} more")
        else:
            lines.append(f"served == offline for all {self.checked:,} values")
        for reason, count in sorted(self.not_replayable.items()):
            lines.append(f"not replayable: {count:,} values: {reason}")
        return "\n".join(lines)
