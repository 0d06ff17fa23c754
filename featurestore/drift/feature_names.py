"""Which registry feature a column holds, and what a report calls it.

Training sets, files and logged lookups name a feature's column by its bare name or,
with full names, `view__feature`; fitted artifacts keep `view:feature`. Drift compares
by the feature itself, so every side's columns are resolved here to (view, feature)
pairs: `view__feature` always, a bare name when exactly one view has a feature of that
name. Columns that name no feature (entity keys, timestamps, labels, request fields,
transformed columns) are not compared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from featurestore.errors import InputError
from featurestore.references import select_features
from featurestore.registry import Registry
from featurestore.registry.suggestions import did_you_mean

Ref = tuple[str, str]
"""A feature: (view, feature), the view a feature view or a request view."""


class FeatureNames:
    """The registry's features by every name a column may have."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        refs = [(view, feature)
                for views in (registry.feature_views, registry.request_views)
                for view, definition in views.items() for feature in definition.features]
        bare = Counter(feature for _, feature in refs)
        self._shared = {feature: [view for view, name in refs if name == feature]
                        for feature, uses in bare.items() if uses > 1}
        self._unique = {feature: (view, feature) for view, feature in refs
                        if bare[feature] == 1}
        self._columns = {f"{view}__{feature}": (view, feature) for view, feature in refs}
        self._columns.update(self._unique)

    def of_column(self, column: str) -> Ref | None:
        """The feature a column named `column` holds, or None."""
        return self._columns.get(column)

    def shown(self, ref: Ref) -> str:
        """A feature's name in a report: bare when no other view has that name."""
        view, feature = ref
        return feature if self._unique.get(feature) == ref else f"{view}:{feature}"

    def resolve(self, names: Sequence[str]) -> list[Ref]:
        """The features a `--features` list names: bare names, `view:feature`, `view__feature`
        or service names, in order, each kept once.

        Raises:
            InputError: a name that is none of these (with a suggestion).
        """
        found: dict[Ref, None] = {}
        for name in names:
            if ":" in name or name in self._registry.services:
                found.update(dict.fromkeys(select_features(self._registry, [name]).refs))
            elif name in self._columns:
                found[self._columns[name]] = None
            elif name in self._shared:
                views = ", ".join(self._shared[name])
                raise InputError(f"feature name '{name}' is in several views ({views}): "
                                 f"write 'view:{name}'")
            else:
                raise InputError(f"unknown feature '{name}'"
                                 f"{did_you_mean(name, [*self._unique, *self._registry.services])}"
                                 " (write a feature's name, 'view:feature' or a service)")
        return list(found)
