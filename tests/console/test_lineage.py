"""The lineage graph of the demo registry, and its SVG drawing."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from featurestore.console.lineage import (
    KINDS,
    LineageEdge,
    LineageGraph,
    LineageNode,
    build_lineage,
)
from featurestore.console.lineage_svg import HEADINGS, MAX_LABEL_CHARS, render_lineage_svg
from featurestore.errors import InputError
from featurestore.fits.artifacts import FitArtifact
from featurestore.registry import parse_registry
from tests.projects import DEMO_TEXT

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def graph() -> LineageGraph:
    return build_lineage(parse_registry(DEMO_TEXT))


def _link(node: LineageNode) -> str:
    return f"/ui/{node.kind}/{node.name}?from=lineage&x=1"


def _fit(fit_id: str, outputs: list[str]) -> FitArtifact:
    return FitArtifact(id=fit_id, service="fraud_v1", created_at=datetime(2026, 1, 1, tzinfo=UTC),
                       rows=10, registry_version=1, definitions_hash="h", definitions={},
                       statistics={output: {} for output in outputs})


def _title(node: LineageNode) -> str:
    return f"{node.kind.replace('_', ' ')} {node.name}"


def _links(root: ET.Element, graph: LineageGraph) -> dict[str, ET.Element]:
    """Node id → its `<a>`, matched by the title, which starts with kind and full name."""
    found: dict[str, ET.Element] = {}
    for link in root.iter(f"{SVG}a"):
        title = link.findtext(f"{SVG}title") or ""
        owners = [node.id for node in graph.nodes
                  if title == _title(node) or title.startswith(_title(node) + ": ")]
        assert len(owners) == 1 and owners[0] not in found, title
        found[owners[0]] = link
    return found


def _boxes(root: ET.Element, graph: LineageGraph) -> dict[str, tuple[float, ...]]:
    """Node id → (x, y, width, height) of its box."""
    boxes = {}
    for node_id, link in _links(root, graph).items():
        rects = link.findall(f"{SVG}rect")
        assert len(rects) == 1
        boxes[node_id] = tuple(float(rects[0].get(key)) for key in ("x", "y", "width", "height"))
    return boxes


def test_layers_hold_the_demo_definitions_in_file_order(graph: LineageGraph) -> None:
    names = {kind: [node.name for node in layer]
             for kind, layer in zip(KINDS, graph.layers(), strict=True)}
    assert names["source"] == ["transactions"]
    assert names["view"] == ["user_txn"]
    assert names["feature"][:3] == ["user_txn:txn_count_1h", "user_txn:amount_sum_7d",
                                    "user_txn:amount_mean_30d"]
    features = parse_registry(DEMO_TEXT).feature_views["user_txn"].features
    assert names["feature"] == [f"user_txn:{name}" for name in features]
    assert len(names["feature"]) == 15
    assert names["request_view"] == ["txn_context"]
    assert names["transform"] == ["fraud_v1:amount_sum_7d_z", "fraud_v1:amount_sum_7d_b",
                                  "fraud_v1:category_idx", "fraud_v1:category_onehot",
                                  "fraud_v1:amount_z_filled"]
    assert names["service"] == ["fraud_v1"]
    assert [node.layer for node in graph.nodes] == sorted(node.layer for node in graph.nodes)


def test_edges_follow_the_chain_from_source_to_service(graph: LineageGraph) -> None:
    edges = {(edge.source_id, edge.target_id) for edge in graph.edges}
    assert {
        ("source:transactions", "view:user_txn"),
        ("view:user_txn", "feature:user_txn:amount_sum_7d"),
        ("feature:user_txn:amount_std_30d", "request_view:txn_context"),
        ("feature:user_txn:amount_mean_30d", "request_view:txn_context"),
        ("request_view:txn_context", "service:fraud_v1"),
        ("feature:user_txn:amount_sum_7d", "service:fraud_v1"),
        ("feature:user_txn:amount_sum_7d", "transform:fraud_v1:amount_sum_7d_z"),
        ("transform:fraud_v1:amount_sum_7d_z", "service:fraud_v1"),
        ("request_view:txn_context", "transform:fraud_v1:amount_z_filled"),
    } <= edges
    # amount_max_1d is computed but read by nothing.
    assert not any(source == "feature:user_txn:amount_max_1d" for source, _ in edges)
    # amount_z reads amount_std_30d twice: one edge.
    assert len(graph.edges) == len(set(graph.edges))
    layer = {node.id: node.layer for node in graph.nodes}
    assert all(layer[edge.source_id] < layer[edge.target_id] for edge in graph.edges)


def test_transforms_carry_their_fit_state(graph: LineageGraph) -> None:
    registry = parse_registry(DEMO_TEXT)
    fits = [_fit("a1", ["amount_sum_7d_z"]), _fit("b2", ["amount_sum_7d_z", "category_idx"])]
    fitted = build_lineage(registry, fits, pinned={"fraud_v1": "a1"})
    states = {node.name: node.fit_state for node in fitted.nodes if node.kind == "transform"}
    assert states["fraud_v1:amount_sum_7d_z"] == "pinned"
    assert states["fraud_v1:category_idx"] == "fitted"
    assert states["fraud_v1:amount_z_filled"] == "unfitted"
    assert {node.fit_state for node in graph.nodes if node.kind == "transform"} == {"unfitted"}
    assert all(node.fit_state is None for node in graph.nodes if node.kind != "transform")


def test_neighbourhood_of_a_feature_is_its_upstream_and_downstream(
        graph: LineageGraph) -> None:
    mean = graph.neighbourhood("feature:user_txn:amount_mean_30d")
    assert [node.id for node in mean.nodes] == [
        "source:transactions", "view:user_txn", "feature:user_txn:amount_mean_30d",
        "request_view:txn_context", "transform:fraud_v1:amount_z_filled", "service:fraud_v1"]
    kept = {node.id for node in mean.nodes}
    assert all(e.source_id in kept and e.target_id in kept for e in mean.edges)
    assert LineageEdge("request_view:txn_context", "service:fraud_v1") in mean.edges

    total = {node.id for node in graph.neighbourhood("feature:user_txn:amount_sum_7d").nodes}
    assert "request_view:txn_context" not in total  # it does not read amount_sum_7d
    assert "feature:user_txn:txn_count_1h" not in total  # a sibling, not lineage
    assert {"transform:fraud_v1:amount_sum_7d_b", "service:fraud_v1"} <= total
    with pytest.raises(InputError, match="no node 'feature:user_txn:nope'"):
        graph.neighbourhood("feature:user_txn:nope")


def test_svg_is_well_formed_with_one_link_per_node(graph: LineageGraph) -> None:
    root = ET.fromstring(render_lineage_svg(graph, _link))
    assert root.get("aria-label") == "Lineage graph"
    width, height = float(root.get("width")), float(root.get("height"))
    assert root.get("viewBox") == f"0 0 {width:g} {height:g}"
    links = _links(root, graph)
    assert len(list(root.iter(f"{SVG}a"))) == len(links) == len(graph.nodes)
    for node in graph.nodes:
        assert links[node.id].get("href") == _link(node)
    for x, y, w, h in _boxes(root, graph).values():
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
    headings = [text.text for text in root.iter(f"{SVG}text")
                if text.get("class") == "lineage-heading"]
    assert headings == [HEADINGS[kind] for kind in KINDS]


def test_no_two_boxes_overlap_and_columns_run_left_to_right(graph: LineageGraph) -> None:
    root = ET.fromstring(render_lineage_svg(graph, _link))
    boxes = _boxes(root, graph)
    placed = list(boxes.items())
    for index, (first, (x1, y1, w1, h1)) in enumerate(placed):
        for second, (x2, y2, w2, h2) in placed[index + 1:]:
            apart = x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
            assert apart, f"{first} overlaps {second}"
    lefts = [{boxes[node.id][0] for node in layer} for layer in graph.layers()]
    assert all(len(column) == 1 for column in lefts)  # one column per kind
    assert [min(column) for column in lefts] == sorted(min(column) for column in lefts)


def _numbers(path: str) -> list[float]:
    return [float(value) for value in re.findall(r"-?[\d.]+", path)]


def test_edges_join_the_right_side_of_one_box_to_the_left_of_the_next(
        graph: LineageGraph) -> None:
    root = ET.fromstring(render_lineage_svg(graph, _link))
    by_id = _boxes(root, graph)
    paths = [path.get("d") for path in root.iter(f"{SVG}path")]
    assert len(paths) == len(graph.edges)
    assert any(" L" in path for path in paths)  # the lanes below are checked, not vacuous
    for edge, path in zip(graph.edges, paths, strict=True):
        sx, sy, sw, sh = by_id[edge.source_id]
        tx, ty, _, th = by_id[edge.target_id]
        values = _numbers(path)
        assert values[:2] == [sx + sw, sy + sh // 2]
        assert values[-2:] == [tx, ty + th // 2]
        # A straight run through a column it skips must not cross any box.
        for x1, y, x2 in re.findall(r"(-?[\d.]+),(-?[\d.]+) L(-?[\d.]+),", path):
            for bx, by, bw, bh in by_id.values():
                crosses = float(x1) < bx + bw and bx < float(x2) and by < float(y) < by + bh
                assert not crosses, path


def test_highlight_marks_the_node_and_only_its_edges(graph: LineageGraph) -> None:
    node_id = "feature:user_txn:amount_sum_7d"
    root = ET.fromstring(render_lineage_svg(graph, _link, highlight=node_id))
    marked = [marked_id for marked_id, link in _links(root, graph).items()
              if "lineage-highlight" in link.get("class").split()]
    assert marked == [node_id]
    assert "lineage-feature" in _links(root, graph)[node_id].get("class").split()
    touching = [e for e in graph.edges if node_id in (e.source_id, e.target_id)]
    marked_edges = [path for path in root.iter(f"{SVG}path")
                    if "lineage-highlight" in path.get("class")]
    assert len(marked_edges) == len(touching) == 4
    with pytest.raises(InputError, match="no node 'service:missing'"):
        render_lineage_svg(graph, _link, highlight="service:missing")


def test_text_is_escaped_and_long_labels_truncated() -> None:
    odd = LineageNode("source", "a<&>\"b", "a<&>\"b")
    long_name = "x" * (MAX_LABEL_CHARS + 20)
    long = LineageNode("view", long_name, long_name)
    graph = LineageGraph(nodes=(odd, long), edges=(LineageEdge(odd.id, long.id),))
    text = render_lineage_svg(graph, lambda node: f"/p?name={node.name}&kind={node.kind}")
    assert "a<&>" not in text and "a&lt;&amp;&gt;&quot;b" in text
    root = ET.fromstring(text)
    links = list(root.iter(f"{SVG}a"))
    assert links[0].get("href") == "/p?name=a<&>\"b&kind=source"
    assert links[0].findtext(f"{SVG}text") == "a<&>\"b"
    shown = links[1].findtext(f"{SVG}text")
    assert len(shown) == MAX_LABEL_CHARS and shown.endswith("…")
    assert links[1].findtext(f"{SVG}title") == f"view {long_name}"


def test_barycentre_ordering_uncrosses_edges() -> None:
    # In file order the edges cross: s1 feeds the second view, s2 the first.
    nodes = (LineageNode("source", "s1", "s1"), LineageNode("source", "s2", "s2"),
             LineageNode("view", "v_from_s2", "v_from_s2"),
             LineageNode("view", "v_from_s1", "v_from_s1"))
    edges = (LineageEdge("source:s1", "view:v_from_s1"), LineageEdge("source:s2", "view:v_from_s2"))
    root = ET.fromstring(render_lineage_svg(LineageGraph(nodes, edges), _link))
    graph = LineageGraph(nodes, edges)
    y = {node_id: box[1] for node_id, box in _boxes(root, graph).items()}
    assert (y["source:s1"] < y["source:s2"]) == (y["view:v_from_s1"] < y["view:v_from_s2"])


def test_an_empty_registry_draws_an_empty_graph() -> None:
    graph = build_lineage(parse_registry("project: empty\n"))
    assert graph.nodes == () and graph.edges == ()
    root = ET.fromstring(render_lineage_svg(graph, _link))
    assert list(root.iter(f"{SVG}a")) == []
