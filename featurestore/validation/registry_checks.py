"""Expectations checked against the sources' columns, where `plan` and `apply` check
the other uses of source columns (`featurestore.source_checks`)."""

from __future__ import annotations

from collections.abc import Mapping

from featurestore.offline.schema import column_type
from featurestore.registry import Registry
from featurestore.registry.checks import LocatedProblems
from featurestore.registry.suggestions import did_you_mean
from transforms.spec import ColumnType

_NUMBERS = (ColumnType.INT, ColumnType.FLOAT)


def check_expectation_columns(registry: Registry,
                              columns: Mapping[str, Mapping[str, str] | None],
                              findings: LocatedProblems) -> None:
    """Each column a source's `expect` names is in the source, and a `range` rule is on
    a number column.

    Args:
        registry: the validated definitions.
        columns: source name → its DuckDB column types (None: it could not be read,
            which is reported on its own); sources missing here are not checked.
        findings: where problems go.
    """
    for name, types in columns.items():
        if types is None:
            continue
        for column, expectation in registry.sources[name].expect.items():
            if column not in types:
                findings.at_key(("sources", name, "expect", column),
                                f"source '{name}' has no column '{column}'"
                                f"{did_you_mean(column, types)}")
            elif expectation.range is not None and column_type(types[column]) not in _NUMBERS:
                findings.at_value(("sources", name, "expect", column, "range"),
                                  f"range applies to number columns; column '{column}' of "
                                  f"source '{name}' is {types[column]}")
