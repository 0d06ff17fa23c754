"""The difference between registry.yaml and the last applied registry.

A change makes a feature view's materialized states stale exactly when it changes the
view's state key (`featurestore.view_states`), which is what `materialize` compares to
decide what to rebuild: a feature added, removed or changed (aggregation, expression,
window, hop), a view's source, entity or default hop changed, or the definition of its
source or entity changed. Those views' offline and online states are rebuilt by the next
materialization. A new online store holds nothing yet: every view's online states are
stale, and the next materialization loads them there from the offline states, which
stay valid. Request views and services are computed at request time and are never
stale: an apply that changes only them is served at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from featurestore.credentials import redact_url
from featurestore.registry.durations import format_duration
from featurestore.registry.models import (
    Described,
    Feature,
    FeatureView,
    Registry,
    RequestView,
    Store,
)


class Action(StrEnum):
    """What a change does to a definition."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"


class Kind(StrEnum):
    """What kind of definition a change is about."""

    PROJECT = "project"
    STORE = "store"
    ENTITY = "entity"
    SOURCE = "source"
    FEATURE_VIEW = "feature view"
    FEATURE = "feature"
    REQUEST_VIEW = "request view"
    REQUEST_FEATURE = "request feature"
    SERVICE = "service"


_STATES = "offline and online states"
_ONLINE = "online states: the new online store holds nothing yet"
_SYMBOL = {Action.ADD: "+", Action.CHANGE: "~", Action.REMOVE: "-"}


@dataclass(frozen=True)
class Change:
    """One added, changed or removed definition.

    Attributes:
        kind: what kind of definition.
        name: its name; features are `view:feature`.
        action: add, change or remove.
        details: human-readable facts ("window 7d → 14d", "count, window 1h, hop 5m").
        stale: True when this change makes already materialized data stale.
    """

    kind: Kind
    name: str
    action: Action
    details: tuple[str, ...] = ()
    stale: bool = False


@dataclass(frozen=True)
class Plan:
    """What applying the registry file would change.

    Attributes:
        changes: every change, grouped by kind in registry order; a feature change
            follows the change entry of its view.
        applied_version: the version compared against; None when nothing is applied.
        text_changed: the file's text differs from the applied text (even when no
            definition changed, e.g. only comments did).
        stale_views: feature views with any materialized data the changes make stale.
        offline_stale_views: those whose states must be rebuilt from events (their
            offline and online states); the others need only their online states
            loaded again (a new online store).
    """

    changes: tuple[Change, ...]
    applied_version: int | None
    text_changed: bool
    stale_views: tuple[str, ...]
    offline_stale_views: tuple[str, ...] = ()

    @property
    def added(self) -> tuple[Change, ...]:
        """Changes that add a definition."""
        return tuple(change for change in self.changes if change.action is Action.ADD)

    @property
    def changed(self) -> tuple[Change, ...]:
        """Changes that modify a definition."""
        return tuple(change for change in self.changes if change.action is Action.CHANGE)

    @property
    def removed(self) -> tuple[Change, ...]:
        """Changes that remove a definition."""
        return tuple(change for change in self.changes if change.action is Action.REMOVE)

    @property
    def is_empty(self) -> bool:
        """True when no definition changes."""
        return not self.changes

    def of_kind(self, kind: Kind) -> tuple[Change, ...]:
        """The changes about one kind of definition."""
        return tuple(change for change in self.changes if change.kind is kind)

    def render(self) -> str:
        """The plan as text for people, one line per change."""
        against = (
            "nothing applied yet"
            if self.applied_version is None
            else f"compared with applied version {self.applied_version}"
        )
        if self.is_empty and self.applied_version is None:
            return "Nothing applied yet, and the registry defines nothing."
        if self.is_empty:
            note = " (only the file's text changed)" if self.text_changed else ""
            return f"No changes: the registry matches applied version {self.applied_version}{note}."
        lines = [f"Plan ({against}):"]
        for change in self.changes:
            nested = change.kind in (Kind.FEATURE, Kind.REQUEST_FEATURE)
            name = change.name.split(":", 1)[1] if nested else f"{change.kind} {change.name}"
            details = f": {'; '.join(change.details)}" if change.details else ""
            stale = "  [stale]" if change.stale else ""
            indent = "      " if nested else "  "
            lines.append(f"{indent}{_SYMBOL[change.action]} {name}{details}{stale}")
        counts = (len(self.added), len(self.changed), len(self.removed))
        lines.append("{} to add, {} to change, {} to remove.".format(*counts))
        if self.stale_views:
            stale = [f"{view} ({_STATES if view in self.offline_stale_views else _ONLINE})"
                     for view in self.stale_views]
            lines.append(f"Materialized data made stale: {', '.join(stale)}; the next "
                         "`featurestore materialize` rebuilds exactly these.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def compute_plan(
    previous: Registry | None,
    current: Registry,
    applied_version: int | None = None,
    text_changed: bool = True,
) -> Plan:
    """Compare the applied registry with the current one.

    Args:
        previous: the applied registry, or None when nothing has been applied.
        current: the registry from the file.
        applied_version: the applied version number, for the rendering.
        text_changed: whether the file's text differs from the applied text.

    Returns:
        The Plan.
    """
    changes: list[Change] = []
    base = previous if previous is not None else Registry(project=current.project)
    if previous is not None and previous.project != current.project:
        changes.append(
            Change(Kind.PROJECT, current.project, Action.CHANGE, (f"was {previous.project}",))
        )
    online_moved = previous is not None and previous.store.online != current.store.online
    if previous is not None and previous.store != current.store:
        details = _field_changes(previous.store, current.store, ("offline", "online"))
        changes.append(Change(Kind.STORE, "store", Action.CHANGE, details, online_moved))
    changes += _diff_simple(Kind.ENTITY, base.entities, current.entities, ("keys",))
    changes += _diff_simple(
        Kind.SOURCE, base.sources, current.sources,
        ("path", "table", "query", "timestamp", "timestamp_unit", "changes", *_CHECK_KEYS),
    )
    changed_inputs = {(c.kind, c.name) for c in changes if c.action is Action.CHANGE
                      and not _only_checks_changed(base, current, c)}
    changes += _diff_feature_views(base, current, changed_inputs)
    offline_stale = _stale_views(changes)
    if online_moved:
        changes += [
            Change(Kind.FEATURE_VIEW, name, Action.CHANGE,
                   ("the online store changed: the next materialize loads its states there",),
                   True)
            for name in current.feature_views
            if name in base.feature_views and name not in offline_stale
        ]
    changes += _diff_request_views(base.request_views, current.request_views)
    changes += _diff_simple(Kind.SERVICE, base.services, current.services,
                            ("features", "transforms"))
    return Plan(tuple(changes), applied_version, text_changed, _stale_views(changes),
                offline_stale)


def _stale_views(changes: list[Change]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(
        change.name.split(":", 1)[0] for change in changes
        if change.stale and change.kind in (Kind.FEATURE_VIEW, Kind.FEATURE)))


_CHECK_KEYS = ("expect", "freshness", "row_count_change")


def _only_checks_changed(old: Registry, new: Registry, change: Change) -> bool:
    """Whether a source changed only in expectations that keep every row it reads: warn
    and fail rules, freshness and row_count_change change no state (quarantine rules
    do: they change which rows are read; see `view_states`)."""
    if change.kind is not Kind.SOURCE:
        return False
    before, after = old.sources[change.name], new.sources[change.name]

    def quarantined(source: Any) -> dict[str, Any]:
        return {column: rules for column, rules in source.expect.items()
                if rules.on_fail == "quarantine"}

    same_reads = (before.model_dump(exclude=set(_CHECK_KEYS))
                  == after.model_dump(exclude=set(_CHECK_KEYS)))
    return same_reads and quarantined(before) == quarantined(after)


def _field_changes(old: object, new: object, fields: Iterable[str]) -> tuple[str, ...]:
    details = []
    for field in fields:
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            if isinstance(old, Store):
                # Store settings may be URLs with a password: plans are printed and logged.
                before, after = (redact_url(v) if isinstance(v, str) else v
                                 for v in (before, after))
            details.append(f"{field} {_show(before)} → {_show(after)}")
    return tuple(details)


def _show(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, tuple):
        return "[" + ", ".join(str(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {item}" for key, item in value.items()) + "}"
    return str(value)


def _diff_simple(
    kind: Kind, old: Mapping[str, Any], new: Mapping[str, Any], fields: tuple[str, ...] | None
) -> list[Change]:
    """Diff a section whose definitions change as a whole (entities, sources, services).

    `fields` names the attributes to describe; None means the value itself is shown.
    """
    changes = [Change(kind, name, Action.REMOVE) for name in old if name not in new]
    for name, value in new.items():
        if name not in old:
            changes.append(Change(kind, name, Action.ADD))
        elif old[name] != value:
            if fields is None:
                details: tuple[str, ...] = (f"{_show(old[name])} → {_show(value)}",)
            else:
                details = _field_changes(old[name], value, fields)
            changes.append(Change(kind, name, Action.CHANGE, details))
    return changes


def _diff_feature_views(
    old: Registry, new: Registry, changed_inputs: set[tuple[Kind, str]]
) -> list[Change]:
    changes: list[Change] = []
    for name, view in old.feature_views.items():
        if name not in new.feature_views:
            changes.append(Change(Kind.FEATURE_VIEW, name, Action.REMOVE))
            changes += [
                Change(Kind.FEATURE, f"{name}:{feature}", Action.REMOVE)
                for feature in view.features
            ]
    for name, view in new.feature_views.items():
        if name not in old.feature_views:
            changes.append(Change(Kind.FEATURE_VIEW, name, Action.ADD, _describe_view(view)))
            changes += [
                Change(
                    Kind.FEATURE,
                    f"{name}:{feature}",
                    Action.ADD,
                    (_describe_feature(new, name, feature),),
                )
                for feature in view.features
            ]
            continue
        inputs = {(Kind.SOURCE, view.source), (Kind.ENTITY, view.entity)}
        changes += _diff_view(old, new, name, bool(inputs & changed_inputs))
    return changes


def _describe_view(view: FeatureView) -> tuple[str, ...]:
    return (f"source {view.source}", f"entity {view.entity}")


def _describe_feature(registry: Registry, view: str, feature: str) -> str:
    definition = registry.feature_views[view].features[feature]
    what = definition.summary()
    if definition.window is None:
        return f"{what}, lifetime"
    hop = registry.effective_hop(view, feature)
    return f"{what}, window {format_duration(definition.window)}, hop {_duration(hop)}"


def _duration(value: int | None) -> str:
    return "(none)" if value is None else format_duration(value)


def _diff_view(old: Registry, new: Registry, name: str, inputs_changed: bool) -> list[Change]:
    """Changes inside a feature view present on both sides."""
    before, after = old.feature_views[name], new.feature_views[name]
    view_details = _field_changes(before, after, ("source", "entity"))
    # A new source or entity changes every value; a new view hop shows up per feature.
    view_stale = bool(view_details) or inputs_changed
    if before.hop != after.hop:
        view_details += (f"hop {_duration(before.hop)} → {_duration(after.hop)}",)
    # Description, tags and owner are for people: shown, never stale.
    view_details += _about_changes(before, after)
    # A removed feature changes the layout of the view's states: they are rebuilt.
    feature_changes = [
        Change(Kind.FEATURE, f"{name}:{feature}", Action.REMOVE, (), True)
        for feature in before.features
        if feature not in after.features
    ]
    for feature in after.features:
        if feature not in before.features:
            details: tuple[str, ...] = (_describe_feature(new, name, feature),)
            feature_changes.append(
                Change(Kind.FEATURE, f"{name}:{feature}", Action.ADD, details, True)
            )
            continue
        details = _feature_details(old, new, name, feature)
        about = _about_changes(before.features[feature], after.features[feature])
        if details or about:
            feature_changes.append(Change(Kind.FEATURE, f"{name}:{feature}", Action.CHANGE,
                                          details + about, bool(details)))
    if not view_details and not feature_changes and not view_stale:
        return []
    if inputs_changed and not view_details:
        view_details = ("its source or entity changed",)
    stale = view_stale or any(change.stale for change in feature_changes)
    return [Change(Kind.FEATURE_VIEW, name, Action.CHANGE, view_details, stale), *feature_changes]


def _about_changes(before: Described, after: Described) -> tuple[str, ...]:
    """Changes to a definition's description, tags or owner."""
    details = list(_field_changes(before, after, ("description", "owner")))
    if isinstance(before, Feature) and isinstance(after, Feature) and (
            before.expect != after.expect):
        # A feature's expectations are checked, not computed: never stale.
        details.append(f"expect {_show(before.expect)} → {_show(after.expect)}")
    if before.tags != after.tags:
        details.append(f"tags {_show_tags(before.tags)} → {_show_tags(after.tags)}")
    return tuple(details)


def _show_tags(tags: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{name}: {value}" for name, value in tags.items()) + "}"


def _feature_details(old: Registry, new: Registry, view: str, feature: str) -> tuple[str, ...]:
    before = old.feature_views[view].features[feature]
    after = new.feature_views[view].features[feature]
    details = list(_field_changes(before, after, ("agg", "expr", "n", "k", "precision", "q")))
    if before.half_life != after.half_life:
        details.append(
            f"half_life {_duration(before.half_life)} → {_duration(after.half_life)}")
    if before.window != after.window:
        details.append(f"window {_duration(before.window)} → {_duration(after.window)}")
    # Compare the hop actually used: writing the default explicitly is no change.
    old_hop, new_hop = old.effective_hop(view, feature), new.effective_hop(view, feature)
    if old_hop != new_hop:
        details.append(f"hop {_duration(old_hop)} → {_duration(new_hop)}")
    return tuple(details)


def _diff_request_views(old: dict[str, RequestView], new: dict[str, RequestView]) -> list[Change]:
    changes: list[Change] = []
    for name, view in old.items():
        if name not in new:
            changes.append(Change(Kind.REQUEST_VIEW, name, Action.REMOVE))
            changes += [
                Change(Kind.REQUEST_FEATURE, f"{name}:{f}", Action.REMOVE) for f in view.features
            ]
    for name, view in new.items():
        previous = old.get(name)
        before = previous.features if previous is not None else {}
        feature_changes = [
            Change(Kind.REQUEST_FEATURE, f"{name}:{f}", Action.REMOVE)
            for f in before
            if f not in view.features
        ]
        for feature, text in view.features.items():
            if feature not in before:
                feature_changes.append(
                    Change(Kind.REQUEST_FEATURE, f"{name}:{feature}", Action.ADD, (text,))
                )
            elif before[feature] != text:
                details = (f"{before[feature]} → {text}",)
                feature_changes.append(
                    Change(Kind.REQUEST_FEATURE, f"{name}:{feature}", Action.CHANGE, details)
                )
        if previous is None:
            changes.append(Change(Kind.REQUEST_VIEW, name, Action.ADD))
        elif previous.request != view.request or feature_changes:
            details = _request_details(previous, view)
            changes.append(Change(Kind.REQUEST_VIEW, name, Action.CHANGE, details))
        changes += feature_changes
    return changes


def _request_details(before: RequestView, after: RequestView) -> tuple[str, ...]:
    if before.request == after.request:
        return ()
    return (f"request fields {_show_fields(before.request)} → {_show_fields(after.request)}",)


def _show_fields(fields: dict[str, str]) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in fields.items()) or "(none)"
