"""`FeatureStore.fit`: build a service's training set, fit every transform's statistics
over it in one pass, and store them as a fitted artifact (`artifacts.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from featurestore.drift.profiles import feature_summaries
from featurestore.errors import InputError, NotAppliedError
from featurestore.fits.artifacts import FitArtifact, artifact_id, save_fit
from featurestore.fits.service_transforms import ServiceTransforms, service_transforms
from featurestore.offline.spine import load_spine
from featurestore.offline.training import feature_columns, plan_training_set
from featurestore.offline.training_output import FeatureColumn
from featurestore.registry.state import registry_hash
from transforms.analyzers import Categories, FitColumn, fit
from transforms.errors import FitError
from transforms.spec import ColumnType

if TYPE_CHECKING:
    from featurestore.context import StoreContext


@dataclass(frozen=True)
class FitResult:
    """What `fit` did.

    Attributes:
        artifact: the fitted artifact.
        new: False when an identical artifact (same id) was already stored.
        pinned: whether it now serves the service.
    """

    artifact: FitArtifact
    new: bool
    pinned: bool

    def render(self) -> str:
        """What the command line prints."""
        artifact = self.artifact
        state = "fitted" if self.new else "unchanged (the same definitions and statistics)"
        lines = [f"fit {artifact.id} of service {artifact.service}: {state}, "
                 f"{artifact.rows:,} rows, registry version {artifact.registry_version}"]
        for name, statistics in artifact.statistics.items():
            lines.append(f"  {name}: {summarize(statistics)}")
        lines.append("  pinned: served by online lookups of the service" if self.pinned else
                     f"  not pinned: `featurestore pin-fit {artifact.service} {artifact.id}` "
                     "serves it")
        return "\n".join(lines)


def summarize(statistics: dict[str, object], limit: int = 6) -> str:
    """Statistics in one line (long lists cut)."""
    parts = []
    for key, value in statistics.items():
        if isinstance(value, list):
            shown = ", ".join(_number(item) for item in value[:limit])
            value = f"[{shown}{', ...' if len(value) > limit else ''}] ({len(value)})"
        else:
            value = _number(value)
        parts.append(f"{key} {value}")
    return ", ".join(parts) or "(nothing to fit)"


def _number(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def fit_service(store: StoreContext, service: str, spine: object, timestamp: str = "event_ts",
                pin: bool | None = None) -> FitResult:
    """Fit a service's transforms on the training set of `spine`.

    Args:
        store: the feature store.
        service: a service with `transforms`.
        spine: as for `get_training_set` (entity keys, timestamp, request fields).
        timestamp: the spine's time column.
        pin: True to serve the new fit, False not to; None (default) pins it only when
            the service has no pinned fit yet.

    Raises:
        NotAppliedError: the registry file has changes that are not applied.
        InputError: the service has no transforms, a bad spine, or a numeric transform
            whose input has no values in this training set.
    """
    applied = store.applied()
    if applied is None or applied.registry_hash != registry_hash(store.registry_text):
        raise NotAppliedError("fitting needs the registry as applied, and the registry file "
                              "has changes that are not applied: run `featurestore apply` first")
    transforms = service_transforms(store.registry, store.kernels(), service)
    plan = plan_training_set(store, None, service, False)
    table = load_spine(spine, plan.keys, timestamp)
    columns = feature_columns(store, plan, table, timestamp)
    by_ref = dict(zip(plan.selection.refs, columns, strict=True))
    statistics = fit_statistics(transforms, by_ref)
    artifact = FitArtifact(
        id=artifact_id(transforms.definitions, statistics), service=service,
        created_at=datetime.now(UTC), rows=table.num_rows, registry_version=applied.version,
        definitions_hash=transforms.definitions_hash, definitions=transforms.definitions,
        statistics=statistics, profiles=feature_summaries(by_ref))
    new, pinned = save_fit(store.offline_database(), artifact, pin)
    if pinned:
        store.fits().pinned(service, artifact.id)
    return FitResult(artifact, new, pinned)


def fit_statistics(transforms: ServiceTransforms,
                   columns: dict[tuple[str, str], FeatureColumn]) -> dict[str, dict[str, object]]:
    """Every transform's statistics; each input column is read (and sorted) once.

    Raises:
        InputError: a numeric statistic over a column with no values.
    """
    inputs: dict[tuple[str, str], FitColumn] = {}
    statistics = {}
    for spec, ref in zip(transforms.specs, transforms.refs, strict=True):
        column = inputs.get(ref)
        if column is None:
            column = inputs[ref] = _fit_column(ref, columns[ref])
        try:
            statistics[spec.name] = fit(spec, column)
        except FitError as error:
            raise InputError(f"cannot fit transform '{spec.name}' of service "
                             f"'{transforms.service}': {error}") from None
    return statistics


def _fit_column(ref: tuple[str, str], column: FeatureColumn) -> FitColumn:
    name = f"{ref[0]}:{ref[1]}"
    if column.kind == ColumnType.STRING:
        return FitColumn(name, column.kind,
                         given_categories=Categories.of_strings(column.values,
                                                                column.dictionary or []))
    return FitColumn(name, column.kind, numbers=column.values)
