"""Errors of expectations: a run stopped by a broken rule, a push refused by one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from featurestore.errors import FeatureStoreError
from featurestore.serving.errors import RequestError
from featurestore.validation.verdicts import Verdict


class ExpectationError(FeatureStoreError):
    """A rule with `on_fail: fail` is broken: the run stopped and changed nothing.

    Attributes:
        verdicts: every verdict of the run, the broken ones among them.
    """

    def __init__(self, failed: Sequence[Verdict], verdicts: Sequence[Verdict]) -> None:
        self.verdicts = list(verdicts)
        self.failed = list(failed)
        lines = "; ".join(verdict.failure() for verdict in failed)
        super().__init__(f"expectation failed, nothing was changed: {lines}")


class PushExpectationError(RequestError):
    """A pushed row breaks a rule whose policy is fail or quarantine: nothing is stored.

    Attributes:
        code: ``expectation_failed`` (HTTP 422).
        details: row (its index in the push), column, rule and value, for the answer.
    """

    def __init__(self, source: str, row: int, column: str, rule: str, description: str,
                 value: Any, policy: str) -> None:
        super().__init__(
            "expectation_failed",
            f"push to '{source}': row {row}: column '{column}' breaks {description} "
            f"(value {value!r}, on_fail: {policy}); nothing was stored")
        self.details = {"source": source, "row": row, "column": column, "rule": rule,
                        "value": value, "policy": policy}
