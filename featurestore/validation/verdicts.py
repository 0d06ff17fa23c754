"""What a check found: one verdict per rule, and the report `validate` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

STOPPING_POLICIES = ("fail", "quarantine")
"""Policies whose broken rules make `validate` exit 1 (with `--strict`, warn too)."""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one rule over the rows checked.

    Attributes:
        kind: `column` (a source column), `feature` (a view's latest values),
            `freshness` or `row_count_change`.
        target: the source (or, for features, the feature view).
        column: the column or feature; None for freshness and row_count_change.
        rule: not_null, range, values, regex, unique, freshness or row_count_change.
        description: the rule as written (`range [0, 100000]`).
        policy: warn, fail or quarantine.
        checked: rows (or entities) checked; for freshness and row_count_change 1.
        breaking: rows (or entities) that break the rule.
        broken: whether the rule is broken (breaking fraction over its tolerance).
        example: a breaking row as JSON (or the value, for features), when any.
        detail: what was measured, for freshness and row_count_change.
    """

    kind: str
    target: str
    column: str | None
    rule: str
    description: str
    policy: str
    checked: int
    breaking: int
    broken: bool
    example: str | None = None
    detail: str | None = None

    @property
    def where(self) -> str:
        """`source 'transactions' column 'amount'`, `feature user_txn:amount_sum_7d`, ..."""
        if self.kind == "feature":
            return f"feature {self.target}:{self.column}"
        if self.column is None:
            return f"source '{self.target}'"
        return f"source '{self.target}' column '{self.column}'"

    def render(self) -> str:
        """One line: the verdict, where, the rule, the counts and the policy."""
        state = "BROKEN" if self.broken else "ok"
        if self.detail is not None:
            counts = self.detail
        else:
            counts = f"{self.breaking:,} of {self.checked:,} rows break it"
        return f"{state:6} {self.where}: {self.description}: {counts} (on_fail: {self.policy})"

    def failure(self) -> str:
        """The message of a run this verdict stops: source, column, rule, count, example."""
        text = f"{self.where} breaks {self.description}"
        if self.detail is not None:
            return f"{text}: {self.detail}"
        text += f": {self.breaking:,} of {self.checked:,} rows"
        if self.example is not None:
            text += f", for example {self.example}"
        return text

    def as_json(self) -> dict[str, Any]:
        """The verdict as a JSON-ready dict."""
        return asdict(self)


@dataclass
class ValidationReport:
    """What `validate` found: one verdict per rule, in registry order."""

    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def broken(self) -> list[Verdict]:
        """The broken rules, whatever their policy."""
        return [verdict for verdict in self.verdicts if verdict.broken]

    def failed(self, strict: bool = False) -> bool:
        """Whether a rule whose policy is fail or quarantine (with `strict`: any rule)
        is broken: what makes `featurestore validate` exit 1."""
        return any(strict or verdict.policy in STOPPING_POLICIES for verdict in self.broken)

    def render(self) -> str:
        """One line per rule (a sentence when there is none)."""
        if not self.verdicts:
            return "no expectations to check"
        return "\n".join(verdict.render() for verdict in self.verdicts)
