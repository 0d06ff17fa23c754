"""The lineage graph drawn as SVG on the server: no script, every node a link.

Layout is layered: one column per non-empty layer, boxes stacked at even spacing and
centred against the tallest column. An edge that skips a column runs through a thin
lane of its own there (shared by the edges of one node), never through a box. Order
within a column comes from a downward and an upward barycentre pass, to cut crossings;
links come out column by column, top to bottom, so the tab order follows the picture.
Colours, fonts and focus and hover states live in `assets/lineage.css`; this module
writes classes only.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from featurestore.console.lineage import KINDS, LineageEdge, LineageGraph, LineageNode

HEADINGS = {"source": "Sources", "view": "Feature views", "feature": "Features",
            "request_view": "Request views", "transform": "Transforms", "service": "Services"}
"""Column headings by node kind."""

CHAR_WIDTH = 8  # px per character of a 13px label: measured ~8 for DejaVu Sans, less elsewhere
HEADING_CHAR_WIDTH = 9  # headings are bold
MAX_LABEL_CHARS = 32
BOX_HEIGHT = 28
BOX_PADDING = 10
TEXT_BASELINE = 18  # from the box top: 13px text centred in a 28px box
WAYPOINT_HEIGHT = 4  # the lane an edge takes through a column it crosses
ROW_GAP = 12
COLUMN_GAP = 88  # room for the edge curves between columns
MARGIN = 16
HEADING_HEIGHT = 32


@dataclass(frozen=True)
class _Slot:
    """A place in a column: a node, or a waypoint where edges from one node cross the
    column (so long edges run in their own lane instead of through other boxes)."""

    id: str
    node: LineageNode | None

    @property
    def height(self) -> int:
        return BOX_HEIGHT if self.node is not None else WAYPOINT_HEIGHT


@dataclass(frozen=True)
class _Box:
    slot: _Slot
    x: int
    y: int
    width: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def middle(self) -> int:
        return self.y + self.slot.height // 2


def render_lineage_svg(graph: LineageGraph, href: Callable[[LineageNode], str],
                       highlight: str | None = None) -> str:
    """The graph as a standalone `<svg>` element.

    Args:
        graph: what to draw.
        href: the link of each node's page.
        highlight: a node id to mark, with its edges (class `lineage-highlight`).

    Returns:
        SVG text whose width is the content's, so a wide graph scrolls in its container.

    Raises:
        InputError: `highlight` is not a node of the graph.
    """
    if highlight is not None:
        graph.node(highlight)
    columns, routes = _columns(graph)
    _order(columns, routes)
    boxes, headings, width, height = _place(columns)
    # Marked edges last, so they are drawn over the lanes they share.
    edges = sorted(graph.edges, key=lambda e: highlight in (e.source_id, e.target_id))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" role="group" '
        f'aria-label="Lineage graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        "<desc>Data flows left to right: each line joins a definition to one that "
        "reads it.</desc>",
        *headings,
        '<g class="lineage-edges" aria-hidden="true">',
        *(_edge([boxes[slot] for slot in routes[edge]],
                highlight in (edge.source_id, edge.target_id)) for edge in edges),
        "</g>",
        *(_node(box, box.slot.node, href(box.slot.node), box.slot.id == highlight)
          for box in boxes.values() if box.slot.node is not None),
        "</svg>",
    ]
    return "\n".join(parts)


def _columns(graph: LineageGraph) -> tuple[list[list[_Slot]], dict[LineageEdge, list[str]]]:
    """The non-empty layers as columns of slots, and each edge's route of slot ids.

    An edge that skips columns gets a waypoint in each; edges from one node share
    their waypoints, so a feature read by three services takes one lane, not three.
    """
    kinds = [kind for kind in KINDS if any(node.kind == kind for node in graph.nodes)]
    place = {node.id: kinds.index(node.kind) for node in graph.nodes}
    columns: list[list[_Slot]] = [[] for _ in kinds]
    for node in graph.nodes:
        columns[place[node.id]].append(_Slot(node.id, node))
    waypoints: set[str] = set()
    routes: dict[LineageEdge, list[str]] = {}
    for edge in graph.edges:
        route = [edge.source_id]
        for column in range(place[edge.source_id] + 1, place[edge.target_id]):
            waypoint = f"{edge.source_id} @{column}"
            if waypoint not in waypoints:
                waypoints.add(waypoint)
                columns[column].append(_Slot(waypoint, None))
            route.append(waypoint)
        routes[edge] = [*route, edge.target_id]
    return columns, routes


def _order(columns: list[list[_Slot]], routes: dict[LineageEdge, list[str]]) -> None:
    """Reorder each column in place to cut crossings: file order first, then one pass
    left to right by upstream neighbours and one right to left by downstream ones."""
    upstream: dict[str, list[str]] = {}
    downstream: dict[str, list[str]] = {}
    for route in routes.values():
        for before, after in itertools.pairwise(route):
            upstream.setdefault(after, []).append(before)
            downstream.setdefault(before, []).append(after)
    passes = [(range(1, len(columns)), upstream),
              (range(len(columns) - 2, -1, -1), downstream)]
    for indices, neighbours in passes:
        for index in indices:
            _sort_by_barycentre(columns[index], neighbours, _middles(columns))


def _sort_by_barycentre(column: list[_Slot], neighbours: dict[str, list[str]],
                        middles: dict[str, float]) -> None:
    def centre(slot: _Slot) -> float:
        linked = [middles[other] for other in neighbours.get(slot.id, ())]
        # A slot linked to nothing on this side keeps its place.
        return sum(linked) / len(linked) if linked else middles[slot.id]

    column.sort(key=centre)  # stable: ties keep file order


def _tops(columns: list[list[_Slot]]) -> list[list[float]]:
    """The top of each slot: stacked with even gaps, each column centred on the tallest."""
    heights = [sum(slot.height + ROW_GAP for slot in column) - ROW_GAP for column in columns]
    tallest = max(heights, default=0)
    tops = []
    for column, height in zip(columns, heights, strict=True):
        y = MARGIN + HEADING_HEIGHT + (tallest - height) / 2
        tops.append([])
        for slot in column:
            tops[-1].append(y)
            y += slot.height + ROW_GAP
    return tops


def _middles(columns: list[list[_Slot]]) -> dict[str, float]:
    return {slot.id: top + slot.height / 2
            for column, tops in zip(columns, _tops(columns), strict=True)
            for slot, top in zip(column, tops, strict=True)}


def _label(node: LineageNode) -> str:
    if len(node.label) <= MAX_LABEL_CHARS:
        return node.label
    return node.label[: MAX_LABEL_CHARS - 1] + "…"


def _box_width(node: LineageNode) -> int:
    return len(_label(node)) * CHAR_WIDTH + 2 * BOX_PADDING


def _place(columns: list[list[_Slot]]) -> tuple[dict[str, _Box], list[str], int, int]:
    """Boxes by slot id, heading elements, and the drawing's width and height."""
    boxes: dict[str, _Box] = {}
    headings: list[str] = []
    x = MARGIN
    for column, tops in zip(columns, _tops(columns), strict=True):
        nodes = [slot.node for slot in column if slot.node is not None]
        heading = HEADINGS[nodes[0].kind]
        width = max(len(heading) * HEADING_CHAR_WIDTH, *(_box_width(node) for node in nodes))
        headings.append(f'<text class="lineage-heading" x="{x}" y="{MARGIN + 14}">'
                        f"{escape(heading)}</text>")
        for slot, top in zip(column, tops, strict=True):
            # A waypoint spans the column, so its edges pass straight through.
            own = _box_width(slot.node) if slot.node is not None else width
            boxes[slot.id] = _Box(slot, x, round(top), own)
        x += width + COLUMN_GAP
    width = max(x - COLUMN_GAP + MARGIN, 2 * MARGIN)
    bottom = max((box.y + box.slot.height for box in boxes.values()), default=0)
    height = max(bottom, MARGIN + HEADING_HEIGHT) + MARGIN
    return boxes, headings, width, height


def _edge(route: list[_Box], marked: bool) -> str:
    """A path through the route: a cubic Bézier from the right side of one box to the
    left side of the next, and a straight run through each waypoint."""
    x, y = route[0].right, route[0].middle
    steps = [f"M{x},{y}"]
    for box in route[1:]:
        bend = (box.x - x) // 2
        steps.append(f"C{x + bend},{y} {box.x - bend},{box.middle} {box.x},{box.middle}")
        x, y = box.right, box.middle
        if box.slot.node is None:
            steps.append(f"L{x},{y}")
    css = "lineage-edge lineage-highlight" if marked else "lineage-edge"
    return f'<path class="{css}" d="{" ".join(steps)}"/>'


def _node(box: _Box, node: LineageNode, link: str, marked: bool) -> str:
    css = f"lineage-node lineage-{node.kind.replace('_', '-')}"
    if node.fit_state is not None:
        css += f" lineage-fit-{node.fit_state}"
    if marked:
        css += " lineage-highlight"
    title = f"{node.kind.replace('_', ' ')} {node.name}"
    if node.detail:
        title += f": {node.detail}"
    current = ' aria-current="page"' if marked else ""
    return (f'<a class="{css}" href="{escape(link)}"{current}>'
            f"<title>{escape(title)}</title>"
            f'<rect x="{box.x}" y="{box.y}" width="{box.width}" height="{BOX_HEIGHT}" rx="4"/>'
            f'<text x="{box.x + BOX_PADDING}" y="{box.y + TEXT_BASELINE}">'
            f"{escape(_label(node))}</text></a>")
