"""The lineage of a registry as a layered graph, for the console's Lineage page.

Data flows left to right through six layers: sources feed feature views, a view
computes its features, request views read features, a service's fitted transforms read
one feature each, and services serve features, request views and transform outputs.
Transforms sit before services (not after) so that every edge points right.

This module only builds the model; `lineage_svg` draws it. Nothing here reads data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

# The catalog owns how a request feature's references are read (`describe` prints the
# same lineage as text); reuse it rather than parse expressions a second way.
from featurestore.catalog import feature_references
from featurestore.errors import InputError
from featurestore.registry import Registry
from featurestore.registry.durations import format_duration

if TYPE_CHECKING:
    from featurestore.fits.artifacts import FitArtifact

KINDS = ("source", "view", "feature", "request_view", "transform", "service")
"""Node kinds, in layer (column) order."""

FIT_STATES = ("pinned", "fitted", "unfitted")
"""What a transform node says of its fit: the pinned fit of its service has it; only
an unpinned fit has it; no fit given has it."""


@dataclass(frozen=True)
class LineageNode:
    """One definition in the lineage graph.

    Attributes:
        kind: one of KINDS.
        name: the definition's name; features are `view:feature`, transforms
            `service:output`.
        label: the short text drawn in the box (a feature's or output's own name).
        detail: one line for people, such as `sum of amount, window 7d`.
        fit_state: for a transform, one of FIT_STATES; None for every other kind.
    """

    kind: str
    name: str
    label: str
    detail: str = ""
    fit_state: str | None = None

    @property
    def id(self) -> str:
        """`kind:name`, unique in a graph (a source and a view may share a name)."""
        return f"{self.kind}:{self.name}"

    @property
    def layer(self) -> int:
        """The column the node is drawn in: its kind's place in KINDS."""
        return KINDS.index(self.kind)


@dataclass(frozen=True)
class LineageEdge:
    """`source_id` feeds `target_id` (node ids); the target is always in a later layer."""

    source_id: str
    target_id: str


@dataclass(frozen=True)
class LineageGraph:
    """Nodes ordered by layer, then registry file order; edges deduplicated, in the
    order they were found."""

    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...]

    def node(self, node_id: str) -> LineageNode:
        """The node with that id.

        Raises:
            InputError: no node has that id.
        """
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise InputError(f"the lineage graph has no node '{node_id}'")

    def layers(self) -> tuple[tuple[LineageNode, ...], ...]:
        """The nodes of each layer in KINDS order, empty layers included."""
        return tuple(tuple(node for node in self.nodes if node.kind == kind) for kind in KINDS)

    def neighbourhood(self, node_id: str) -> LineageGraph:
        """The node with everything upstream and downstream of it (not its siblings:
        a feature's graph shows its view and source, not the view's other features).

        Raises:
            InputError: no node has that id.
        """
        self.node(node_id)
        upstream = _closure(node_id, {(e.target_id, e.source_id) for e in self.edges})
        downstream = _closure(node_id, {(e.source_id, e.target_id) for e in self.edges})
        keep = upstream | downstream
        # An edge between two kept nodes that is on no path through the node (an
        # upstream feature straight to a downstream service) is still true lineage.
        return LineageGraph(
            nodes=tuple(node for node in self.nodes if node.id in keep),
            edges=tuple(edge for edge in self.edges
                        if edge.source_id in keep and edge.target_id in keep),
        )


def _closure(start: str, pairs: Iterable[tuple[str, str]]) -> set[str]:
    following: dict[str, list[str]] = {}
    for origin, target in pairs:
        following.setdefault(origin, []).append(target)
    seen, pending = {start}, [start]
    while pending:
        for target in following.get(pending.pop(), ()):
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return seen


def build_lineage(registry: Registry, fits: Sequence[FitArtifact] = (),
                  pinned: Mapping[str, str] | None = None) -> LineageGraph:
    """The lineage graph of a registry.

    Args:
        registry: the validated registry.
        fits: the fitted artifacts stored so far, to mark each transform's fit state.
        pinned: service → id of its pinned fit.

    Returns:
        The graph: per-request-feature detail is folded into its request view node,
        and a service is fed by the features, request views and transforms it serves.
    """
    nodes: list[LineageNode] = []
    edges: list[LineageEdge] = []
    _add_views(registry, nodes, edges)
    _add_request_views(registry, nodes, edges)
    _add_services(registry, fits, dict(pinned or {}), nodes, edges)
    nodes.sort(key=lambda node: node.layer)  # stable: file order within a layer
    return LineageGraph(nodes=tuple(nodes), edges=tuple(dict.fromkeys(edges)))


def _add_views(registry: Registry, nodes: list[LineageNode], edges: list[LineageEdge]) -> None:
    for name, source in registry.sources.items():
        location = source.path or source.table or "query"
        nodes.append(LineageNode("source", name, name, location))
    for view_name, view in registry.feature_views.items():
        view_node = LineageNode("view", view_name, view_name, f"entity {view.entity}")
        nodes.append(view_node)
        edges.append(LineageEdge(f"source:{view.source}", view_node.id))
        for name, feature in view.features.items():
            what = feature.agg if feature.expr is None else f"{feature.agg} of {feature.expr}"
            window = ("lifetime" if feature.window is None
                      else f"window {format_duration(feature.window)}")
            node = LineageNode("feature", f"{view_name}:{name}", name, f"{what}, {window}")
            nodes.append(node)
            edges.append(LineageEdge(view_node.id, node.id))


def _add_request_views(registry: Registry, nodes: list[LineageNode],
                       edges: list[LineageEdge]) -> None:
    # One node per request view, not per request feature: the views are few and their
    # features read overlapping inputs, so per-feature nodes would mostly add edges.
    for name, view in registry.request_views.items():
        node = LineageNode("request_view", name, name, ", ".join(view.features))
        nodes.append(node)
        for text in view.features.values():
            for ref_view, ref_feature in feature_references(text):
                edges.append(LineageEdge(_member_id(registry, ref_view, ref_feature), node.id))


def _member_id(registry: Registry, view: str, feature: str) -> str:
    """The node a `(view, feature)` reference reads: the feature, or its request view."""
    if view in registry.request_views:
        return f"request_view:{view}"
    return f"feature:{view}:{feature}"


def _add_services(registry: Registry, fits: Sequence[FitArtifact], pinned: dict[str, str],
                  nodes: list[LineageNode], edges: list[LineageEdge]) -> None:
    for name, service in registry.services.items():
        service_id = f"service:{name}"
        members = registry.service_features(name)
        nodes.append(LineageNode("service", name, name, f"{len(members)} features"))
        for view, feature in members:
            edges.append(LineageEdge(_member_id(registry, view, feature), service_id))
        for output, transform in service.transforms.items():
            state = _fit_state(name, output, fits, pinned)
            node = LineageNode("transform", f"{name}:{output}", output,
                               f"{transform.fn} of {transform.of}, {state}", state)
            nodes.append(node)
            read = registry.transform_input(name, transform.of)
            if read is not None:  # None only for an unchecked registry; draw what is known
                edges.append(LineageEdge(_member_id(registry, *read), node.id))
            edges.append(LineageEdge(node.id, service_id))


def _fit_state(service: str, output: str, fits: Sequence[FitArtifact],
               pinned: Mapping[str, str]) -> str:
    # A transform added after the last fit is in no fit's statistics: it is unfitted
    # even though its service has fits.
    having = [fit for fit in fits if fit.service == service and output in fit.statistics]
    if any(fit.id == pinned.get(service) for fit in having):
        return "pinned"
    return "fitted" if having else "unfitted"
