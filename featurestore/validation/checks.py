"""Checking expectations against the data: source columns, freshness, row counts and
the latest feature values, each giving one `Verdict` per rule.

Used by materialize (rows before the run's end; the run records and may stop on the
verdicts) and by validate (all current rows; nothing is written).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import duckdb

from featurestore.compilation import source_spec
from featurestore.offline.sources import (
    SourceSpec,
    quote_identifier,
    source_errors,
    source_relation,
)
from featurestore.registry import Registry
from featurestore.times import format_micros
from featurestore.validation.rules import (
    ROW_COLUMN,
    RowFilter,
    RowRule,
    feature_rules,
    flag_column,
    source_rules,
)
from featurestore.validation.verdicts import Verdict

_MICROS_PER_SECOND = 1_000_000


def checked_sources(registry: Registry, only: str | None = None) -> list[str]:
    """The sources with expectations that a feature view reads, in file order."""
    used = {view.source for view in registry.feature_views.values()}
    return [name for name, source in registry.sources.items()
            if name in used and (only is None or name == only)
            and (source.expect or source.freshness or source.row_count_change)]


def flagged_spec(registry: Registry, name: str, offline_path: Path) -> SourceSpec:
    """The source read with every row kept and flagged by each of its column rules."""
    spec = source_spec(registry, name, offline_path)
    return dataclasses.replace(spec, row_filter=RowFilter(source_rules(registry, name),
                                                          flag_only=True))


def before(timestamp: str, end_us: int | None) -> str:
    """SQL condition on a source relation's (normalised) timestamp: before `end_us`."""
    if end_us is None:
        return "true"
    return f"{quote_identifier(timestamp)} < make_timestamp({int(end_us)}::BIGINT)"


def check_columns(con: duckdb.DuckDBPyConnection, registry: Registry, name: str,
                  offline_path: Path, base_dir: Path, end_us: int | None) -> list[Verdict]:
    """One verdict per column rule of a source, over its rows before `end_us` (None:
    all rows), pushed rows included."""
    rules = source_rules(registry, name)
    if not rules:
        return []
    spec = flagged_spec(registry, name, offline_path)
    counts = ["count(*)"]
    for i in range(len(rules)):
        counts += [f"count(*) FILTER (WHERE {flag_column(i)})",
                   f"any_value({ROW_COLUMN}) FILTER (WHERE {flag_column(i)})"]
    with source_errors(spec):
        row = con.execute(f"SELECT {', '.join(counts)} FROM {source_relation(spec, base_dir)} "
                      f"WHERE {before(spec.timestamp, end_us)}").fetchone()
    assert row is not None  # an aggregate always answers one row
    checked = int(row[0])
    return [_verdict("column", rule, checked, int(row[1 + 2 * i]), row[2 + 2 * i])
            for i, rule in enumerate(rules)]


def _verdict(kind: str, rule: RowRule, checked: int, breaking: int,
             example: str | None) -> Verdict:
    return Verdict(kind, rule.target, rule.column, rule.rule, rule.describe(), rule.policy,
                   checked, breaking, rule.is_broken(checked, breaking), example)


@dataclasses.dataclass(frozen=True)
class SourceMeasure:
    """A source's row count and newest event time (microseconds; None when empty)."""

    rows: int
    newest_us: int | None


def measure_source(con: duckdb.DuckDBPyConnection, registry: Registry, name: str,
                   offline_path: Path, base_dir: Path) -> SourceMeasure:
    """Every row of the source counts here, quarantined ones too."""
    spec = dataclasses.replace(source_spec(registry, name, offline_path), row_filter=None)
    column = quote_identifier(spec.timestamp)
    with source_errors(spec):
        row = con.execute(f"SELECT count(*), epoch_us(max({column})) "
                      f"FROM {source_relation(spec, base_dir)}").fetchone()
    assert row is not None
    return SourceMeasure(int(row[0]), None if row[1] is None else int(row[1]))


def check_freshness(registry: Registry, name: str, measure: SourceMeasure,
                    now_us: int) -> list[Verdict]:
    """The freshness verdict of a source (none when it sets no freshness)."""
    freshness = registry.sources[name].freshness
    if freshness is None:
        return []
    if measure.newest_us is None:
        broken, detail = True, "the source has no events"
    else:
        age = now_us - measure.newest_us
        broken = age > freshness.max_age
        detail = (f"newest event {format_micros(measure.newest_us)}, "
                  f"{_age(age)} before now")
    return [Verdict("freshness", name, None, "freshness", freshness.describe(),
                    freshness.on_fail, 1, int(broken), broken, detail=detail)]


def _age(micros: int) -> str:
    """An age in its two largest units: `11d 1h`, `2h 5m`, `40s`."""
    seconds = max(micros, 0) // _MICROS_PER_SECOND
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def check_row_count(registry: Registry, name: str, rows: int,
                    previous: int | None) -> list[Verdict]:
    """The row_count_change verdict: `rows` against the count of the previous run."""
    setting = registry.sources[name].row_count_change
    if setting is None:
        return []
    description = f"row_count_change max {setting.max:g}"
    if previous is None:
        return [Verdict("row_count_change", name, None, "row_count_change", description,
                        setting.on_fail, 1, 0, False,
                        detail=f"{rows:,} rows; no previous run to compare with")]
    if previous == 0:
        change = 0.0 if rows == 0 else float("inf")
    else:
        change = abs(rows - previous) / previous
    broken = change > setting.max
    detail = f"{rows:,} rows, {previous:,} at the previous run (change {change:.3g})"
    return [Verdict("row_count_change", name, None, "row_count_change", description,
                    setting.on_fail, 1, int(broken), broken, detail=detail)]


def check_features(con: duckdb.DuckDBPyConnection, registry: Registry,
                   views: Sequence[str] | None = None) -> list[Verdict]:
    """One verdict per feature rule, over the views' latest values (`features_<view>`).

    A view with no latest-values table yet (never materialized) is not checked.
    """
    tables = {row[0] for row in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}
    verdicts = []
    for view in views if views is not None else registry.feature_views:
        rules = feature_rules(registry, view)
        table = f"features_{view}"
        if not rules or table not in tables:
            continue
        flags = ", ".join(f"{rule.breaks_sql()} AS {flag_column(i)}"
                          for i, rule in enumerate(rules))
        counts = ["count(*)"]
        for i, rule in enumerate(rules):
            value = f"CAST({quote_identifier(rule.column)} AS VARCHAR)"
            counts += [f"count(*) FILTER (WHERE {flag_column(i)})",
                       f"any_value({value}) FILTER (WHERE {flag_column(i)})"]
        row = con.execute(f"SELECT {', '.join(counts)} FROM (SELECT *, {flags} FROM "
                      f"{quote_identifier(table)})").fetchone()
        assert row is not None
        verdicts += [_verdict("feature", rule, int(row[0]), int(row[1 + 2 * i]), row[2 + 2 * i])
                     for i, rule in enumerate(rules)]
    return verdicts
