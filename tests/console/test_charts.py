"""The statistics charts: well-formed, accessible SVG whose shapes match the data."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from featurestore.console.charts import histogram_svg, series_svg, top_values_svg
from featurestore.statistics.model import HistogramBin, TopValue

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>&"'
CSS = Path(__file__).parents[2] / "featurestore" / "console" / "assets" / "charts.css"


def parse(svg: str) -> ET.Element:
    """The root element, after checking it is a labelled, scalable chart."""
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("viewBox", "").startswith("0 0 480 ")
    title = root.find(f"{SVG}title")
    assert title is not None
    assert root.get("aria-labelledby") == title.get("id")
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", title.get("id", ""))
    assert "style=" not in svg
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}rect") if e.get("class") == "chart-bar"]


def labels(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{SVG}text") if e.get("class") == "chart-label"]


def tooltip(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None
    return title.text or ""


def numeric_bins(counts: list[float], low: float = 0.0, width: float = 10.0) -> list[HistogramBin]:
    return [HistogramBin(low + i * width, low + (i + 1) * width, c) for i, c in enumerate(counts)]


def test_histogram_has_one_bar_per_bin_with_heights_proportional_to_counts() -> None:
    root = parse(histogram_svg(numeric_bins([4, 0, 2, 8]), title="amount"))
    heights = [float(b.get("height", "nan")) for b in bars(root)]
    assert len(heights) == 4
    assert heights[1] == 0
    assert heights[0] == pytest.approx(heights[3] / 2, abs=0.01)
    assert heights[2] == pytest.approx(heights[3] / 4, abs=0.01)
    # Bars stand on the same baseline and keep the bins' order from left to right.
    assert len({round(float(b.get("y", "0")) + float(b.get("height", "0")), 2)
                for b in bars(root)}) == 1
    xs = [float(b.get("x", "nan")) for b in bars(root)]
    assert xs == sorted(xs)


def test_histogram_tooltips_give_the_bin_and_its_count() -> None:
    root = parse(histogram_svg(numeric_bins([1500, 3]), title="amount"))
    assert [tooltip(b) for b in bars(root)] == ["[0, 10): 1,500", "[10, 20]: 3"]


def test_histogram_axis_shows_min_middle_max_and_the_largest_count() -> None:
    root = parse(histogram_svg(numeric_bins([1, 2, 3, 4], width=300.0), title="amount"))
    assert labels(root) == ["4", "0", "0", "600", "1.2k"]


@pytest.mark.parametrize(("high", "shown"), [
    (0.035, "0.035"), (3.4e6, "3.4e6"), (-2.5e-5, "-2.5e-5"), (999.96, "1k"), (12.5, "12.5"),
    (999_999.0, "1e6"), (1e6, "1e6"),
])
def test_histogram_edges_are_formatted_compactly(high: float, shown: str) -> None:
    root = parse(histogram_svg([HistogramBin(0.0, high, 7)], title="x"))
    assert labels(root)[-1] == shown


def test_timestamp_edges_show_their_date_or_time_within_one_day() -> None:
    days = [HistogramBin("2024-01-01T00:00:00", "2024-01-03T00:00:00", 5),
            HistogramBin("2024-01-03T00:00:00", "2024-01-05T00:00:00", 1)]
    root = parse(histogram_svg(days, title="event time"))
    assert labels(root)[2:] == ["2024-01-01", "2024-01-03", "2024-01-05"]
    assert tooltip(bars(root)[0]) == "[2024-01-01T00:00:00, 2024-01-03T00:00:00): 5"
    hours = [HistogramBin("2024-01-01T08:00:00", "2024-01-01T20:30:00", 5)]
    assert labels(parse(histogram_svg(hours, title="t")))[2:] == ["08:00", "20:30"]


def test_one_bin_zero_counts_and_huge_counts_draw() -> None:
    one = parse(histogram_svg([HistogramBin(5.0, 5.0, 12)], title="constant"))
    assert len(bars(one)) == 1
    assert float(bars(one)[0].get("height", "0")) > 0
    zeros = parse(histogram_svg(numeric_bins([0, 0, 0]), title="empty bins"))
    assert [float(b.get("height", "nan")) for b in bars(zeros)] == [0, 0, 0]
    huge = parse(histogram_svg(numeric_bins([10**15, 5 * 10**14]), title="huge"))
    heights = [float(b.get("height", "nan")) for b in bars(huge)]
    assert heights[1] == pytest.approx(heights[0] / 2, abs=0.01)
    assert "1e15" in labels(huge)
    near_limit = parse(histogram_svg(numeric_bins([10**308, 5 * 10**307]), title="limit"))
    assert [float(b.get("height", "nan")) for b in bars(near_limit)] == [160, 80]
    top = parse(top_values_svg([TopValue("a", 10**308, 1.0)], title="limit"))
    assert float(bars(top)[0].get("width", "nan")) == 280


def test_nan_and_infinite_inputs_leave_the_chart_well_formed() -> None:
    bins = [HistogramBin(math.nan, 1.0, 3), HistogramBin(1.0, math.inf, math.nan),
            HistogramBin(2.0, 3.0, math.inf), HistogramBin(3.0, 4.0, -2)]
    root = parse(histogram_svg(bins, title="broken"))
    heights = [float(b.get("height", "nan")) for b in bars(root)]
    assert heights[0] > 0 and heights[1:] == [0, 0, 0]  # only the finite count is drawn
    for element in list(root.iter())[1:]:  # the root's width is "100%"
        for name in ("x", "y", "width", "height", "x1", "y1", "x2", "y2"):
            if name in element.attrib:
                assert math.isfinite(float(element.attrib[name])), element.attrib
    assert tooltip(bars(root)[1]) == "[1, inf): nan"
    series = parse(series_svg([("a", math.inf), ("b", 1.0), ("c", -math.inf), ("d", 2.0)],
                              title="s", y_label="y"))
    assert len(list(series.iter(f"{SVG}circle"))) == 2
    extreme = parse(series_svg([("a", 1e308), ("b", -1e308)], title="s", y_label="y"))
    assert [float(c.get("cy", "nan")) for c in extreme.iter(f"{SVG}circle")] == [16, 176]


def test_empty_histogram_and_top_values_say_no_data() -> None:
    for svg in (histogram_svg([], title="h"), top_values_svg([], title="t")):
        root = parse(svg)
        assert not bars(root)
        assert [e.text for e in root.iter(f"{SVG}text")] == ["no data"]


def test_user_text_is_escaped_everywhere() -> None:
    svgs = [histogram_svg([HistogramBin(HOSTILE, HOSTILE, 1)], title=HOSTILE),
            top_values_svg([TopValue(HOSTILE, 3, 1.0)], title=HOSTILE),
            series_svg([(HOSTILE, 1.0), (HOSTILE, 2.0)], title=HOSTILE, y_label=HOSTILE)]
    for svg in svgs:
        assert "<script" not in svg
        root = parse(svg)
        assert root.find(f"{SVG}title").text == HOSTILE  # type: ignore[union-attr]
        texts = [e.text or "" for e in root.iter() if e.text]
        assert any(HOSTILE in text for text in texts[1:])


def test_ids_are_deterministic_and_differ_between_charts() -> None:
    bins = numeric_bins([1, 2])
    first = histogram_svg(bins, title="a")
    assert first == histogram_svg(bins, title="a")
    ids = {parse(svg).get("aria-labelledby") for svg in (
        first, histogram_svg(bins, title="b"), histogram_svg(numeric_bins([1, 3]), title="a"),
        histogram_svg(bins, title="a", id_prefix="view 1/amount"),
        series_svg([("t", 1.0)], title="a", y_label="mean"))}
    assert len(ids) == 5


def test_top_values_draw_labelled_bars_proportional_to_counts() -> None:
    top = [TopValue("card", 1200, 0.6), TopValue(True, 600, 0.3), TopValue("", 0, 0.0)]
    root = parse(top_values_svg(top, title="method"))
    widths = [float(b.get("width", "nan")) for b in bars(root)]
    assert widths[1] == pytest.approx(widths[0] / 2, abs=0.01)
    assert widths[2] == 0
    assert labels(root) == ["card", "1,200", "true", "600", '""', "0"]
    assert tooltip(bars(root)[0]) == "card: 1,200 (60.0%)"


def test_long_top_values_are_shortened_but_whole_in_the_tooltip() -> None:
    value = "a-very-long-merchant-category-name"
    root = parse(top_values_svg([TopValue(value, 1, 1.0)], title="category"))
    assert labels(root)[0] == "a-very-long-merch…"
    assert tooltip(bars(root)[0]).startswith(value)


def path_moves(root: ET.Element) -> list[str]:
    line = root.find(f"{SVG}path")
    assert line is not None and line.get("class") == "chart-line"
    return re.findall(r"[ML]", line.get("d", ""))


def test_series_breaks_the_line_at_missing_values() -> None:
    points = [("01-01", 1.0), ("01-02", 2.0), ("01-03", None), ("01-04", math.nan),
              ("01-05", 3.0), ("01-06", 2.5)]
    root = parse(series_svg(points, title="mean amount", y_label="mean"))
    assert path_moves(root) == ["M", "L", "M", "L"]
    dots = list(root.iter(f"{SVG}circle"))
    assert [tooltip(d) for d in dots] == ["01-01: 1", "01-02: 2", "01-05: 3", "01-06: 2.5"]
    ys = [float(d.get("cy", "nan")) for d in dots]
    assert ys[2] < ys[3] < ys[1] < ys[0]  # higher values sit higher
    shown = labels(root)
    assert shown[:3] == ["3", "1", "mean"]
    assert shown[3] == "01-01" and shown[-1] == "01-06"


def test_series_of_one_point_draws_a_dot() -> None:
    root = parse(series_svg([("today", 42.0)], title="rows", y_label="rows"))
    assert path_moves(root) == ["M"]
    assert len(list(root.iter(f"{SVG}circle"))) == 1
    assert "today" in labels(root)


@pytest.mark.parametrize("points", [[], [("a", None), ("b", math.nan), ("c", math.inf)]])
def test_series_without_values_is_an_empty_frame(points: list[tuple[str, float | None]]) -> None:
    root = parse(series_svg(points, title="nothing", y_label="mean"))
    assert not list(root.iter(f"{SVG}circle"))
    assert [e.text for e in root.iter(f"{SVG}text")] == ["no data"]


def test_series_x_labels_keep_first_and_last_and_fit() -> None:
    points = [(f"2024-01-{day:02d} 10:00", float(day)) for day in range(1, 31)]
    root = parse(series_svg(points, title="mean", y_label="mean"))
    x_labels = labels(root)[3:]
    assert 2 <= len(x_labels) < len(points)
    assert x_labels[0] == "2024-01-01 10:00" and x_labels[-1] == "2024-01-30 10:00"
    xs = [float(e.get("x", "nan")) for e in root.iter(f"{SVG}text")][3:]
    assert min(b - a for a, b in itertools.pairwise(xs)) > 6.5 * len(x_labels[0])


def test_every_class_written_has_a_colour_in_the_stylesheet() -> None:
    css = CSS.read_text()
    svgs = [histogram_svg(numeric_bins([1]), title="h"), top_values_svg([], title="t"),
            series_svg([("a", 1.0)], title="s", y_label="y")]
    written = {name for svg in svgs for attribute in re.findall(r'class="([^"]+)"', svg)
               for name in attribute.split()}
    styled = {"chart", "chart-bar", "chart-axis", "chart-line", "chart-point", "chart-label",
              "chart-empty"}
    kinds = {"chart-histogram", "chart-top-values", "chart-series"}  # hooks for the page
    assert written == styled | kinds
    for name in styled:
        assert re.search(rf"\.{name}\b[^{{]*\{{", css), name
    assert "var(--accent, #2563eb)" in css
