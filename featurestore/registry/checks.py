"""Checks that relate definitions to each other, each problem located in the file.

Runs on a Registry whose definitions are individually well formed. Definitions that
failed shape validation are listed in `Broken`, and references to them are not
reported again as unknown.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from featurestore.registry.durations import format_duration
from featurestore.registry.loader import YamlDocument
from featurestore.registry.models import (
    Feature,
    FeatureView,
    Registry,
    RequestView,
    show_number,
)
from featurestore.registry.problems import KeyPath, Problem, format_path, service_list_path
from featurestore.registry.suggestions import did_you_mean
from transforms.aggregations import (
    COUNTING,
    DEFAULTS,
    LIST_VALUED,
    MAX_QUANTILES,
    PARAMETER_KEYS,
    PARAMETER_LIMITS,
    PARAMETERS,
)
from transforms.expressions import (
    Column,
    Expr,
    ExpressionError,
    FeatureRef,
    parse_expression,
    referenced_names,
    walk,
)
from transforms.spec import AGGREGATIONS, default_hop

# The aggregations that may leave out `expr`, as messages list them.
_COUNTING_NAMES = " and ".join(f"'{agg}'" for agg in AGGREGATIONS if agg in COUNTING)


@dataclass
class Broken:
    """Definitions set aside because their own shape was invalid.

    Entries are (section, name, member): member is "features.x" or "request.x" when
    only one feature or request field of a view was set aside; name None means the
    whole section was unusable.
    """

    _items: set[tuple[str, str | None, str | None]] = field(default_factory=set)

    def add(self, section: str, name: str | None, member: str | None = None) -> None:
        """Record a definition (or one member of it) that was set aside."""
        self._items.add((section, name, member))

    def hides(self, section: str, name: str) -> bool:
        """True when `name` in `section` may exist but could not be validated."""
        return (section, None, None) in self._items or (section, name, None) in self._items

    def hides_member(self, section: str, name: str, member: str) -> bool:
        """True when a member ("features.x") of a definition could not be validated."""
        return self.hides(section, name) or (section, name, member) in self._items


@dataclass
class LocatedProblems:
    """Collects problems, locating each one through the document (registry checks here,
    source checks in `featurestore.source_checks`)."""

    document: YamlDocument
    problems: list[Problem] = field(default_factory=list)

    def at_key(self, path: KeyPath, message: str) -> None:
        path = service_list_path(path, self.document.data)
        position = self.document.key_position(path)
        self.problems.append(Problem(position.line, position.column, format_path(path), message))

    def at_value(self, path: KeyPath, message: str) -> None:
        path = service_list_path(path, self.document.data)
        position = self.document.value_position(path)
        self.problems.append(Problem(position.line, position.column, format_path(path), message))

    def at_text(self, path: KeyPath, offset: int, message: str) -> None:
        path = service_list_path(path, self.document.data)
        position = self.document.text_position(path, offset)
        self.problems.append(Problem(position.line, position.column, format_path(path), message))


def run_checks(registry: Registry, document: YamlDocument, broken: Broken) -> list[Problem]:
    """Check every cross-reference and rule between definitions.

    Args:
        registry: the well-formed definitions.
        document: the YAML document, for positions.
        broken: definitions that exist in the file but failed shape validation.

    Returns:
        Every problem found (empty when the registry is valid).
    """
    report = LocatedProblems(document)
    _check_unique_names(registry, report)
    for name, entity in registry.entities.items():
        for index, key in enumerate(entity.keys):
            if key in entity.keys[:index]:
                report.at_value(("entities", name, "keys", index), f"key '{key}' is listed twice")
    for name, view in registry.feature_views.items():
        _check_feature_view(registry, name, view, report, broken)
    for name, request_view in registry.request_views.items():
        _check_request_view(registry, name, request_view, report, broken)
    _check_services(registry, report, broken)
    return report.problems


def _check_unique_names(registry: Registry, report: LocatedProblems) -> None:
    # Feature views, request views and services share one namespace: `x:feature`
    # may name either kind of view, and a bare name stands for a service.
    owners: dict[str, str] = {name: "feature view" for name in registry.feature_views}
    for section, kind, names in (
        ("request_views", "request view", registry.request_views),
        ("services", "service", registry.services),
    ):
        for name in names:
            if name in owners:
                report.at_key(
                    (section, name), f"name '{name}' is already used by {owners[name]} '{name}'"
                )
            else:
                owners[name] = kind


def _check_feature_view(
    registry: Registry, name: str, view: FeatureView, report: LocatedProblems, broken: Broken
) -> None:
    base: KeyPath = ("feature_views", name)
    for section, key, target in (
        ("sources", "source", view.source),
        ("entities", "entity", view.entity),
    ):
        names: Collection[str] = getattr(registry, section)
        if target not in names and not broken.hides(section, target):
            report.at_value((*base, key), f"unknown {key} '{target}'{did_you_mean(target, names)}")
    for feature, definition in view.features.items():
        path = (*base, "features", feature)
        if definition.expr is None and definition.agg not in COUNTING:
            report.at_key(
                path,
                f"aggregation '{definition.agg}' needs 'expr' "
                f"(only {_COUNTING_NAMES} may leave it out)",
            )
        _check_parameters(definition, path, report)
        _check_list_expectations(definition, path, report)
        _check_window(view, definition, path, report)
        if definition.expr is not None:
            _check_view_expression((*path, "expr"), definition.expr, report)


def _check_parameters(definition: Feature, path: KeyPath, report: LocatedProblems) -> None:
    """`n`, `k`, `half_life`, `precision` and `q`: given where the aggregation takes them,
    only there, and within their range; required unless they have a default."""
    field = PARAMETERS.get(definition.agg)
    needed = PARAMETER_KEYS[field] if field is not None else None
    for key in PARAMETER_KEYS.values():
        value = getattr(definition, key)
        if value is None:
            continue
        if key != needed:
            report.at_key((*path, key), f"'{key}' does not apply to '{definition.agg}'")
        elif key == "q":
            _check_quantiles(value, (*path, key), report)
        elif key in PARAMETER_LIMITS:
            low, high = PARAMETER_LIMITS[key]
            if not low <= value <= high:
                report.at_value(
                    (*path, key), f"'{key}' must be between {low} and {high}, got {value}")
    if (needed is not None and field not in DEFAULTS
            and getattr(definition, needed) is None):
        report.at_key(path, f"aggregation '{definition.agg}' needs '{needed}'")


def _check_quantiles(quantiles: list[float], path: KeyPath, report: LocatedProblems) -> None:
    """1 to `MAX_QUANTILES` quantiles, each from 0 to 1 (their type is the model's)."""
    if not 1 <= len(quantiles) <= MAX_QUANTILES:
        report.at_value(
            path, f"'q' needs 1 to {MAX_QUANTILES} quantiles, got {len(quantiles)}")
    for index, q in enumerate(quantiles):
        if not 0.0 <= q <= 1.0:
            report.at_value(
                (*path, index),
                f"each quantile in 'q' must be a number from 0 to 1, got {show_number(q)}")


def _check_list_expectations(definition: Feature, path: KeyPath,
                             report: LocatedProblems) -> None:
    """A list feature's value is a list: only `not_null` can be checked on it."""
    if definition.expect is None or definition.agg not in LIST_VALUED:
        return
    for rule in definition.expect.rules():
        if rule != "not_null":
            report.at_key(
                (*path, "expect", rule),
                f"'{rule}' does not apply to a list feature ('{definition.agg}' gives a list "
                "of values): its expectations can only have 'not_null'",
            )


def _check_window(view: FeatureView, definition: Feature, path: KeyPath,
                  report: LocatedProblems) -> None:
    window = definition.window
    if window is None:
        if definition.hop is not None:
            report.at_key(
                (*path, "hop"), "'hop' needs a 'window' (a lifetime aggregation has no hop)"
            )
        return
    if definition.hop is not None:
        hop, described = definition.hop, f"its hop {format_duration(definition.hop)}"
    elif view.hop is not None:
        hop, described = view.hop, f"the view's hop {format_duration(view.hop)}"
    else:
        hop = default_hop(window)
        described = f"the default hop {format_duration(hop)} (set 'hop' to choose another)"
    if window % hop != 0:
        report.at_value(
            (*path, "window"), f"window {format_duration(window)} is not a multiple of {described}"
        )


def _parse(path: KeyPath, text: str, report: LocatedProblems) -> Expr | None:
    """Parse an expression, reporting a syntax error at its column in the file."""
    try:
        return parse_expression(text)
    except ExpressionError as error:
        offset = error.column if error.column is not None else 0
        report.at_text(path, offset, f"invalid expression: {error.message}")
        return None


def _check_view_expression(path: KeyPath, text: str, report: LocatedProblems) -> None:
    expression = _parse(path, text, report)
    if expression is None:
        return
    _, references = referenced_names(expression)
    offsets = name_offsets(expression)
    for view, feature in sorted(references):
        report.at_text(
            path,
            offsets.get((view, feature), 0),
            f"'{view}.{feature}' is a feature reference; "
            "a feature view expression can only use its source's columns",
        )


def _check_request_view(
    registry: Registry, name: str, request_view: RequestView, report: LocatedProblems,
    broken: Broken,
) -> None:
    fields = request_view.request
    for feature, text in request_view.features.items():
        path: KeyPath = ("request_views", name, "features", feature)
        if feature in fields:
            report.at_key(path, f"feature '{feature}' has the same name as a request field")
        expression = _parse(path, text, report)
        if expression is None:
            continue
        columns, references = referenced_names(expression)
        offsets = name_offsets(expression)
        for column in sorted(columns - set(fields)):
            if broken.hides_member("request_views", name, f"request.{column}"):
                continue
            report.at_text(
                path,
                offsets.get(column, 0),
                f"unknown request field '{column}'{did_you_mean(column, fields)}",
            )
        for view, referenced in sorted(references):
            message = _reference_problem(registry, view, referenced, broken)
            if message is not None:
                report.at_text(path, offsets.get((view, referenced), 0), message)


def _reference_problem(registry: Registry, view: str, feature: str, broken: Broken) -> str | None:
    """What is wrong with a `view.feature` reference in a request expression, if anything."""
    if view in registry.feature_views:
        features = registry.feature_views[view].features
        if feature in features or broken.hides_member("feature_views", view, f"features.{feature}"):
            return None
        return (
            f"unknown feature '{feature}' in feature view '{view}'{did_you_mean(feature, features)}"
        )
    if broken.hides("feature_views", view):
        return None
    if view in registry.request_views:
        return f"'{view}' is a request view; request features can use feature view features only"
    return f"unknown feature view '{view}'{did_you_mean(view, registry.feature_views)}"


def name_offsets(expression: Expr) -> dict[str | tuple[str, str], int]:
    """Offset of the first use of each column name and `view.feature` in an expression."""
    found: dict[str | tuple[str, str], int] = {}
    for node in walk(expression):
        if node.span is None:
            continue
        if isinstance(node, Column):
            found.setdefault(node.name, node.span.start)
        elif isinstance(node, FeatureRef):
            found.setdefault((node.view, node.feature), node.span.start)
    return found


def _check_services(registry: Registry, report: LocatedProblems, broken: Broken) -> None:
    for name, service in registry.services.items():
        for index, member in enumerate(service.features):
            message = _member_problem(registry, member, broken)
            if message is not None:
                report.at_value(("services", name, "features", index), message)
    cyclic = _report_cycles(registry, report)
    for name, service in registry.services.items():
        if name not in cyclic:
            _check_bare_names(registry, name, service.features, report)
            check_transform_names(registry, name, report)


def _member_problem(registry: Registry, member: str, broken: Broken) -> str | None:
    """What is wrong with one service member, if anything."""
    # On a name clash (reported elsewhere) the feature view is the one meant.
    views = {**registry.request_views, **registry.feature_views}
    if ":" not in member:
        if member in registry.services or broken.hides("services", member):
            return None
        if member in views:
            return f"'{member}' is a view, not a service: list its features as '{member}:feature'"
        return f"unknown service '{member}'{did_you_mean(member, registry.services)}"
    view, feature = member.split(":", 1)
    if view not in views:
        if broken.hides("feature_views", view) or broken.hides("request_views", view):
            return None
        return f"unknown view '{view}'{did_you_mean(view, views)}"
    features = views[view].features
    section = "feature_views" if view in registry.feature_views else "request_views"
    if feature not in features and not broken.hides_member(section, view, f"features.{feature}"):
        return f"unknown feature '{feature}' in view '{view}'{did_you_mean(feature, features)}"
    return None


def _report_cycles(registry: Registry, report: LocatedProblems) -> set[str]:
    """Report services that include themselves; return every service on a cycle."""
    cyclic: set[str] = set()
    for name in registry.services:
        trail = _find_cycle(registry, name, (name,))
        if trail is not None:
            cyclic.update(trail)
            if trail[0] == name and min(trail[:-1], key=list(registry.services).index) == name:
                report.at_key(
                    ("services", name), f"service '{name}' includes itself ({' → '.join(trail)})"
                )
    return cyclic


def _find_cycle(registry: Registry, name: str, trail: tuple[str, ...]) -> tuple[str, ...] | None:
    service = registry.services.get(name)
    for member in service.features if service is not None else ():
        if ":" in member or member not in registry.services:
            continue
        if member == trail[0]:
            return (*trail, member)
        if member not in trail:
            found = _find_cycle(registry, member, (*trail, member))
            if found is not None:
                return found
    return None


def _check_bare_names(
    registry: Registry, name: str, members: tuple[str, ...], report: LocatedProblems
) -> None:
    # Training sets and online results name columns by the bare feature name, so two
    # features with one name in one service would collide (DESIGN §8).
    seen: dict[str, tuple[str, str]] = {}
    for index, member in enumerate(members):
        if ":" in member:
            view, feature = member.split(":", 1)
            references: tuple[tuple[str, str], ...] = ((view, feature),)
        elif member in registry.services:
            references = registry.service_features(member)
        else:
            continue
        for reference in references:
            first = seen.setdefault(reference[1], reference)
            if first != reference:
                report.at_value(
                    ("services", name, "features", index),
                    f"feature name '{reference[1]}' is used twice, by '{first[0]}:{first[1]}' "
                    f"and '{reference[0]}:{reference[1]}' (results are named by feature name)",
                )


def check_transform_names(registry: Registry, service: str, report: LocatedProblems) -> None:
    """Each transform reads a feature of its service and is named unlike its features."""
    features = registry.service_features(service)
    names = {feature for _, feature in features}
    for name, transform in registry.services[service].transforms.items():
        path = ("services", service, "transforms", name)
        if name in names:
            report.at_key(path, f"transform name '{name}' is already the name of a feature of "
                                f"service '{service}' (results would have two columns so named)")
        if registry.transform_input(service, transform.of) is None:
            written = [f"{view}:{feature}" for view, feature in features] + sorted(names)
            listed = ", ".join(feature for _, feature in features)
            report.at_value((*path, "of"),
                            f"'{transform.of}' is not a feature of service '{service}' "
                            f"(its features: {listed}){did_you_mean(transform.of, written)}")
