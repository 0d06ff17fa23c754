"""Typed models of expectations: rules on source columns, features and sources as a whole.

A rule is checked row by row (see `featurestore.validation.rules` for what breaks each
one); `on_fail` says what a broken rule does: `warn` reports it, `fail` stops the run,
`quarantine` (source columns only) keeps every breaking row out of features and records
it. Shape problems here become located registry errors; rules that need the source's
column types (a `range` on a string column, a column the source lacks) are checked with
the sources, in `featurestore.validation.registry_checks`.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, model_validator
from pydantic_core import PydanticCustomError

from featurestore.registry.durations import DurationSyntaxError, format_duration, parse_duration
from featurestore.registry.suggestions import did_you_mean
from featurestore.registry.yaml_values import describe_value

POLICIES = ("warn", "fail", "quarantine")
"""What a broken rule does, mildest first."""

ROW_RULES = ("not_null", "range", "values", "regex", "unique")
"""The column rules, in the order they are checked and reported."""

FEATURE_RULES = ("not_null", "range", "values", "regex")
"""The rules a feature's latest values can be checked against."""


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _policy(value: object) -> str:
    if not isinstance(value, str) or value not in POLICIES:
        shown = value if isinstance(value, str) else describe_value(value)
        hint = did_you_mean(value, POLICIES) if isinstance(value, str) else ""
        raise PydanticCustomError(
            "on_fail", "unknown on_fail '{value}': expected warn, fail or quarantine{hint}",
            {"value": shown, "hint": hint})
    return value


def _fraction(value: object) -> float:
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise PydanticCustomError(
            "not_null", "not_null is the largest fraction of nulls allowed, a number from 0 "
            "to 1 (0: no nulls), got {got}", {"got": describe_value(value)})
    return float(value)  # type: ignore[arg-type]


def _bounds(value: object) -> tuple[float, float]:
    if (not isinstance(value, list | tuple) or len(value) != 2
            or not all(_is_number(bound) for bound in value)):
        raise PydanticCustomError(
            "range", "range is [lowest, highest], two numbers, got {got}",
            {"got": describe_value(value) if not isinstance(value, list | tuple)
             else "[" + ", ".join(describe_value(bound) for bound in value) + "]"})
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise PydanticCustomError(
            "range", "range [{low}, {high}] is empty: the lowest value is above the highest",
            {"low": value[0], "high": value[1]})
    return low, high


def _allowed_values(value: object) -> tuple[str | int | float, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise PydanticCustomError(
            "values", "values is a non-empty list of the values allowed, got {got}",
            {"got": "an empty list" if isinstance(value, list | tuple) else describe_value(value)})
    for item in value:
        if not (isinstance(item, str) or _is_number(item)):
            raise PydanticCustomError(
                "values", "values may hold text and numbers only, got {got}",
                {"got": describe_value(item)})
    kinds = {isinstance(item, str) for item in value}
    if len(kinds) > 1:
        raise PydanticCustomError(
            "values", "values mixes text and numbers: a column holds one or the other")
    return tuple(value)


def _pattern(value: object) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError("regex", "regex is a pattern in quotes, got {got}",
                                  {"got": describe_value(value)})
    try:
        re.compile(value)
    except re.error as error:
        raise PydanticCustomError("regex", "invalid regex '{pattern}': {reason}",
                                  {"pattern": value, "reason": str(error)}) from None
    return value


def _unique(value: object) -> bool:
    if not isinstance(value, bool):
        raise PydanticCustomError("unique", "unique is true or false, got {got}",
                                  {"got": describe_value(value)})
    return value


def _max_change(value: object) -> float:
    if not _is_number(value) or float(value) < 0:  # type: ignore[arg-type]
        raise PydanticCustomError(
            "row_count_change", "max is the largest relative change allowed, a number of at "
            "least 0 (0.5: half), got {got}", {"got": describe_value(value)})
    return float(value)  # type: ignore[arg-type]


def _age(value: object) -> int:
    if not isinstance(value, str):
        raise PydanticCustomError("duration_type", "expected a duration such as '90s', '5m', "
                                  "'1h' or '7d', got {got}", {"got": describe_value(value)})
    try:
        return parse_duration(value)
    except DurationSyntaxError as error:
        raise PydanticCustomError("duration", "{reason}", {"reason": str(error)}) from None


Policy = Annotated[str, BeforeValidator(_policy)]
NullFraction = Annotated[float, BeforeValidator(_fraction)]
Bounds = Annotated[tuple[float, float], BeforeValidator(_bounds)]
AllowedValues = Annotated[tuple[str | int | float, ...], BeforeValidator(_allowed_values)]
Pattern = Annotated[str, BeforeValidator(_pattern)]
Unique = Annotated[bool, BeforeValidator(_unique)]


def _warn_or_fail(what: str) -> BeforeValidator:
    """on_fail where no row can be kept out: warn or fail."""

    def check(value: object) -> str:
        value = _policy(value)
        if value == "quarantine":
            raise PydanticCustomError(
                "on_fail", "quarantine applies to source columns (sources.<name>.expect), "
                "where rows can be kept out; {what} can warn or fail", {"what": what})
        return value

    return BeforeValidator(check)


class _Definition(BaseModel):
    """Immutable, and unknown keys are errors (as `models.Definition`, which imports
    this module and so cannot be imported here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureExpectation(_Definition):
    """Rules on a feature's latest values, checked at materialize before publishing.

    Attributes:
        not_null: the largest fraction of entities whose value may be null (0 to 1).
        range: [lowest, highest], inclusive.
        values: the values allowed.
        regex: a pattern every (string) value must match in full.
        on_fail: `warn` (default) or `fail`; quarantine applies to source columns only.
    """

    not_null: NullFraction | None = None
    range: Bounds | None = None
    values: AllowedValues | None = None
    regex: Pattern | None = None
    on_fail: Annotated[str, _warn_or_fail("a feature's expectations")] = "warn"

    @model_validator(mode="after")
    def _check_rules(self) -> FeatureExpectation:
        _needs_a_rule(self, FEATURE_RULES)
        return self

    def rules(self) -> dict[str, object]:
        """The rules given, by name, in checking order."""
        return _given(self, FEATURE_RULES)

    def __str__(self) -> str:
        """As written in the registry: `{range: [0, 1], on_fail: fail}`."""
        return _written({**self.rules(), "on_fail": self.on_fail})


class ColumnExpectation(FeatureExpectation):
    """Rules on one column of a source, checked row by row at materialize, push and
    validate.

    Attributes:
        unique: true: a row breaks it when an earlier row has the same entity keys,
            timestamp and value of this column (a duplicated event).
        on_fail: `warn` (default), `fail` or `quarantine` (breaking rows are kept out
            of features and recorded).
    """

    unique: Unique | None = None
    on_fail: Policy = "warn"

    @model_validator(mode="after")
    def _check_rules(self) -> ColumnExpectation:
        _needs_a_rule(self, ROW_RULES)
        return self

    def rules(self) -> dict[str, object]:
        """The rules given, by name, in checking order (`unique: false` is no rule)."""
        given = _given(self, ROW_RULES)
        if given.get("unique") is False:
            del given["unique"]
        return given


def _needs_a_rule(model: FeatureExpectation, names: tuple[str, ...]) -> None:
    if not _given(model, names):
        raise PydanticCustomError("expect", "give at least one rule: {names}",
                                  {"names": ", ".join(names)})


def _given(model: FeatureExpectation, names: tuple[str, ...]) -> dict[str, object]:
    return {name: getattr(model, name) for name in names if getattr(model, name) is not None}


class Freshness(_Definition):
    """The source's newest event must be at most `max_age` old (checked at materialize
    and validate).

    Attributes:
        max_age: a duration (`2h`), held in microseconds.
        on_fail: `warn` (default) or `fail`.
    """

    max_age: Annotated[int, BeforeValidator(_age),
                       PlainSerializer(format_duration, return_type=str)]
    on_fail: Annotated[str, _warn_or_fail("freshness")] = "warn"

    def describe(self) -> str:
        """The rule as written (`max_age 2h`)."""
        return f"max_age {format_duration(self.max_age)}"

    def __str__(self) -> str:
        return _written({"max_age": format_duration(self.max_age), "on_fail": self.on_fail})


class RowCountChange(_Definition):
    """The source's row count may change by at most `max` (a fraction) since the
    previous materialization.

    Attributes:
        max: the largest relative change, |new - old| / old.
        on_fail: `warn` (default) or `fail`.
    """

    max: Annotated[float, BeforeValidator(_max_change)]
    on_fail: Annotated[str, _warn_or_fail("row_count_change")] = "warn"

    def __str__(self) -> str:
        return _written({"max": self.max, "on_fail": self.on_fail})


def _written(values: dict[str, object]) -> str:
    """A mapping in YAML flow style: `{range: [0, 1], on_fail: warn}`."""

    def shown(value: object) -> str:
        if isinstance(value, tuple | list):
            return "[" + ", ".join(shown(item) for item in value) + "]"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    return "{" + ", ".join(f"{key}: {shown(value)}" for key, value in values.items()) + "}"
