"""What a registry holds, for people: the rows of `featurestore list` and the pages of
`featurestore describe`.

Everything here reads definitions; nothing computes feature values. Types come from the
compiled graph (which reads each source's schema); when a source cannot be read the
catalog still answers, with the types marked unknown and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from featurestore.errors import InputError
from featurestore.registry import Registry
from featurestore.registry.durations import format_duration
from featurestore.registry.suggestions import did_you_mean
from transforms.expression_types import infer_type
from transforms.expressions import ExpressionError, FeatureRef, parse_expression, walk

if TYPE_CHECKING:
    from featurestore.fits.artifacts import FitArtifact
    from featurestore.offline.saved_sets import SavedSet

KINDS = ("entities", "sources", "views", "features", "services", "training-sets", "fits")
"""What `list` lists: the registry's definitions, and the training sets saved in the
offline file (`offline.saved_sets`), which are not definitions but are looked up the
same way."""


@dataclass(frozen=True)
class CatalogEntry:
    """One definition as `featurestore list` shows it.

    Attributes:
        kind: entity, source, feature view, request view, feature, request feature,
            service or training set.
        name: its name; features are `view:feature`.
        summary: one line on what it is.
        description, tags, owner: as declared; a feature takes its view's tags (its own
            win) and owner unless it has its own.
    """

    kind: str
    name: str
    summary: str
    description: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    owner: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"kind": self.kind, "name": self.name, "summary": self.summary,
                "description": self.description, "tags": dict(self.tags), "owner": self.owner}


@dataclass(frozen=True)
class Materialization:
    """The last materialization of one feature view, from the offline file.

    Attributes:
        end: events before this time (ISO-8601, UTC) are in the view's states.
        at: when the run finished (ISO-8601).
        current: whether the states were built for the registry's current definition
            (False: the next `materialize` rebuilds them; None: not known).
    """

    end: str
    at: str
    current: bool | None


@dataclass(frozen=True)
class Description:
    """What `featurestore describe NAME` prints.

    Attributes:
        kind: feature view, feature, request view, request feature, service, entity or
            source.
        name: the name described.
        fields: (label, value) lines in display order.
        lineage: where values come from and where they go, one step per line.
    """

    kind: str
    name: str
    fields: tuple[tuple[str, str], ...]
    lineage: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"kind": self.kind, "name": self.name, "fields": dict(self.fields),
                "lineage": list(self.lineage)}

    def render(self) -> str:
        """Aligned text, one field per line, then the lineage."""
        width = max(len(label) for label, _ in self.fields) if self.fields else 0
        lines = [f"{self.kind} {self.name}"]
        lines += [f"  {label.ljust(width)}  {value}" for label, value in self.fields]
        if self.lineage:
            lines.append("  lineage:")
            lines += [f"    {step}" for step in self.lineage]
        return "\n".join(lines)


def parse_tag_filters(filters: Sequence[str]) -> dict[str, str | None]:
    """`team=risk` → {"team": "risk"}; a bare `pii` asks for the tag with any value.

    Raises:
        InputError: an empty name.
    """
    parsed: dict[str, str | None] = {}
    for text in filters:
        name, sep, value = text.partition("=")
        if not name.strip():
            raise InputError(f"tag filter '{text}': expected NAME=VALUE or NAME")
        parsed[name.strip()] = value.strip() if sep else None
    return parsed


def matches(tags: Mapping[str, str], filters: Mapping[str, str | None]) -> bool:
    """Whether `tags` has every filtered tag (with its value, where one is given)."""
    return all(name in tags and (value is None or tags[name] == value)
               for name, value in filters.items())


class Catalog:
    """The definitions of one registry, with their types and materializations.

    Args:
        registry: the validated definitions.
        types: `view → feature → type name` for feature and request views, or None
            when the sources could not be read (`types_problem` says why).
        types_problem: why the types are unknown.
        runs: the last materialization of each feature view that has one.
        training_sets: the saved training sets, oldest first.
        fits: the fitted artifacts of services' transforms, newest first.
        pinned: service → the id of the fit that serves it.
    """

    def __init__(self, registry: Registry, types: Mapping[str, Mapping[str, str]] | None,
                 types_problem: str | None = None,
                 runs: Mapping[str, Materialization] | None = None,
                 training_sets: Sequence[SavedSet] = (), fits: Sequence[FitArtifact] = (),
                 pinned: Mapping[str, str] | None = None) -> None:
        self.registry = registry
        self.training_sets = tuple(training_sets)
        self.fits = tuple(fits)
        self.pinned = dict(pinned or {})
        self.types = types
        self.types_problem = types_problem
        self.runs = dict(runs or {})
        self._request_refs = {
            (view, feature): feature_references(text)
            for view, definition in registry.request_views.items()
            for feature, text in definition.features.items()
        }

    # -- list ---------------------------------------------------------------------

    def entries(self, kind: str, tags: Mapping[str, str | None] | None = None
                ) -> list[CatalogEntry]:
        """The definitions of one kind (see KINDS), in file order, filtered by tags.

        Raises:
            InputError: an unknown kind.
        """
        if kind not in KINDS:
            raise InputError(f"cannot list '{kind}': expected one of {', '.join(KINDS)}"
                             f"{did_you_mean(kind, KINDS)}")
        rows = {"entities": self._entities, "sources": self._sources, "views": self._views,
                "features": self._features, "services": self._services,
                "training-sets": self._training_sets, "fits": self._fits}[kind]()
        return [row for row in rows if matches(row.tags, tags or {})]

    def _entities(self) -> list[CatalogEntry]:
        return [CatalogEntry("entity", name, f"keys {', '.join(entity.keys)}")
                for name, entity in self.registry.entities.items()]

    def _sources(self) -> list[CatalogEntry]:
        return [CatalogEntry("source", name, f"{_location(source)}, time {source.timestamp}")
                for name, source in self.registry.sources.items()]

    def _views(self) -> list[CatalogEntry]:
        rows = [CatalogEntry("feature view", name,
                             f"{len(view.features)} features of {view.entity} from "
                             f"{view.source}", view.description, view.tags, view.owner)
                for name, view in self.registry.feature_views.items()]
        rows += [CatalogEntry("request view", name,
                              f"{len(view.features)} features at request time")
                 for name, view in self.registry.request_views.items()]
        return rows

    def _features(self) -> list[CatalogEntry]:
        rows = []
        for view_name, view in self.registry.feature_views.items():
            for name, feature in view.features.items():
                rows.append(CatalogEntry(
                    "feature", f"{view_name}:{name}",
                    f"{self.feature_type(view_name, name)}, {self.definition(view_name, name)}",
                    feature.description, {**view.tags, **feature.tags},
                    feature.owner or view.owner))
        for view_name, request_view in self.registry.request_views.items():
            for name, text in request_view.features.items():
                rows.append(CatalogEntry("request feature", f"{view_name}:{name}",
                                         f"{self.feature_type(view_name, name)}, {text}"))
        return rows

    def _services(self) -> list[CatalogEntry]:
        return [CatalogEntry("service", name,
                             f"{len(self.registry.service_features(name))} features")
                for name in self.registry.services]

    def _training_sets(self) -> list[CatalogEntry]:
        return [CatalogEntry("training set", saved.name,
                             f"{saved.rows:,} rows, registry version {saved.registry_version}, "
                             f"created {saved.created:%Y-%m-%d %H:%M:%S} UTC, "
                             f"{saved.manifest_path}")
                for saved in self.training_sets]

    def _fits(self) -> list[CatalogEntry]:
        return [CatalogEntry("fit", fit.id,
                             f"service {fit.service}{self._pinned_mark(fit)}"
                             f", {fit.rows:,} rows, registry version {fit.registry_version}, "
                             f"created {fit.created_at:%Y-%m-%d %H:%M:%S} UTC, "
                             f"{len(fit.statistics)} transforms")
                for fit in self.fits]

    def _pinned_mark(self, fit: FitArtifact) -> str:
        return " (pinned: serves it)" if self.pinned.get(fit.service) == fit.id else ""

    # -- describe -----------------------------------------------------------------

    def describe(self, name: str) -> Description:
        """The description of a feature view, request view, feature (`view:feature`, or
        a bare feature name when only one view has it), service, entity or source.

        Raises:
            InputError: no definition has that name, or a bare feature name is in
                several views.
        """
        registry = self.registry
        if ":" in name:
            view, feature = name.split(":", 1)
            return self._describe_feature(view, feature, name)
        if name in registry.feature_views:
            return self._describe_view(name)
        if name in registry.request_views:
            return self._describe_request_view(name)
        if name in registry.services:
            return self._describe_service(name)
        if name in registry.entities:
            keys = ", ".join(registry.entities[name].keys)
            views = [v for v, d in registry.feature_views.items() if d.entity == name]
            return Description("entity", name, (("keys", keys),
                                                ("feature views", ", ".join(views) or "none")))
        if name in registry.sources:
            return self._describe_source(name)
        owners = [view for view, definition in self._all_views().items() if name in definition]
        if len(owners) == 1:
            return self._describe_feature(owners[0], name, f"{owners[0]}:{name}")
        if owners:
            choices = ", ".join(f"{view}:{name}" for view in owners)
            raise InputError(f"'{name}' is a feature of several views; name one of {choices}")
        raise InputError(f"nothing is named '{name}' in the registry"
                         f"{did_you_mean(name, self._names())}")

    def _describe_view(self, name: str) -> Description:
        view = self.registry.feature_views[name]
        source = self.registry.sources[view.source]
        fields = [("source", f"{view.source} ({_location(source)}, time {source.timestamp})"),
                  ("entity", f"{view.entity} (keys "
                             f"{', '.join(self.registry.entities[view.entity].keys)})"),
                  *_about(view.description, view.tags, view.owner),
                  ("last materialization", self._run(name))]
        if self.types is None:
            fields.append(("types", f"unknown ({self.types_problem})"))
        lineage = [f"{view.source} -> {name} -> {name}:{feature}: "
                   f"{self.feature_type(name, feature)}, {self.definition(name, feature)}"
                   for feature in view.features]
        return Description("feature view", name, tuple(fields), tuple(lineage))

    def _describe_feature(self, view: str, feature: str, name: str) -> Description:
        registry = self.registry
        if view in registry.request_views:
            if feature not in registry.request_views[view].features:
                raise self._unknown_feature(view, feature)
            text = registry.request_views[view].features[feature]
            inputs = [f"{ref[0]}:{ref[1]}" for ref in self._request_refs[(view, feature)]]
            fields = (("expression", text), ("type", self.feature_type(view, feature)),
                      ("request fields", ", ".join(
                          f"{n} ({t})" for n, t in registry.request_views[view].request.items())
                       or "none"),
                      ("reads features", ", ".join(inputs) or "none"))
            lineage = (*(f"{ref} -> {name}" for ref in inputs),
                       *(f"{name} -> service {s}" for s in self._services_using(view, feature)))
            return Description("request feature", name, fields, lineage)
        if view not in registry.feature_views:
            raise InputError(f"no feature view or request view named '{view}'"
                             f"{did_you_mean(view, self._all_views())}")
        definition = registry.feature_views[view]
        if feature not in definition.features:
            raise self._unknown_feature(view, feature)
        spec = definition.features[feature]
        fields = [("aggregation", spec.model_copy(update={"expr": None}).summary()),
                  ("expression", spec.expr if spec.expr is not None else "(none: counts events)"),
                  ("type", self.feature_type(view, feature)),
                  ("window", self._window(view, feature)),
                  ("source", definition.source),
                  ("entity", f"{definition.entity} (keys "
                             f"{', '.join(registry.entities[definition.entity].keys)})"),
                  *_about(spec.description, {**definition.tags, **spec.tags},
                          spec.owner or definition.owner),
                  ("last materialization", self._run(view))]
        lineage = [f"{definition.source} -> {view} -> {name}"]
        lineage += [f"{name} -> {rv}:{rf}" for (rv, rf), refs in self._request_refs.items()
                    if (view, feature) in refs]
        lineage += [f"{name} -> service {s}" for s in self._services_using(view, feature)]
        return Description("feature", name, tuple(fields), tuple(lineage))

    def _describe_request_view(self, name: str) -> Description:
        view = self.registry.request_views[name]
        fields = (("request fields", ", ".join(f"{n} ({t})" for n, t in view.request.items())
                   or "none"),)
        lineage = tuple(f"{name}:{feature}: {self.feature_type(name, feature)} = {text}"
                        for feature, text in view.features.items())
        return Description("request view", name, fields, lineage)

    def _describe_service(self, name: str) -> Description:
        members = self.registry.service_features(name)
        service = self.registry.services[name]
        fields = (("members", ", ".join(service.features)),
                  ("features", str(len(members))),
                  ("transforms", str(len(service.transforms))),
                  ("pinned fit", self.pinned.get(name, "none")))
        lineage = tuple(f"{view}:{feature}: {self.feature_type(view, feature)}"
                        for view, feature in members)
        lineage += tuple(
            f"{transform.of} -> {output} ({transform.fn}, fitted by `featurestore fit`)"
            for output, transform in service.transforms.items())
        return Description("service", name, fields, lineage)

    def _describe_source(self, name: str) -> Description:
        source = self.registry.sources[name]
        fields = [("location", _location(source)), ("timestamp", source.timestamp),
                  ("changes", source.change_policy)]
        unit = getattr(source, "timestamp_unit", None)
        if unit is not None:
            fields.append(("timestamp unit", unit))
        views = [v for v, d in self.registry.feature_views.items() if d.source == name]
        return Description("source", name, tuple(fields),
                           tuple(f"{name} -> {view}" for view in views))

    # -- pieces -------------------------------------------------------------------

    def definition(self, view: str, feature: str) -> str:
        """`sum of amount, window 7d, hop 1h` and the like."""
        spec = self.registry.feature_views[view].features[feature]
        what = spec.summary()
        if spec.window is None:
            return f"{what}, lifetime"
        hop = format_duration(self.registry.effective_hop(view, feature) or 0)
        return f"{what}, window {format_duration(spec.window)}, hop {hop}"

    def _window(self, view: str, feature: str) -> str:
        spec = self.registry.feature_views[view].features[feature]
        if spec.window is None:
            return "lifetime: every event before t"
        hop = self.registry.effective_hop(view, feature)
        window, step = format_duration(spec.window), format_duration(hop or 0)
        return f"window {window}, hop {step}: events in [floor(t, {step}) - {window}, t)"

    def feature_type(self, view: str, feature: str) -> str:
        """The type name of a feature or request feature, or `type unknown`."""
        if self.types is None:
            return "type unknown"
        return self.types.get(view, {}).get(feature, "type unknown")

    def _run(self, view: str) -> str:
        run = self.runs.get(view)
        if run is None:
            return "never"
        state = " (stale: the definition changed since)" if run.current is False else ""
        return f"events before {run.end}, at {run.at}{state}"

    def _services_using(self, view: str, feature: str) -> list[str]:
        found = []
        for service in self.registry.services:
            members = self.registry.service_features(service)
            if (view, feature) in members or any(
                    (view, feature) in self._request_refs.get(member, ()) for member in members):
                found.append(service)
        return found

    def _all_views(self) -> dict[str, Mapping[str, object]]:
        views: dict[str, Mapping[str, object]] = {
            name: view.features for name, view in self.registry.feature_views.items()}
        views.update({name: view.features for name, view in self.registry.request_views.items()})
        return views

    def _names(self) -> list[str]:
        registry = self.registry
        return [*registry.feature_views, *registry.request_views, *registry.services,
                *registry.entities, *registry.sources,
                *(feature for view in self._all_views().values() for feature in view)]

    def _unknown_feature(self, view: str, feature: str) -> InputError:
        return InputError(f"view '{view}' has no feature '{feature}'"
                          f"{did_you_mean(feature, self._all_views()[view])}")


def _about(description: str | None, tags: Mapping[str, str],
           owner: str | None) -> list[tuple[str, str]]:
    fields = []
    if description:
        fields.append(("description", description))
    if tags:
        fields.append(("tags", ", ".join(f"{name}={value}" for name, value in tags.items())))
    if owner:
        fields.append(("owner", owner))
    return fields


def _location(source: Any) -> str:
    if source.path is not None:
        return f"file {source.path}"
    if source.table is not None:
        return f"table {source.table}"
    return "query"


def feature_references(text: str) -> tuple[tuple[str, str], ...]:
    """The `view.feature` references of a request feature's expression, in order."""
    try:
        expression = parse_expression(text)
    except ExpressionError:  # reported by plan and apply with its position, not here
        return ()
    refs = [(node.view, node.feature) for node in walk(expression) if isinstance(node, FeatureRef)]
    return tuple(dict.fromkeys(refs))


def feature_types(kernels: Any) -> dict[str, dict[str, str]]:
    """`view → feature → type name` from a compiled graph, request views included."""
    types = {name: {feature: _type_name(view, feature, kind)
                    for feature, kind in view.feature_types.items()}
             for name, view in kernels.views.items()}
    for plan in kernels.graph.request_views:
        names = {field: kind for field, kind in plan.spec.request}
        for (view, feature) in plan.dependencies:
            names[f"{view}.{feature}"] = kernels.views[view].feature_types[feature]
        types[plan.spec.name] = {
            feature: str(infer_type(expression, names))
            for (feature, _), expression in zip(plan.spec.features, plan.expressions,
                                                strict=True)}
    return types


def _type_name(view: Any, feature: str, kind: object) -> str:
    """`float`, or for list features `list of float` / `list of (string, count)`."""
    plan = view.list_features.get(feature)
    if plan is None:
        return str(kind)
    return f"list of ({kind}, count)" if plan.ranked else f"list of {kind}"
