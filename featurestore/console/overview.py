"""What the Overview page shows: versions, stores, freshness per view, counts, warnings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from featurestore.catalog import Catalog, Materialization
from featurestore.credentials import redact_url
from featurestore.errors import FeatureStoreError, StoreLockedError
from featurestore.online.published import REGISTRY, published_registry
from featurestore.registry.durations import format_duration
from featurestore.registry.state import AppliedRegistry, registry_hash
from featurestore.store import FeatureStore
from featurestore.validation.records import BrokenRule, latest_broken


@dataclass(frozen=True)
class ViewFreshness:
    """One feature view's last materialization, as the Overview lists it.

    Attributes:
        view: the view.
        run: its last materialization (None: never materialized).
        age_s: seconds from the materialization's end to now (None: never).
        stale: why the view needs a materialization (None: it does not).
    """

    view: str
    run: Materialization | None
    age_s: float | None
    stale: str | None


@dataclass(frozen=True)
class Overview:
    """Everything on the Overview page.

    Attributes:
        project: the registry's project name.
        online: the online store setting, with any password masked.
        offline: the offline file's path.
        applied_version: the newest applied registry version (None: never applied).
        applied_at: when it was applied (ISO-8601).
        served_version: the registry version of the states the online store publishes
            (None: nothing published, or the store could not be read; `served_problem`).
        counts: (label, number, Registry page section) of entities, sources, views,
            features, request views, services, training sets and fits.
        views: the freshness of each feature view, in registry order.
        warnings: what needs attention, one sentence each.
    """

    project: str
    online: str
    offline: str
    applied_version: int | None
    applied_at: str | None
    served_version: int | None
    served_problem: str | None
    counts: tuple[tuple[str, int, str], ...]
    views: tuple[ViewFreshness, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


def build_overview(store: FeatureStore, catalog: Catalog,
                   registry_problems: tuple[str, ...] = ()) -> Overview:
    """Read versions, runs and validations for the Overview page.

    Args:
        store: the store shown.
        catalog: its catalog (definitions, types and last runs).
        registry_problems: why the registry file on disk does not load, if it does not.
    """
    registry = store.registry
    warnings = [f"registry.yaml does not load, showing its last valid version: {problem}"
                for problem in registry_problems]
    applied = _applied(store, warnings)
    if applied is not None and applied.registry_hash != registry_hash(store.registry_text):
        warnings.append("registry.yaml has changes that are not applied: run "
                        "`featurestore apply`")
    elif applied is None:
        warnings.append("the registry was never applied: run `featurestore apply`")
    served, served_problem = _served_version(store)
    if served_problem is not None:
        warnings.append(served_problem)
    now = time.time()
    views = tuple(_freshness(store, name, catalog.runs.get(name), now)
                  for name in registry.feature_views)
    warnings += [f"feature view {view.view} is stale: {view.stale}" for view in views
                 if view.stale]
    warnings += [_broken_warning(rule) for rule in _broken(store, warnings)]
    features = sum(len(view.features) for view in registry.feature_views.values())
    counts = (("entities", len(registry.entities), "entities"),
              ("sources", len(registry.sources), "sources"),
              ("feature views", len(registry.feature_views), "feature-views"),
              ("features", features, "feature-views"),
              ("request views", len(registry.request_views), "request-views"),
              ("services", len(registry.services), "services"),
              ("training sets", len(catalog.training_sets), "training-sets"),
              ("fits", len(catalog.fits), "fits"))
    return Overview(registry.project, redact_url(store.online), str(store.context.offline_path),
                    applied.version if applied else None,
                    _iso(applied.applied_at) if applied else None, served, served_problem,
                    counts, views, tuple(warnings))


def _applied(store: FeatureStore, warnings: list[str]) -> AppliedRegistry | None:
    try:
        return store.offline_database().latest(read_only=True)
    except StoreLockedError:
        warnings.append("the offline file is busy (a materialization or apply is running): "
                        "versions and runs may be a moment old")
    except FeatureStoreError as error:
        warnings.append(f"cannot read the offline file: {error}")
    return None


def _served_version(store: FeatureStore) -> tuple[int | None, str | None]:
    try:
        result = store.online_store().read([], [REGISTRY])
    except FeatureStoreError as error:
        return None, f"cannot read the online store: {error}"
    if result.version is None:
        return None, "nothing is published in the online store yet: run `featurestore " \
                     "materialize`"
    published = published_registry(result.metadata)
    return (published.version if published else None), None


def _freshness(store: FeatureStore, view: str, run: Materialization | None,
               now: float) -> ViewFreshness:
    if run is None:
        return ViewFreshness(view, None, None, "never materialized")
    age = now - datetime.fromisoformat(run.end).timestamp()
    stale = None
    if run.current is False:
        stale = "its definition changed since the last materialization"
    else:
        source = store.registry.sources[store.registry.feature_views[view].source]
        limit = source.freshness.max_age / 1e6 if source.freshness else None
        if limit is not None and age > limit:
            stale = (f"materialized up to {run.end}, older than its source's freshness "
                     f"max_age {format_duration(source.freshness.max_age)}")
    return ViewFreshness(view, run, age, stale)


def _broken(store: FeatureStore, warnings: list[str]) -> list[BrokenRule]:
    if not store.context.offline_path.exists():
        return []
    try:
        return store.offline_database().run(latest_broken, read_only=True)
    except StoreLockedError:
        return []  # already said when the applied version could not be read
    except FeatureStoreError as error:
        warnings.append(f"cannot read the validations: {error}")
        return []


def _broken_warning(rule: BrokenRule) -> str:
    where = f"{rule.target}.{rule.column}" if rule.column else rule.target
    return (f"expectation {rule.rule} on {where} failed ({rule.breaking:,} rows, "
            f"on_fail {rule.policy}) at {_iso(rule.run_at)}: see `featurestore validate`")


def _iso(moment: object) -> str:
    return moment.isoformat(timespec="seconds") if isinstance(moment, datetime) else str(moment)
