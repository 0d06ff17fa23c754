"""Point-in-time training sets (DESIGN §4 and §8): spine in, spine plus features out.

A training set keeps every spine column and row, in order, and appends one column per
requested feature. A feature-view feature at row (keys, t) is computed by the view's
compiled training kernel from the source's events before t (`point_in_time`); a
request-view feature by the request view's compiled kernel, from spine columns (its
request fields) and from the view features it depends on, the same kernel that serves
online lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar

import duckdb
import numpy as np
import pyarrow as pa

from featurestore.compilation import source_spec
from featurestore.errors import InputError
from featurestore.feature_columns import request_feature_type
from featurestore.fits.applying import ServiceProgram
from featurestore.fits.service_transforms import service_transforms
from featurestore.offline.point_in_time import (
    ViewRequest,
    ViewValues,
    compute_view_values,
    earliest_event_needed,
)
from featurestore.offline.remote_partitions import RemoteRun, remote_run
from featurestore.offline.request_features import evaluate_request_feature, read_request_fields
from featurestore.offline.source_cache import SourceCache, source_cache_dir
from featurestore.offline.sources import quote_literal
from featurestore.offline.spine import load_spine, spine_micros
from featurestore.offline.training_output import (
    NEVER_NULL_AGGREGATIONS,
    FeatureColumn,
    arrow_result,
    pandas_result,
)
from featurestore.references import FeatureSelection, select_features
from transforms import CompiledGraph
from transforms.graph import RequestInputs

if TYPE_CHECKING:
    import pandas as pd

if TYPE_CHECKING:
    from featurestore.context import StoreContext

Output = Literal["pandas", "arrow"]
OUTPUTS = ("pandas", "arrow")
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class TrainingPlan:
    """What a training set needs, resolved against the registry.

    Attributes:
        selection: the requested features and their output column names.
        views: feature view → features to compute (requested, or read by a
            requested request-view feature), in first-use order.
        keys: every entity key column the spine must hold, in first-use order.
        request_inputs: (request view, feature) → what it reads, per requested
            request-view feature.
    """

    selection: FeatureSelection
    views: dict[str, tuple[str, ...]]
    keys: tuple[str, ...]
    request_inputs: dict[tuple[str, str], RequestInputs]

    def request_fields(self) -> dict[str, str]:
        """Request fields the spine must hold → the request view that reads each."""
        return {field: view for (view, _), inputs in self.request_inputs.items()
                for field in sorted(inputs.fields)}


def plan_training_set(
    store: StoreContext,
    features: Sequence[str] | str | None,
    service: str | None,
    full_names: bool,
) -> TrainingPlan:
    """Resolve the requested features into the views and keys a training set needs.

    Raises:
        InputError: see `references.select_features`.
        SourceError, RegistryError: the registry cannot be compiled (what a request-view
            feature reads is known from its compiled kernel).
    """
    registry = store.registry
    selection = select_features(registry, features, service, full_names)
    needed: dict[str, dict[str, None]] = {}
    requests: dict[tuple[str, str], RequestInputs] = {}
    for view, feature in selection.refs:
        if view in registry.feature_views:
            needed.setdefault(view, {})[feature] = None
            continue
        compiled = store.kernels().request_views[view]
        inputs = requests[view, feature] = compiled.inputs_of([feature])
        for dependency_view, dependency in sorted(inputs.features):
            needed.setdefault(dependency_view, {})[dependency] = None
    keys: dict[str, None] = {}
    for view in needed:
        keys.update(dict.fromkeys(registry.entities[registry.feature_views[view].entity].keys))
    views = {view: tuple(names) for view, names in needed.items()}
    return TrainingPlan(selection, views, tuple(keys), requests)


def build_training_set(
    store: StoreContext,
    spine: object,
    features: Sequence[str] | str | None = None,
    service: str | None = None,
    timestamp: str = "event_ts",
    full_names: bool = False,
    output: Output = "pandas",
    transformed: bool = False,
    fit: str | None = None,
    engine: str | None = None,
) -> pd.DataFrame | pa.Table:
    """A point-in-time training set: the spine with feature columns appended (and with
    `transformed`, the service's transformed columns after them).

    See `FeatureStore.get_training_set` for the arguments.

    Raises:
        InputError: bad arguments, or a spine that lacks an entity key or the timestamp
            column, has nulls in the timestamp, lacks a request field, or already holds
            a column named like a feature. (Rows with a null entity key get an unseen
            entity's features, with a FeatureStoreWarning.)
        SourceError: a source cannot be read or does not match the definitions.
    """
    if output not in OUTPUTS:
        raise InputError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    program = transform_program(store, service, transformed, fit)
    plan = plan_training_set(store, features, service, full_names)
    table = load_spine(spine, plan.keys, timestamp)
    _check_new_columns(table, plan.selection.columns)
    columns = feature_columns(store, plan, table, timestamp, engine)
    if program is not None:
        names = program.output_names()
        _check_new_columns(table, names)
        clash = set(names) & set(plan.selection.columns)
        if clash:
            raise InputError(f"transformed column '{sorted(clash)[0]}' has the name of a "
                             "feature of the service; rename the transform")
        columns += program.columns(dict(zip(plan.selection.refs, columns, strict=True)))
    if output == "arrow":
        return arrow_result(table, columns)
    return pandas_result(table, columns)


def transform_program(store: StoreContext, service: str | None, transformed: bool,
                      fit: str | None) -> ServiceProgram | None:
    """The fitted transforms a training set appends (None without `transformed`).

    Raises:
        InputError: `fit` without `transformed`, `transformed` without `service`, a
            service without transforms, or no such fit.
    """
    if not transformed:
        if fit is not None:
            raise InputError("'fit' applies only with transformed=True")
        return None
    if service is None:
        raise InputError("transformed=True needs 'service': transforms belong to a service")
    if fit is not None and not isinstance(fit, str):
        raise InputError(f"'fit' must be a fit id or \"latest\", got {fit!r}")
    return store.fits().program(service_transforms(store.registry, store.kernels(), service),
                                fit)


def feature_columns(
    store: StoreContext, plan: TrainingPlan, spine: pa.Table, timestamp: str,
    engine: str | None = None,
) -> list[FeatureColumn]:
    """The requested feature columns of a loaded spine, in request order.

    Partitions run on `engine` (None: $FEATURESTORE_ENGINE, else the registry's
    `store.engine`; see `executors.resolve_engine`).

    Raises:
        InputError: the spine lacks a request field a requested feature reads, or has
            it in a type that cannot stand for the field's.
        SourceError: a source cannot be read or does not match the definitions.
        EngineError: the engine cannot be reached or gave up on a partition.
    """
    graph = store.kernels()
    fields = read_request_fields(spine, plan.request_fields(), graph.request_views)
    spine_us = spine_micros(spine, timestamp)
    executor = store.executor(engine)
    with remote_run(store, executor, graph) as remote:
        values = with_connection(
            store, list(plan.views),
            lambda con: _all_view_values(con, store, plan, spine, spine_us, remote))
    by_ref = {(view, name): found for view, computed in values.items()
              for name, found in computed.values.items()}
    columns = []
    for (view, feature), name in zip(plan.selection.refs, plan.selection.columns, strict=True):
        if view in store.registry.feature_views:
            columns.append(_view_column(store, graph, values[view], view, feature, name))
            continue
        result = evaluate_request_feature(graph.request_views[view], feature, fields, by_ref,
                                          spine.num_rows)
        kind = request_feature_type(graph.request_views[view].feature_types.get(feature))
        columns.append(FeatureColumn(name, kind, result))
    return columns


def with_connection(
    store: StoreContext, views: Sequence[str],
    work: Callable[[duckdb.DuckDBPyConnection], _Result],
) -> _Result:  # fmt: skip
    """Run `work` on a DuckDB connection that can read the sources of `views`.

    File sources need no database: they are read from a private in-memory connection,
    so a training set never waits for (nor blocks) a materialization holding the
    offline file's write lock. Table and query sources need the offline file.
    """
    registry = store.registry
    sources = {registry.feature_views[view].source for view in views}
    if all(registry.sources[name].path is not None for name in sources):
        with duckdb.connect() as con:
            # Spill where the offline file's own connections would (else `.tmp` in the
            # working directory): sorting a partition may not fit in memory.
            con.execute(f"SET temp_directory = {quote_literal(f'{store.offline_path}.tmp')}")
            # Relative file names in SQL mean the registry's folder, as on the offline
            # file's connections, whatever the working directory.
            con.execute(f"SET file_search_path = {quote_literal(str(store.base_dir))}")
            return work(con)
    return store.offline_database().run(work)


def _all_view_values(
    con: duckdb.DuckDBPyConnection,
    store: StoreContext,
    plan: TrainingPlan,
    spine: pa.Table,
    spine_us: np.ndarray,
    remote: RemoteRun | None,
) -> dict[str, ViewValues]:
    registry = store.registry
    graph = store.kernels()
    first = int(spine_us.min()) if len(spine_us) else 0
    results = {}
    # CSV sources are read from Parquet copies, kept between calls while they are fresh.
    with SourceCache(source_cache_dir(store.offline_path)) as copies:
        for view, features in plan.views.items():
            definition = registry.feature_views[view]
            windows = [
                (definition.features[name].window, registry.effective_hop(view, name))
                for name in features
            ]
            keys = registry.entities[definition.entity].keys
            source = copies.use(source_spec(registry, definition.source, store.offline_path),
                                store.base_dir)
            request = ViewRequest(graph.views[view], source, tuple(keys), features,
                                  earliest_event_needed(windows, first))
            results[view] = compute_view_values(con, request, store.base_dir,
                                                spine.select(keys), spine_us, remote)
    return results


def _view_column(
    store: StoreContext, graph: CompiledGraph, values: ViewValues, view: str, feature: str,
    name: str,
) -> FeatureColumn:  # fmt: skip
    compiled = graph.views[view]
    dictionary_column = compiled.string_feature_columns.get(feature)
    return FeatureColumn(
        name=name,
        kind=compiled.feature_types[feature],
        values=values.values[feature],
        never_null=store.registry.feature_views[view].features[feature].agg
        in NEVER_NULL_AGGREGATIONS,
        dictionary=values.dictionaries.get(dictionary_column) if dictionary_column else None,
        ranked=feature in compiled.list_features and compiled.list_features[feature].ranked,
    )


def _check_new_columns(spine: pa.Table, names: Sequence[str]) -> None:
    clashes = [name for name in names if name in spine.column_names]
    if clashes:
        raise InputError(
            f"spine already has a column named '{clashes[0]}', like a requested feature; "
            "rename it or pass full_names=True to name features view__feature"
        )
