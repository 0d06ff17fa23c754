"""What one feature's page shows: its definition and lineage, the kernel that computes it,
its view's materializations, and plots of its values.

Plots come from the statistics each materialization stores; a view materialized before
statistics were kept has none stored, and its latest values are then profiled on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

from featurestore.catalog import Catalog, Description
from featurestore.errors import FeatureStoreError, InputError, NotMaterializedError
from featurestore.offline.run_history import MaterializationRecord, read_run_history
from featurestore.statistics.history import ViewStatisticsRun, read_history
from featurestore.statistics.model import ColumnStatistics
from featurestore.store import FeatureStore
from featurestore.times import format_micros

HISTORY_SHOWN = 50
"""Materializations listed (newest first) and plotted (oldest first) per feature."""


@dataclass(frozen=True)
class StatisticPoint:
    """One materialization's statistics of the feature, for the trend plots and table."""

    end: str
    run_at: str
    column: ColumnStatistics


@dataclass(frozen=True)
class FeaturePage:
    """Everything on a feature's page.

    Attributes:
        view: its feature view or request view.
        feature: its name.
        kind: "feature" or "request feature".
        description: the catalog's description (fields and lineage lines).
        kernel: the generated kernel source of its view (None: cannot be compiled now).
        kernel_problem: why there is no kernel source.
        runs: the view's materializations, newest first (none for request features).
        latest: the feature's statistics at the latest materialization (None: none).
        latest_origin: "stored" (at materialization) or "computed" (on demand, now).
        history: statistics per materialization, oldest first.
        statistics_problem: why there are no statistics (None when there are).
    """

    view: str
    feature: str
    kind: str
    description: Description
    kernel: str | None
    kernel_problem: str | None
    runs: tuple[MaterializationRecord, ...]
    latest: ColumnStatistics | None
    latest_origin: str | None
    history: tuple[StatisticPoint, ...]
    statistics_problem: str | None


def build_feature_page(store: FeatureStore, catalog: Catalog, view: str,
                       feature: str) -> FeaturePage:
    """Gather the page of feature `view:feature` (`catalog`: the store's).

    Raises:
        InputError: no such feature (the page answers 404).
    """
    description = catalog.describe(f"{view}:{feature}")
    kernel, kernel_problem = _kernel(store, view)
    if description.kind != "feature":
        return FeaturePage(view, feature, description.kind, description, kernel,
                           kernel_problem, (), None, None, (),
                           "request features are computed at lookup time from the request "
                           "and the features they read; they have no stored values")
    runs: tuple[MaterializationRecord, ...] = ()
    history: list[ViewStatisticsRun] = []
    if store.context.offline_path.exists():
        runs, history = store.offline_database().run(
            lambda con: (tuple(read_run_history(con, view, HISTORY_SHOWN)),
                         read_history(con, view)[-HISTORY_SHOWN:]), read_only=True)
    points = tuple(StatisticPoint(format_micros(run.end_us), run.run_at,
                                  run.statistics.column(feature))
                   for run in history if _has(run, feature))
    if points:
        return FeaturePage(view, feature, "feature", description, kernel, kernel_problem,
                           runs, points[-1].column, "stored", points, None)
    latest, problem = _computed(store, view, feature)
    return FeaturePage(view, feature, "feature", description, kernel, kernel_problem, runs,
                       latest, "computed" if latest else None, (), problem)


def _kernel(store: FeatureStore, view: str) -> tuple[str | None, str | None]:
    try:
        kernels = store.kernels()
    except FeatureStoreError as error:
        return None, str(error)
    compiled = kernels.views.get(view) or kernels.request_views.get(view)
    return (compiled.unit.shown, None) if compiled is not None else (None, "not compiled")


def _has(run: ViewStatisticsRun, feature: str) -> bool:
    return any(column.name == feature for column in run.statistics.columns)


def _computed(store: FeatureStore, view: str,
              feature: str) -> tuple[ColumnStatistics | None, str | None]:
    try:
        statistics = store.stats(view=view, columns=[feature])
    except NotMaterializedError:
        return None, "the view was never materialized: run `featurestore materialize`"
    except (InputError, FeatureStoreError) as error:
        return None, f"cannot profile its values: {error}"
    return statistics.column(feature), None
