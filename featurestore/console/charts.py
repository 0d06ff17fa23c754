"""Server-side SVG charts of statistics: histograms, most frequent values, series over runs.

Each function returns the text of one complete `<svg>` element, drawn on a fixed-width
coordinate system (`viewBox`) with `width="100%"`, so it scales to the page. Colors come
only from CSS classes (`assets/charts.css`), so light and dark themes need no new markup.
Output is deterministic: the same input gives the same text, including the id of the
`<title>` the chart is labelled by, which is a hash of the kind, title and data (pass
`id_prefix` to tell apart two identical charts on one page).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from html import escape

from featurestore.statistics.model import HistogramBin, TopValue

WIDTH = 480  # every chart's coordinate width; the page scales it
HEIGHT = 200  # of histograms and series; the most-frequent-values chart grows with rows
LEFT, RIGHT, TOP, BOTTOM = 44.0, 12.0, 16.0, 24.0  # margins, room for the axis labels
ROW_HEIGHT = 20.0  # one row of the most-frequent-values chart
LABEL_WIDTH = 120.0  # room left of the most-frequent-values bars for the value text
CHAR_WIDTH = 6.5  # a generous average advance at the 11-unit font, to decide what fits
MAX_LABEL_CHARS = 18  # longer labels are cut; the full text stays in the tooltip


def histogram_svg(bins: Sequence[HistogramBin], *, title: str, id_prefix: str = "") -> str:
    """A bar chart of equal-width bins, with min, middle and max edges on the x-axis.

    Args:
        bins: the bins in order; edges are numbers, or ISO-8601 text for timestamps
            (shown by their date part).
        title: the accessible name of the chart.
        id_prefix: optional text to make the title id unique between identical charts.

    Returns:
        The `<svg>` element; each bar has a `<title>` tooltip "[low, high): count".
    """
    svg_id = _chart_id("histogram", title, bins, id_prefix)
    if not bins:
        return _empty_chart(svg_id, title, "histogram")
    counts = [_finite_count(b.count) for b in bins]
    peak = max(counts)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / len(bins)
    gap = 1.0 if step > 4 else 0.0  # keep thin bars visible rather than separated
    parts = [*_axes(), _text(LEFT - 4, TOP + 4, _count_label(peak), "end"),
             _text(LEFT - 4, HEIGHT - BOTTOM, "0", "end")]
    for i, (b, count) in enumerate(zip(bins, counts, strict=True)):
        height = plot_h * (count / peak) if peak else 0.0
        closing = "]" if i == len(bins) - 1 else ")"  # the last bin also holds `high`
        tip = f"[{_edge_text(b.low)}, {_edge_text(b.high)}{closing}: {_count_label(b.count)}"
        parts.append(
            f'<rect class="chart-bar" x="{_n(LEFT + i * step + gap / 2)}" '
            f'y="{_n(HEIGHT - BOTTOM - height)}" width="{_n(step - gap)}" '
            f'height="{_n(height)}"><title>{escape(tip)}</title></rect>')
    edges = [b.low for b in bins] + [bins[-1].high]
    for index, anchor in _edge_ticks(len(bins)):
        label = _edge_label(edges[index], edges[0], edges[-1])
        parts.append(_text(LEFT + index * step, HEIGHT - BOTTOM + 14, label, anchor))
    return _svg(svg_id, title, HEIGHT, "histogram", parts)


def top_values_svg(top: Sequence[TopValue], *, title: str, id_prefix: str = "") -> str:
    """Horizontal bars of the most frequent values, each with its value and count.

    Args:
        top: the values, most frequent first (strings or booleans).
        title: the accessible name of the chart.
        id_prefix: optional text to make the title id unique between identical charts.

    Returns:
        The `<svg>` element; its height grows with the number of values.
    """
    svg_id = _chart_id("top", title, top, id_prefix)
    if not top:
        return _empty_chart(svg_id, title, "top-values")
    height = len(top) * ROW_HEIGHT + 8
    counts = [_finite_count(t.count) for t in top]
    peak = max(counts)
    bar_room = WIDTH - LABEL_WIDTH - 80  # leaves room for the count after the longest bar
    parts: list[str] = []
    for i, (entry, count) in enumerate(zip(top, counts, strict=True)):
        y = 4 + i * ROW_HEIGHT
        length = bar_room * (count / peak) if peak else 0.0
        value = _value_text(entry.value)
        tip = f"{value}: {_count_label(entry.count)} ({_percent(entry.fraction)})"
        parts.append(_text(LABEL_WIDTH - 6, y + 14, _shorten(value), "end"))
        parts.append(
            f'<rect class="chart-bar" x="{_n(LABEL_WIDTH)}" y="{_n(y + 3)}" '
            f'width="{_n(length)}" height="{_n(ROW_HEIGHT - 6)}">'
            f"<title>{escape(tip)}</title></rect>")
        parts.append(_text(LABEL_WIDTH + length + 4, y + 14, _count_label(entry.count)))
    return _svg(svg_id, title, height, "top-values", parts)


def series_svg(points: Sequence[tuple[str, float | None]], *, title: str, y_label: str,
               id_prefix: str = "") -> str:
    """A line of one statistic over successive runs; a missing value breaks the line.

    Args:
        points: `(x label, value)` in time order; None, NaN or infinity is a gap.
        title: the accessible name of the chart.
        y_label: what the values are, written above the y-axis.
        id_prefix: optional text to make the title id unique between identical charts.

    Returns:
        The `<svg>` element: an empty frame saying "no data" when no value is finite.
    """
    svg_id = _chart_id("series", title, (y_label, tuple(points)), id_prefix)
    values = [_finite_value(value) for _, value in points]
    known = [v for v in values if v is not None]
    if not known:
        return _empty_chart(svg_id, title, "series")
    low, high = min(known), max(known)
    if low == high:  # a flat line sits off the axis, but a count or fraction stays >= 0
        pad = max(1.0, abs(low) / 10)
        low, high = (max(0.0, low - pad) if low >= 0 else low - pad), high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / (len(points) - 1) if len(points) > 1 else 0.0
    xs = [LEFT + i * step if step else LEFT + plot_w / 2 for i in range(len(points))]
    # Halved so that the range of values near the float limits does not overflow.
    ys = [None if v is None else TOP + (high / 2 - v / 2) / (high / 2 - low / 2) * plot_h
          for v in values]
    parts = [*_axes(), _text(LEFT - 4, TOP + 4, _compact(high), "end"),
             _text(LEFT - 4, HEIGHT - BOTTOM, _compact(low), "end"),
             _text(LEFT, TOP - 6, _shorten(y_label, 60))]
    path, pen_down = [], False
    for x, y in zip(xs, ys, strict=True):
        if y is not None:
            path.append(f"{'L' if pen_down else 'M'}{_n(x)} {_n(y)}")
        pen_down = y is not None
    parts.append(f'<path class="chart-line" fill="none" d="{" ".join(path)}"/>')
    for (label, _), value, x, y in zip(points, values, xs, ys, strict=True):
        if value is not None and y is not None:
            tip = f"{label}: {value:.6g}"
            parts.append(f'<circle class="chart-point" cx="{_n(x)}" cy="{_n(y)}" r="3">'
                         f"<title>{escape(tip)}</title></circle>")
    for index, anchor in _x_ticks([label for label, _ in points]):
        parts.append(_text(xs[index], HEIGHT - BOTTOM + 14, _shorten(points[index][0]), anchor))
    return _svg(svg_id, title, HEIGHT, "series", parts)


def _svg(svg_id: str, title: str, height: float, kind: str, parts: list[str]) -> str:
    """The root element around `parts`, labelled by its `<title>`."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" role="img" '
            f'aria-labelledby="{svg_id}" viewBox="0 0 {WIDTH} {_n(height)}" width="100%" '
            f'preserveAspectRatio="xMidYMid meet" font-size="11">'
            f'<title id="{svg_id}">{escape(title)}</title>{"".join(parts)}</svg>')


def _empty_chart(svg_id: str, title: str, kind: str) -> str:
    """A frame with "no data" in it, for charts with nothing to draw."""
    frame = (f'<rect class="chart-axis" fill="none" x="{_n(LEFT)}" y="{_n(TOP)}" '
             f'width="{_n(WIDTH - LEFT - RIGHT)}" height="{_n(HEIGHT - TOP - BOTTOM)}"/>')
    text = (f'<text class="chart-empty" x="{_n(WIDTH / 2)}" y="{_n(HEIGHT / 2)}" '
            f'text-anchor="middle">no data</text>')
    return _svg(svg_id, title, HEIGHT, kind, [frame, text])


def _axes() -> list[str]:
    """The x and y axis lines of the plot area."""
    bottom = HEIGHT - BOTTOM
    return [f'<line class="chart-axis" x1="{_n(LEFT)}" y1="{_n(bottom)}" '
            f'x2="{_n(WIDTH - RIGHT)}" y2="{_n(bottom)}"/>',
            f'<line class="chart-axis" x1="{_n(LEFT)}" y1="{_n(TOP)}" '
            f'x2="{_n(LEFT)}" y2="{_n(bottom)}"/>']


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    """An escaped label."""
    return (f'<text class="chart-label" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}">'
            f"{escape(text)}</text>")


def _chart_id(kind: str, title: str, data: object, id_prefix: str) -> str:
    """A valid XML id, the same for the same chart, different for different charts."""
    digest = hashlib.sha256(repr((kind, title, data)).encode()).hexdigest()[:12]
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", id_prefix)
    return f"chart-{prefix}-{digest}" if prefix else f"chart-{digest}"


def _edge_ticks(bin_count: int) -> list[tuple[int, str]]:
    """Edge indexes to label (first, middle, last) with their text anchors."""
    ticks = [(0, "start"), (bin_count, "end")]
    if bin_count >= 2:
        ticks.insert(1, (bin_count // 2, "middle"))
    return ticks


def _x_ticks(labels: list[str]) -> list[tuple[int, str]]:
    """Point indexes to label: first and last, and evenly spaced ones between that fit."""
    if len(labels) == 1:
        return [(0, "middle")]
    widest = CHAR_WIDTH * max(len(_shorten(label)) for label in labels) + 8
    # An end label is anchored at its edge, so the gap to its neighbour needs 1.5 labels.
    fit = int((WIDTH - LEFT - RIGHT) // (1.5 * widest)) + 1
    shown = max(2, min(len(labels), fit))
    indexes = sorted({round(j * (len(labels) - 1) / (shown - 1)) for j in range(shown)})
    last = len(labels) - 1
    return [(i, "start" if i == 0 else "end" if i == last else "middle") for i in indexes]


def _edge_label(edge: float | str, first: float | str, last: float | str) -> str:
    """A compact axis label: a number, or the date of a timestamp (its time if one day)."""
    if isinstance(edge, str):
        date, _, time = edge.partition("T")
        same_day = str(first).partition("T")[0] == str(last).partition("T")[0]
        return time[:5] if same_day and time else date
    return _compact(edge)


def _edge_text(edge: float | str) -> str:
    """A bin edge in full enough for a tooltip."""
    return edge if isinstance(edge, str) else f"{_as_float(edge):.6g}"


def _compact(value: float) -> str:
    """A short number: 0.035, 12.5, 1.2k, 3.4e6, 2.1e-5."""
    value = _as_float(value)
    if not math.isfinite(value) or value == 0:
        return str(value) if value else "0"
    if abs(value) < 1e-3 or abs(value) >= 1e6:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    scaled, suffix = (value / 1e3, "k") if abs(value) >= 1e3 else (value, "")
    text = f"{scaled:.3g}"
    if abs(float(text)) >= 1e3:  # rounding reached the next unit: 999.96 is 1k
        return _compact(float(text) * (1e3 if suffix else 1.0))
    return text + suffix


def _count_label(count: float) -> str:
    """A count with thousands separators, compact from a million on."""
    number = _as_float(count)
    if not math.isfinite(number) or number != int(number):
        return str(count)
    return _compact(number) if abs(number) >= 1e6 else f"{int(number):,}"


def _percent(fraction: float) -> str:
    number = _as_float(fraction)
    return f"{number:.1%}" if math.isfinite(number) else str(fraction)


def _value_text(value: str | bool) -> str:
    """A frequent value as shown: booleans lower case, the empty string quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value != "" else '""'


def _shorten(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _as_float(value: object) -> float:
    """`value` as a float; anything that is not a number is NaN."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _finite_value(value: object) -> float | None:
    number = _as_float(value) if value is not None else math.nan
    return number if math.isfinite(number) else None


def _finite_count(count: object) -> float:
    """A count to scale a bar by: NaN, infinite or negative counts draw no bar."""
    number = _as_float(count)
    return number if math.isfinite(number) and number > 0 else 0.0


def _n(number: float) -> str:
    """A coordinate with two decimals at most, so output is short and stable."""
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
