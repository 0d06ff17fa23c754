"""Which features a call asks for: `view:feature` references and services, resolved.

Training sets and online lookups take the same arguments (`features=[...]` or
`service=...`) and name their output columns the same way, so both resolve them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from featurestore.errors import InputError
from featurestore.registry import Registry
from featurestore.registry.suggestions import did_you_mean


@dataclass(frozen=True)
class FeatureSelection:
    """Requested features in request order, with their output column names.

    Attributes:
        refs: (view, feature) pairs; the view is a feature view or a request view.
        columns: output column name of each reference (bare, or `view__feature`).
    """

    refs: tuple[tuple[str, str], ...]
    columns: tuple[str, ...]

    def feature_views(self, registry: Registry) -> list[str]:
        """Feature views referenced directly, in first-use order."""
        return list(dict.fromkeys(v for v, _ in self.refs if v in registry.feature_views))

    def request_views(self, registry: Registry) -> list[str]:
        """Request views referenced, in first-use order."""
        return list(dict.fromkeys(v for v, _ in self.refs if v in registry.request_views))


def select_features(registry: Registry, features: Sequence[str] | str | None = None,
                    service: str | None = None, full_names: bool = False) -> FeatureSelection:
    """Resolve `features` (references or service names) or `service` into a selection.

    Raises:
        InputError: neither or both given, an unknown view, feature or service (with a
            suggestion), or two features sharing a bare name without `full_names`.
    """
    if (features is None) == (service is None):
        raise InputError("give exactly one of 'features' (a list of 'view:feature') or 'service'")
    if isinstance(features, str):
        features = [features]
    members = [service] if service is not None else list(features or [])
    if not members:
        raise InputError("'features' is empty: name at least one 'view:feature'")
    refs: dict[tuple[str, str], None] = {}
    for member in members:
        for ref in _expand(registry, member):
            refs.setdefault(ref, None)
    ordered = tuple(refs)
    return FeatureSelection(ordered, _column_names(ordered, full_names))


def _expand(registry: Registry, member: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(member, str):
        raise InputError(f"feature references are strings like 'view:feature', got {member!r}")
    if ":" not in member:
        if member in registry.services:
            return registry.service_features(member)
        raise InputError(f"unknown service '{member}'{did_you_mean(member, registry.services)}"
                         " (features are written 'view:feature')")
    view, feature = member.split(":", 1)
    views = {**registry.feature_views, **registry.request_views}
    if view not in views:
        raise InputError(f"unknown view '{view}' in '{member}'{did_you_mean(view, views)}")
    known = views[view].features
    if feature not in known:
        raise InputError(f"unknown feature '{feature}' in view '{view}'"
                         f"{did_you_mean(feature, known)}")
    return ((view, feature),)


def _column_names(refs: tuple[tuple[str, str], ...], full_names: bool) -> tuple[str, ...]:
    if full_names:
        return tuple(f"{view}__{feature}" for view, feature in refs)
    seen: dict[str, str] = {}
    for view, feature in refs:
        if feature in seen:
            raise InputError(f"features '{seen[feature]}:{feature}' and '{view}:{feature}' share "
                             "the name "
                             f"'{feature}'; pass full_names=True to name columns view__feature")
        seen[feature] = view
    return tuple(feature for _, feature in refs)
