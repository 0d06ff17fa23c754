"""Expectation rules as SQL: which rows break each rule, and the rows quarantine keeps.

Every rule is a row rule, written once here as a DuckDB boolean expression that is never
null, and used on every path: materialization, training sets, snapshots and verify read
sources through `RowFilter.relation` (via `SourceSpec.row_filter`); checks count the
flags it adds; pushed rows are checked by the same SQL over an in-memory table.

A row breaks
- `not_null` when the column is null;
- `range: [lo, hi]` when the value is below lo or above hi (inclusive bounds);
- `values` when the value is not in the list;
- `regex` when the value (as text) does not match the pattern in full;
- `unique` when an earlier row (in source order) has the same entity keys, timestamp
  and value of this column: a duplicated event.
A null breaks only `not_null`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from featurestore.offline.sources import quote_identifier, quote_literal
from featurestore.registry import Registry
from featurestore.registry.expectations import FeatureExpectation

ORDER_COLUMN = "__fs_order"
ROW_COLUMN = "__fs_row"


def flag_column(index: int) -> str:
    """The name of the boolean column flagging rows that break rule `index`."""
    return f"__fs_break_{index}"


@dataclass(frozen=True)
class RowRule:
    """One rule on one column (of a source, or of a view's latest values).

    Attributes:
        target: the source (or feature view) the column belongs to.
        column: the column (or feature).
        rule: not_null, range, values, regex or unique.
        parameter: the rule's setting: the null fraction allowed, (lo, hi), the allowed
            values, the pattern, or True.
        policy: warn, fail or quarantine.
        keys: for `unique`: the entity key columns and the timestamp that, with the
            column, identify an event.
    """

    target: str
    column: str
    rule: str
    parameter: object
    policy: str
    keys: tuple[str, ...] = ()

    @property
    def tolerance(self) -> float:
        """The fraction of breaking rows the rule allows before it counts as broken."""
        return float(self.parameter) if self.rule == "not_null" else 0.0  # type: ignore[arg-type]

    def is_broken(self, checked: int, breaking: int) -> bool:
        """Whether `breaking` rows among `checked` break the rule."""
        return checked > 0 and breaking / checked > self.tolerance

    def describe(self) -> str:
        """The rule as written: `range [0, 100000]`, `not_null 0.01`, ..."""
        if self.rule == "range":
            low, high = self.parameter  # type: ignore[misc]
            return f"range [{_number(low)}, {_number(high)}]"
        if self.rule == "values":
            return "values [" + ", ".join(map(str, self.parameter)) + "]"  # type: ignore[call-overload]
        if self.rule == "regex":
            return f"regex {self.parameter!r}"
        if self.rule == "not_null":
            return f"not_null {_number(self.parameter)}"
        return "unique"

    def breaks_sql(self) -> str:
        """A boolean SQL expression, never null: true when the row breaks the rule.

        `unique` is a window over the relation, ordered by `ORDER_COLUMN`.
        """
        column = quote_identifier(self.column)
        if self.rule == "not_null":
            return f"({column} IS NULL)"
        if self.rule == "unique":
            partition = ", ".join(quote_identifier(name) for name in (*self.keys, self.column))
            return (f"({column} IS NOT NULL AND row_number() OVER (PARTITION BY {partition} "
                    f"ORDER BY {ORDER_COLUMN}) > 1)")
        return f"coalesce({self._value_breaks(column)}, false)"

    def _value_breaks(self, column: str) -> str:
        if self.rule == "range":
            low, high = self.parameter  # type: ignore[misc]
            number = f"CAST({column} AS DOUBLE)"
            return f"({number} < {float(low)!r} OR {number} > {float(high)!r})"
        if self.rule == "values":
            allowed: Sequence[object] = self.parameter  # type: ignore[assignment]
            if all(isinstance(value, str) for value in allowed):
                listed = ", ".join(quote_literal(str(value)) for value in allowed)
                return f"(CAST({column} AS VARCHAR) NOT IN ({listed}))"
            listed = ", ".join(repr(float(value)) for value in allowed)  # type: ignore[arg-type]
            return f"(CAST({column} AS DOUBLE) NOT IN ({listed}))"
        if self.rule == "regex":
            pattern = quote_literal(str(self.parameter))
            return f"(NOT regexp_full_match(CAST({column} AS VARCHAR), {pattern}))"
        raise ValueError(f"unknown rule {self.rule!r}")


def _number(value: object) -> str:
    """A bound as written: 100000, not 100000.0."""
    number = float(value)  # type: ignore[arg-type]
    return str(int(number)) if number.is_integer() else repr(number)


@dataclass(frozen=True)
class RowFilter:
    """Rules applied to each part of a source where it is read (`SourceSpec.row_filter`).

    Attributes:
        rules: the rules.
        flag_only: False keeps only the rows that break none of the rules (quarantine);
            True keeps every row and adds, per rule i, a boolean column `flag_column(i)`,
            the whole row as JSON (`ROW_COLUMN`) and its place in the part
            (`ORDER_COLUMN`), for checks.
        order_column: a column giving source order (a push's row index); None numbers
            the rows in the order DuckDB reads them.
    """

    rules: tuple[RowRule, ...]
    flag_only: bool = False
    order_column: str | None = None

    def relation(self, relation: str) -> str:
        """FROM-clause text of `relation` filtered (or flagged) by the rules."""
        if not self.rules:
            return relation
        row_local = not any(rule.rule == "unique" for rule in self.rules)
        if row_local and not self.flag_only:
            # No window: a plain WHERE, which DuckDB pushes into the scan.
            breaks = " OR ".join(rule.breaks_sql() for rule in self.rules)
            return f"(SELECT * FROM {relation} WHERE NOT ({breaks}))"
        flagged = self._flagged(relation)
        if self.flag_only:
            return flagged
        flags = [flag_column(i) for i in range(len(self.rules))]
        return (f"(SELECT * EXCLUDE ({ORDER_COLUMN}, {', '.join(flags)}) FROM {flagged} "
                f"WHERE NOT ({' OR '.join(flags)}))")

    def _flagged(self, relation: str) -> str:
        order = (quote_identifier(self.order_column) if self.order_column
                 else "row_number() OVER ()")
        row = f", to_json(__fs_source) AS {ROW_COLUMN}" if self.flag_only else ""
        numbered = (f"(SELECT *{row}, {order} AS {ORDER_COLUMN} "
                    f"FROM {relation} AS __fs_source)")
        flags = ", ".join(f"{rule.breaks_sql()} AS {flag_column(i)}"
                          for i, rule in enumerate(self.rules))
        return f"(SELECT *, {flags} FROM {numbered})"


def _unique_keys(registry: Registry, source: str) -> tuple[str, ...]:
    """Entity keys of the views over `source` (first seen first), then its timestamp."""
    keys: dict[str, None] = {}
    for view in registry.feature_views.values():
        if view.source == source:
            keys.update(dict.fromkeys(registry.entities[view.entity].keys))
    timestamp = registry.sources[source].timestamp
    return (*(key for key in keys if key != timestamp), timestamp)


def source_rules(registry: Registry, source: str) -> tuple[RowRule, ...]:
    """Every column rule of a source, in file order (columns, then rules)."""
    definition = registry.sources[source]
    found = []
    for column, expectation in definition.expect.items():
        for rule, parameter in expectation.rules().items():
            keys = _unique_keys(registry, source) if rule == "unique" else ()
            found.append(RowRule(source, column, rule, parameter, expectation.on_fail, keys))
    return tuple(found)


def quarantine_filter(registry: Registry, source: str) -> RowFilter | None:
    """The filter keeping a source's quarantined rows out; None when it has none."""
    rules = tuple(rule for rule in source_rules(registry, source)
                  if rule.policy == "quarantine")
    return RowFilter(rules) if rules else None


def feature_rules(registry: Registry, view: str) -> tuple[RowRule, ...]:
    """Every rule on the features of a view, in file order."""
    found = []
    for feature, definition in registry.feature_views[view].features.items():
        expectation: FeatureExpectation | None = definition.expect
        if expectation is None:
            continue
        for rule, parameter in expectation.rules().items():
            found.append(RowRule(view, feature, rule, parameter, expectation.on_fail))
    return tuple(found)
