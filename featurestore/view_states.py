"""State keys: which stored states a feature view's definitions can use.

A view's states (offline in DuckDB, online in the published version) are valid for a
registry exactly when its state key equals the one they were built with. The key hashes
the view's kernel fingerprint (`CompiledView.fingerprint`: features, windows, hops,
expressions, key and column types, engine version) and its source's definition (where
the events come from). Other views, request views and services are not part of it: an
edit to them leaves this view's states in use, with nothing to rebuild.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from featurestore.registry import Registry
from featurestore.validation.rules import quarantine_filter

_CHECKS = {"expect", "freshness", "row_count_change"}

if TYPE_CHECKING:
    from transforms import CompiledGraph


def state_key(registry: Registry, view: str, fingerprint: str) -> str:
    """The state key of one feature view, given its kernel fingerprint."""
    name = registry.feature_views[view].source
    source = registry.sources[name]
    # Keys left at their defaults are left out, so that a new optional key (such as
    # `timestamp_unit`) leaves the state keys of sources that do not set it unchanged.
    # Of the expectations only the quarantined rules change which rows are read; a
    # warn or fail rule, freshness or row_count_change changes no state.
    text = f"{fingerprint}\n{source.model_dump_json(exclude_defaults=True, exclude=_CHECKS)}"
    quarantined = quarantine_filter(registry, name)
    if quarantined is not None:
        text += "\n" + "\n".join(f"{rule.column} {rule.describe()} {rule.keys}"
                                  for rule in quarantined.rules)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def state_keys(registry: Registry, fingerprints: Mapping[str, str]) -> dict[str, str]:
    """The state key of every feature view, from `view → kernel fingerprint`."""
    return {view: state_key(registry, view, fingerprints[view])
            for view in registry.feature_views}


def compiled_state_keys(registry: Registry, kernels: CompiledGraph) -> dict[str, str]:
    """The state key of every feature view, from the registry's compiled kernels."""
    return state_keys(registry, {name: view.fingerprint for name, view in kernels.views.items()})
