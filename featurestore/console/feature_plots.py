"""The plots on a feature's page, as SVG: its value distribution at the latest
materialization, and how its statistics moved over materializations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from featurestore.console.charts import histogram_svg, series_svg, top_values_svg
from featurestore.console.feature_page import FeaturePage, StatisticPoint
from featurestore.statistics.model import ColumnStatistics


@dataclass(frozen=True)
class Plot:
    """One plot: a heading and its SVG (markup the template inserts as is)."""

    title: str
    svg: Markup


def distribution_plot(page: FeaturePage) -> Plot | None:
    """The latest values' histogram (numbers, times) or most frequent values (strings,
    booleans); None when there are no statistics or no non-null values."""
    column = page.latest
    if column is None or column.count == column.nulls:
        return None
    name = f"{page.view}:{page.feature}"
    if column.histogram:
        title = f"Distribution of {name}"
        return Plot(title, Markup(histogram_svg(column.histogram, title=title)))
    if column.top:
        title = f"Most frequent values of {name}"
        return Plot(title, Markup(top_values_svg(column.top, title=title)))
    return None


_TRENDS: tuple[tuple[str, str, Callable[[ColumnStatistics], float | None]], ...] = (
    ("Mean", "mean", lambda column: column.mean),
    ("Median (p50)", "p50", lambda column: _quantile(column, "p50")),
    ("Null fraction", "null fraction", lambda column: column.null_fraction),
    ("Distinct values", "distinct", lambda column: column.distinct),
)


def trend_plots(page: FeaturePage) -> list[Plot]:
    """One line per statistic that the feature has, over its materializations (oldest
    first); none with fewer than two materializations."""
    if len(page.history) < 2:
        return []
    plots = []
    for title, label, pick in _TRENDS:
        points = [(_short(point), _number(pick(point.column))) for point in page.history]
        if all(value is None for _, value in points):
            continue
        heading = f"{title} over materializations"
        plots.append(Plot(heading, Markup(series_svg(points, title=heading, y_label=label))))
    return plots


def _quantile(column: ColumnStatistics, name: str) -> float | None:
    value = (column.quantiles or {}).get(name)
    return value if isinstance(value, int | float) else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _short(point: StatisticPoint) -> str:
    """`2024-01-31 00:00` from the materialization's end."""
    return point.end.replace("T", " ")[:16]
