"""Batch scoring: every entity's features at one time T, computed from raw events.

A snapshot is a training set whose spine is each entity seen in the sources before T
(distinct keys of events with `ts < T`), all at time T: the same kernels, the same
point-in-time rule, so a snapshot row equals the training-set row for that entity at T.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from featurestore.compilation import source_spec
from featurestore.errors import InputError
from featurestore.offline.keys import CANONICAL_KEY_TYPES
from featurestore.offline.point_in_time import key_kinds
from featurestore.offline.source_cache import SourceCache, source_cache_dir
from featurestore.offline.sources import (
    fetch_table,
    quote_identifier,
    source_errors,
    source_relation,
)
from featurestore.offline.training import (
    OUTPUTS,
    Output,
    feature_columns,
    plan_training_set,
    with_connection,
)
from featurestore.offline.training_output import arrow_result, pandas_result
from featurestore.times import to_micros

if TYPE_CHECKING:
    import pandas as pd

if TYPE_CHECKING:
    from featurestore.context import StoreContext

_TIME_COLUMN = "__featurestore_snapshot_ts"


def snapshot_entity(store: StoreContext, entity: str | None) -> str:
    """The entity a snapshot is for: `entity`, or the only one feature views use.

    Raises:
        InputError: the entity is unknown or has no feature views, or `entity` is None
            and feature views use several entities.
    """
    used = list(dict.fromkeys(view.entity for view in store.registry.feature_views.values()))
    if entity is None:
        if len(used) != 1:
            raise InputError(
                f"feature views use {len(used)} entities ({', '.join(used) or 'none'}): "
                "choose one with entity="
            )
        return used[0]
    if entity not in used:
        raise InputError(
            f"no feature view uses entity '{entity}'; entities with feature views: "
            f"{', '.join(used) or 'none'}"
        )
    return entity


def build_snapshot(
    store: StoreContext,
    at: object,
    entity: str | None = None,
    full_names: bool = False,
    output: Output = "pandas",
    engine: str | None = None,
) -> pd.DataFrame | pa.Table:
    """Every feature of every feature view of one entity, for each of its keys, at `at`.

    See `FeatureStore.snapshot` for the arguments.

    Raises:
        InputError: bad arguments (see `snapshot_entity`; two features share a bare
            name without `full_names`).
        SourceError: a source cannot be read.
    """
    if output not in OUTPUTS:
        raise InputError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    at_us = to_micros(at, "at")
    chosen = snapshot_entity(store, entity)
    registry = store.registry
    views = [name for name, view in registry.feature_views.items() if view.entity == chosen]
    features = [f"{view}:{feature}" for view in views
                for feature in registry.feature_views[view].features]
    plan = plan_training_set(store, features, None, full_names)
    keys = registry.entities[chosen].keys
    entities = with_connection(store, views, lambda con: _distinct_keys(con, store, views,
                                                                        keys, at_us))
    spine = entities.append_column(
        _TIME_COLUMN, pa.array([at_us] * entities.num_rows, pa.int64()).cast(pa.timestamp("us"))
    )
    columns = feature_columns(store, plan, spine, _TIME_COLUMN, engine)
    if output == "arrow":
        return arrow_result(entities, columns)
    return pandas_result(entities, columns)


def _distinct_keys(
    con: duckdb.DuckDBPyConnection,
    store: StoreContext,
    views: Sequence[str],
    keys: Sequence[str],
    at_us: int,
) -> pa.Table:
    """Distinct keys (canonical types) of events before `at_us` in the views' sources."""
    sources = dict.fromkeys(store.registry.feature_views[view].source for view in views)
    tables = [_source_keys(con, store, name, keys, at_us) for name in sources]
    combined = pa.concat_tables(tables)
    distinct = combined.group_by(list(keys)).aggregate([]).select(list(keys))
    return distinct.sort_by([(key, "ascending") for key in keys])


def _source_keys(con: duckdb.DuckDBPyConnection, store: StoreContext, name: str,
                 keys: Sequence[str], at_us: int) -> pa.Table:
    """Distinct keys (canonical types) of the events of one source before `at_us`."""
    with SourceCache(source_cache_dir(store.offline_path)) as copies:
        spec = copies.use(source_spec(store.registry, name, store.offline_path),
                          store.base_dir)
        kinds = key_kinds(con, spec, store.base_dir, keys)
        selected = ", ".join(
            f"CAST({quote_identifier(key)} AS {CANONICAL_KEY_TYPES[kind][0]}) "
            f"AS {quote_identifier(key)}"
            for key, kind in kinds.items()
        )
        present = " AND ".join(f"{quote_identifier(key)} IS NOT NULL" for key in keys)
        # source_relation holds the time as a naive TIMESTAMP in UTC.
        before = f"{quote_identifier(spec.timestamp)} < make_timestamp({int(at_us)}::BIGINT)"
        with source_errors(spec):
            return fetch_table(
                con, f"SELECT DISTINCT {selected} FROM {source_relation(spec, store.base_dir)} "
                f"WHERE {present} AND {before}",
            )  # fmt: skip
