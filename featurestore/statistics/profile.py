"""The statistics pass: one DuckDB statement that reads its input once.

The input is read into a materialized CTE (`src`, the cleaned columns only) by one scan
(DuckDB runs GROUPING SETS the same way: a materialized input CTE under one aggregate
per set); its buffers spill to DuckDB's temp directory past the memory limit. Over it:

- one ungrouped aggregate (`whole`): per column count, min, max, mean, population std,
  quantiles and a HyperLogLog distinct estimate;
- per string or boolean column, a hash GROUP BY of value counts (it spills too), its
  top k by count (ties by value) and its group count: the exact distinct count;
- per numeric or timestamp column, an equal-width histogram from min to max (read from
  `whole`), binned exactly as `numpy.histogram(x, bins, range=(min, max))`.

Floating-point NaN counts as null, as in pandas. Exact quantiles (`quantile_cont`, the
linear interpolation pandas uses) hold every value in memory, so above
`EXACT_QUANTILE_VALUES` they become `approx_quantile` (t-digest); see
docs/decisions.md, "Statistics".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from featurestore.offline.sources import quote_identifier
from featurestore.statistics.model import (
    QUANTILE_LEVELS,
    ColumnStatistics,
    DatasetStatistics,
    HistogramBin,
    TopValue,
)
from featurestore.times import format_micros

EXACT_QUANTILE_VALUES = 20_000_000
"""Exact quantiles while (rows × columns with quantiles) stays at or below this: their
values are held in memory (8 bytes each, about 160 MB here)."""
TOP_K = 10
HISTOGRAM_BINS = 10

_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
             "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "DECIMAL")
_FLOATS = ("FLOAT", "DOUBLE", "REAL")


@dataclass(frozen=True)
class ProfiledColumn:
    """A column to profile: its name, DuckDB type and kind."""

    name: str
    type: str

    @property
    def kind(self) -> str:
        """numeric, boolean, string, timestamp or other."""
        base = self.type.upper()
        if base.endswith("]"):  # lists and arrays of any type
            return "other"
        name = base.split("(")[0].strip()
        if name in _INTEGERS or name in _FLOATS:
            return "numeric"
        if name == "BOOLEAN":
            return "boolean"
        if name in ("VARCHAR", "ENUM"):
            return "string"
        if name.startswith("TIMESTAMP") or name == "DATE":
            return "timestamp"
        return "other"

    def cleaned(self) -> str:
        """SQL for the column's value in `src`: doubles (NaN → null), epoch
        microseconds for times, text for strings, `IS NOT NULL` for other types."""
        column = quote_identifier(self.name)
        base = self.type.upper()
        kind = self.kind
        if kind == "numeric" and base in _FLOATS:
            return f"CASE WHEN isnan({column}) THEN NULL ELSE CAST({column} AS DOUBLE) END"
        if kind == "numeric":
            return f"CAST({column} AS DOUBLE)"
        if kind == "string":
            return f"CAST({column} AS VARCHAR)"
        if kind == "timestamp":
            # epoch_us of a TIMESTAMPTZ is the instant: no dependence on the session zone.
            return (f"epoch_us(CAST({column} AS TIMESTAMP))" if base == "DATE"
                    else f"epoch_us({column})")
        if kind == "boolean":
            return column
        return f"({column} IS NOT NULL)"


def quantile_method(row_bound: int | None, columns: Sequence[ProfiledColumn]) -> str:
    """"exact" when at most `EXACT_QUANTILE_VALUES` values would be held for quantiles
    (`row_bound` is an upper bound of the rows, None when unknown), else "approximate"."""
    quantiled = sum(column.kind in ("numeric", "timestamp") for column in columns)
    if row_bound is None:
        return "approximate"
    return "exact" if row_bound * max(quantiled, 1) <= EXACT_QUANTILE_VALUES else "approximate"


def statistics_sql(relation: str, columns: Sequence[ProfiledColumn], method: str,
                   top_k: int = TOP_K, bins: int = HISTOGRAM_BINS) -> str:
    """The one statement computing every statistic of `columns` over `relation` (a
    FROM-clause text), returning one row."""
    levels = "[" + ", ".join(str(level) for _, level in QUANTILE_LEVELS) + "]"
    quantile = "quantile_cont" if method == "exact" else "approx_quantile"
    cleaned = ", ".join(f"{column.cleaned()} AS c{i}" for i, column in enumerate(columns))
    aggregates = ["count(*) AS n_rows"]
    ctes = [f"src AS MATERIALIZED (SELECT {cleaned or '1 AS c_'} FROM {relation})"]
    outputs = ["whole.*"]
    for i, column in enumerate(columns):
        c, kind = f"c{i}", column.kind
        if kind == "other":
            aggregates.append(f"count_if({c}) AS count_{i}")
            continue
        aggregates.append(f"count({c}) AS count_{i}")
        if kind in ("numeric", "timestamp", "string"):
            aggregates += [f"min({c}) AS min_{i}", f"max({c}) AS max_{i}"]
        if kind == "numeric":
            aggregates += [f"avg({c}) AS mean_{i}", f"stddev_pop({c}) AS std_{i}"]
        if kind == "boolean":
            aggregates.append(f"avg(CAST({c} AS DOUBLE)) AS mean_{i}")
        if kind in ("numeric", "timestamp"):
            aggregates += [f"{quantile}(CAST({c} AS DOUBLE), {levels}) AS q_{i}",
                           f"approx_count_distinct({c}) AS distinct_{i}"]
            ctes.append(_histogram_cte(i, bins))
            outputs.append(f"hist_{i}.h AS hist_{i}")
        else:
            ctes += [f"counts_{i} AS MATERIALIZED (SELECT {c} AS v, count(*) AS n FROM src "
                     f"WHERE {c} IS NOT NULL GROUP BY {c})",
                     f"top_{i} AS (SELECT list({{'v': v, 'n': n}} ORDER BY n DESC, v) AS t "
                     f"FROM (SELECT v, n FROM counts_{i} ORDER BY n DESC, v LIMIT {top_k}))",
                     f"distinct_{i} AS (SELECT count(*) AS d FROM counts_{i})"]
            outputs += [f"top_{i}.t AS top_{i}", f"distinct_{i}.d AS distinct_{i}"]
    ctes.insert(1, f"whole AS (SELECT {', '.join(aggregates)} FROM src)")
    sources = ["whole"] + [output.split(".")[0] for output in outputs[1:]]
    return (f"WITH {', '.join(ctes)} SELECT {', '.join(outputs)} "
            f"FROM {', '.join(dict.fromkeys(sources))}")


def _histogram_cte(i: int, bins: int) -> str:
    """Counts per equal-width bin of column i, binned as numpy.histogram does: the
    truncated scaled offset, moved down or up one bin when the value falls on the
    other side of the bin's computed edge (`j * step + min`), the last bin closed."""
    last = bins - 1
    return (
        f"hist_{i} AS (SELECT list({{'b': b, 'n': n}} ORDER BY b) AS h FROM ("
        f"SELECT CASE WHEN i0 > 0 AND x < i0 * step + lo THEN i0 - 1 "
        f"WHEN i0 < {last} AND x >= (i0 + 1) * step + lo THEN i0 + 1 ELSE i0 END AS b, "
        f"count(*) AS n FROM (SELECT x, lo, step, "
        f"least(CAST(trunc((x - lo) * ({bins} / (hi - lo))) AS BIGINT), {last}) AS i0 "
        f"FROM (SELECT CAST(c{i} AS DOUBLE) AS x FROM src WHERE c{i} IS NOT NULL), "
        f"(SELECT lo, hi, (hi - lo) / {bins} AS step FROM (SELECT CAST(min_{i} AS DOUBLE) "
        f"AS lo, CAST(max_{i} AS DOUBLE) AS hi FROM whole) "
        # A range so narrow that bins / range overflows (decayed sums far below 1e-300)
        # gets no histogram, like an infinite one.
        f"WHERE hi > lo AND isfinite(hi - lo) AND isfinite({bins} / (hi - lo)))) "
        f"GROUP BY b))"
    )


def profile(con: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[ProfiledColumn],
            row_bound: int | None, target: str, top_k: int = TOP_K,
            bins: int = HISTOGRAM_BINS) -> DatasetStatistics:
    """Compute the statistics of `columns` of `relation` in one pass.

    Args:
        con: the connection that can read `relation`.
        relation: FROM-clause text (a table, a file reader call, a subquery).
        columns: the columns to profile, with their DuckDB types.
        row_bound: an upper bound of the input's rows known without reading it (file
            metadata, table size), None when unknown; picks the quantile method.
        target: what is profiled, for people.

    Raises:
        duckdb.Error: the input cannot be read (callers say which input it was).
    """
    method = quantile_method(row_bound, columns)
    cursor = con.execute(statistics_sql(relation, columns, method, top_k, bins))
    names = [entry[0] for entry in cursor.description]
    row = dict(zip(names, cursor.fetchall()[0], strict=True))
    rows = int(row["n_rows"])
    profiled = tuple(_column(i, column, row, rows, bins) for i, column in enumerate(columns))
    return DatasetStatistics(target=target, rows=rows, columns=profiled,
                             quantile_method=method, histogram_bins=bins, top_k=top_k)


def _column(i: int, column: ProfiledColumn, row: dict[str, Any], rows: int,
            bins: int) -> ColumnStatistics:
    """One column's statistics from the statement's row (columns suffixed `_i`)."""
    kind = column.kind
    count = int(row[f"count_{i}"] or 0)
    nulls = rows - count
    fields: dict[str, Any] = {
        "name": column.name, "kind": kind, "type": column.type, "count": count,
        "nulls": nulls, "null_fraction": nulls / rows if rows else 0.0}
    convert = _time_text if kind == "timestamp" else _plain
    if f"min_{i}" in row:
        fields["min"], fields["max"] = convert(row[f"min_{i}"]), convert(row[f"max_{i}"])
    if f"mean_{i}" in row:
        fields["mean"] = _float(row[f"mean_{i}"])
    if f"std_{i}" in row:
        fields["std"] = _float(row[f"std_{i}"])
    if f"q_{i}" in row and row[f"q_{i}"] is not None:
        fields["quantiles"] = {name: convert(value) for (name, _), value
                               in zip(QUANTILE_LEVELS, row[f"q_{i}"], strict=True)}
    if f"hist_{i}" in row:
        fields["histogram"] = _histogram(row, i, count, bins, convert)
        fields["distinct"] = int(row[f"distinct_{i}"] or 0)
    if f"top_{i}" in row:
        fields["top"] = tuple(TopValue(entry["v"], int(entry["n"]), entry["n"] / count)
                              for entry in row[f"top_{i}"] or ())
        fields["distinct"], fields["distinct_exact"] = int(row[f"distinct_{i}"]), True
    return ColumnStatistics(**fields)


def _histogram(row: dict[str, Any], i: int, count: int, bins: int,
               convert: Callable[[Any], Any]) -> tuple[HistogramBin, ...]:
    low, high = row[f"min_{i}"], row[f"max_{i}"]
    if low is None or count == 0:
        return ()
    low, high = float(low), float(high)
    if row[f"hist_{i}"] is None:
        # One value (or an infinite range): one bin holding everything counted.
        if low != high:
            return ()
        return (HistogramBin(convert(low), convert(high), count),)
    counts = [0] * bins
    for entry in row[f"hist_{i}"]:
        counts[int(entry["b"])] = int(entry["n"])
    step = (high - low) / bins
    # The edges numpy.linspace computes (j * step + min, the last one max).
    edges = [j * step + low for j in range(bins)] + [high]
    return tuple(HistogramBin(convert(edges[j]), convert(edges[j + 1]), counts[j])
                 for j in range(bins))


def _plain(value: object) -> object:
    return value


def _float(value: object) -> float | None:
    return None if value is None else float(value)


def _time_text(value: object) -> str | None:
    """Epoch microseconds (possibly interpolated) as ISO-8601 text, UTC."""
    return None if value is None else format_micros(round(float(value)))
