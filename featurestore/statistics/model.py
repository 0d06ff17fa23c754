"""The typed result of a statistics pass: one `DatasetStatistics` of `ColumnStatistics`.

Frozen dataclasses, so a result can be kept and compared; `to_dict` is the JSON form
(`featurestore stats --json`, and what each materialization stores per view) and
`from_dict` reads it back; `render` is the text table of the command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

QUANTILE_LEVELS: tuple[tuple[str, float], ...] = (
    ("p1", 0.01), ("p5", 0.05), ("p10", 0.10), ("p25", 0.25), ("p50", 0.50),
    ("p75", 0.75), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99),
)
"""The quantiles reported for numeric and timestamp columns, by name."""

Value = float | str | bool
"""A statistic's value: a number, or ISO-8601 text for timestamps, or a string value."""


@dataclass(frozen=True)
class HistogramBin:
    """One equal-width bin, `[low, high)` (the last bin also holds `high`)."""

    low: float | str
    high: float | str
    count: int


@dataclass(frozen=True)
class TopValue:
    """One of the most frequent values of a string or boolean column."""

    value: str | bool
    count: int
    fraction: float
    """Of the column's non-null values."""


@dataclass(frozen=True)
class ColumnStatistics:
    """Statistics of one column (or feature).

    Nulls include NaN in floating-point columns. `std` is the population standard
    deviation (ddof 0). Which statistics are set depends on `kind`: numeric columns have
    them all but `top`; timestamps have no mean or std; strings and booleans have `top`
    instead of quantiles and a histogram (booleans also have `mean`, the fraction true);
    other types only counts.

    Attributes:
        distinct: the number of distinct non-null values; exact when `distinct_exact`
            (strings and booleans, counted in full), else a HyperLogLog estimate.
    """

    name: str
    kind: str
    type: str
    count: int
    nulls: int
    null_fraction: float
    min: Value | None = None
    max: Value | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: Mapping[str, float | str] | None = None
    histogram: tuple[HistogramBin, ...] = ()
    top: tuple[TopValue, ...] = ()
    distinct: int | None = None
    distinct_exact: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "name": self.name, "kind": self.kind, "type": self.type, "count": self.count,
            "nulls": self.nulls, "null_fraction": self.null_fraction, "min": self.min,
            "max": self.max, "mean": self.mean, "std": self.std,
            "quantiles": dict(self.quantiles) if self.quantiles is not None else None,
            "histogram": [{"low": b.low, "high": b.high, "count": b.count}
                          for b in self.histogram],
            "top": [{"value": t.value, "count": t.count, "fraction": t.fraction}
                    for t in self.top],
            "distinct": self.distinct, "distinct_exact": self.distinct_exact,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnStatistics:
        """Read the JSON form back."""
        fields = dict(data)
        fields["histogram"] = tuple(HistogramBin(**b) for b in data.get("histogram", ()))
        fields["top"] = tuple(TopValue(**t) for t in data.get("top", ()))
        return cls(**fields)


@dataclass(frozen=True)
class DatasetStatistics:
    """Statistics of every profiled column of one input.

    Attributes:
        target: what was profiled, for people (`source 'transactions'`).
        rows: rows in the input.
        quantile_method: "exact" (linear interpolation, as pandas) or "approximate"
            (t-digest); see docs/decisions.md, "Statistics", for the rule.
        std_ddof: the delta degrees of freedom of `std`: always 0 (population).
        histogram_bins: bins of each numeric histogram (equal width, min to max).
        top_k: most frequent values kept per string or boolean column.
    """

    target: str
    rows: int
    columns: tuple[ColumnStatistics, ...]
    quantile_method: str
    histogram_bins: int
    top_k: int
    std_ddof: int = 0

    def column(self, name: str) -> ColumnStatistics:
        """The statistics of column `name`.

        Raises:
            KeyError: no such column was profiled.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what `featurestore stats --json` prints)."""
        return {"target": self.target, "rows": self.rows,
                "quantile_method": self.quantile_method, "std_ddof": self.std_ddof,
                "histogram_bins": self.histogram_bins, "top_k": self.top_k,
                "columns": [column.to_dict() for column in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetStatistics:
        """Read the JSON form back."""
        fields = dict(data)
        fields["columns"] = tuple(ColumnStatistics.from_dict(c) for c in data["columns"])
        return cls(**fields)

    def render(self) -> str:
        """A text table: one summary line per column, then quantiles, histograms and
        most frequent values."""
        lines = [f"{self.target}: {self.rows:,} rows, {len(self.columns)} columns "
                 f"(quantiles {self.quantile_method}; std is the population std, ddof 0)"]
        header = ("column", "kind", "count", "nulls", "null%", "min", "max", "mean", "std",
                  "distinct")
        rows = [header] + [_summary_row(column) for column in self.columns]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines += ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
                  for row in rows]
        for column in self.columns:
            lines += _details(column)
        return "\n".join(lines)


def _summary_row(column: ColumnStatistics) -> tuple[str, ...]:
    distinct = "" if column.distinct is None else (
        f"{column.distinct:,}" if column.distinct_exact else f"~{column.distinct:,}")
    return (column.name, column.kind, f"{column.count:,}", f"{column.nulls:,}",
            f"{100 * column.null_fraction:.1f}", format_value(column.min),
            format_value(column.max), format_value(column.mean), format_value(column.std),
            distinct)


def _details(column: ColumnStatistics) -> list[str]:
    lines: list[str] = []
    if column.quantiles:
        shown = ", ".join(f"{name} {format_value(value)}"
                          for name, value in column.quantiles.items())
        lines.append(f"  {column.name} quantiles: {shown}")
    if column.histogram:
        largest = max(b.count for b in column.histogram) or 1
        lines.append(f"  {column.name} histogram:")
        for i, b in enumerate(column.histogram):
            bar = "#" * round(20 * b.count / largest)
            close = "]" if i == len(column.histogram) - 1 else ")"  # the last bin is closed
            lines.append(f"    [{format_value(b.low)}, {format_value(b.high)}{close} "
                         f"{b.count:,} {bar}")
    if column.top:
        shown = ", ".join(f"{format_value(t.value)} {t.count:,} ({100 * t.fraction:.1f}%)"
                          for t in column.top)
        lines.append(f"  {column.name} top: {shown}")
    return lines


def format_value(value: Value | None) -> str:
    """A statistic for the text table: numbers to 6 significant digits, '' for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
