"""Pushed rows checked against their source's column rules before anything is stored.

The rows (already converted to the source's types) go through the same SQL as the
offline checks (`rules.py`), over an in-memory DuckDB table, so a rule means the same
on both paths. Under `fail` a broken rule refuses the push; under `quarantine` any
breaking row does (a push cannot be stored in part, and the row would be kept out of
every feature anyway); under `warn` the push is accepted with a warning per broken rule.
A rule's tolerance (`not_null: f`) applies to the pushed batch.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from featurestore.registry import Registry
from featurestore.validation.errors import PushExpectationError
from featurestore.validation.rules import RowFilter, RowRule, flag_column, source_rules

_INDEX = "__fs_index"


def check_pushed_rows(registry: Registry, source: str, rows: pa.Table) -> list[str]:
    """Check pushed rows against the source's column rules.

    Args:
        registry: the definitions.
        source: the source pushed to.
        rows: the validated rows (`validate_rows`).

    Returns:
        One warning per broken `warn` rule (empty when none).

    Raises:
        PushExpectationError: a row breaks a `quarantine` rule, or a `fail` rule is
            broken; the error names the first breaking row's index, column, rule and value.
    """
    rules = source_rules(registry, source)
    if not rules or rows.num_rows == 0:
        return []
    indexed = rows.append_column(_INDEX, pa.array(range(rows.num_rows), pa.int64()))
    flagged = RowFilter(rules, flag_only=True, order_column=_INDEX).relation("pushed")
    selects = ", ".join(
        f"count(*) FILTER (WHERE {flag_column(i)}), "
        f"min({_INDEX}) FILTER (WHERE {flag_column(i)})" for i in range(len(rules)))
    with duckdb.connect() as con:
        con.register("pushed", indexed)
        counts = con.execute(f"SELECT {selects} FROM {flagged}").fetchone()
    assert counts is not None  # an aggregate answers one row
    warnings = []
    for i, rule in enumerate(rules):
        breaking, first = int(counts[2 * i]), counts[2 * i + 1]
        refused = breaking > 0 if rule.policy == "quarantine" else (
            rule.policy == "fail" and rule.is_broken(rows.num_rows, breaking))
        if refused:
            value = rows.column(rule.column)[int(first)].as_py()
            raise PushExpectationError(source, int(first), rule.column, rule.rule,
                                       rule.describe(), _shown(value), rule.policy)
        if rule.is_broken(rows.num_rows, breaking):
            warnings.append(_warning(source, rule, breaking, rows.num_rows, int(first)))
    return warnings


def _shown(value: object) -> object:
    """A value as JSON can carry it (timestamps as ISO-8601 text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if isoformat is not None else str(value)


def _warning(source: str, rule: RowRule, breaking: int, rows: int, first: int) -> str:
    return (f"push to '{source}': column '{rule.column}' breaks {rule.describe()} in "
            f"{breaking} of {rows} rows (first: row {first}); on_fail: warn, rows kept")
