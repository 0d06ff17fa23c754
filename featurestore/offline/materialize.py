"""Materialization: kernel states in DuckDB, latest values, and the online load.

`materialize(end=T)` folds every event with `ts < T` into one state blob per entity and
feature view (the tiles and running aggregates the kernels merge at lookup time),
keeps them in the offline file (table `featurestore_states`), writes a latest-values
table per view (`features_<view>`: every entity's features at T), records the
watermark T per view (table `featurestore_materializations`) and then loads every state
into a new online-store version and publishes it in one step.

Incremental runs read only events with `watermark <= ts < T` and fold them into the
stored states; the fold continues exactly where the previous one stopped, so the states
equal those of one run over everything. Events that arrive later with a time before the
watermark (late events) are not picked up by an incremental run: `full=True` rebuilds
from all events. A change of the compiled graph (any definition) forces a full rebuild.

All offline writes of a run happen in one DuckDB transaction: a run that fails or is
killed leaves the previous states, tables and watermarks as they were.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import orjson
import pyarrow as pa

from featurestore.compilation import source_spec
from featurestore.errors import InputError, NotAppliedError
from featurestore.feature_columns import feature_array
from featurestore.offline import events
from featurestore.offline.dictionaries import build_dictionaries
from featurestore.offline.events import read_partitions, suggest_partitions
from featurestore.offline.sources import count_rows, quote_identifier
from featurestore.online.entity_keys import decode_entity_key, encode_entity_key
from featurestore.registry.state import registry_hash
from featurestore.times import format_micros, now_micros, to_micros
from transforms import CompiledGraph, CompiledView

if TYPE_CHECKING:
    from featurestore.store import FeatureStore

STATES_TABLE = "featurestore_states"
RUNS_TABLE = "featurestore_materializations"
LOAD_BATCH = 20_000

Progress = Callable[[str, int, int, int], None]
"""Called as progress(view, partitions_done, partitions_total, events_done)."""


@dataclass
class ViewRun:
    """What one materialization did for one feature view."""

    view: str
    incremental: bool
    start_us: int | None
    events: int = 0
    entities: int = 0


@dataclass
class MaterializeResult:
    """Outcome of `materialize`: the end time, per-view work and the online version."""

    end_us: int
    views: list[ViewRun] = field(default_factory=list)
    online_version: str = ""
    online_states: int = 0

    def render(self) -> str:
        """A short human-readable report."""
        lines = [f"materialized events before {format_micros(self.end_us)}"]
        for run in self.views:
            since = (f"since {format_micros(run.start_us)}" if run.start_us is not None
                     else "full rebuild")
            lines.append(f"  {run.view}: {run.events:,} events, {run.entities:,} entities "
                         f"updated ({since})")
        lines.append(f"  online store: {self.online_states:,} states published "
                     f"(version {self.online_version})")
        return "\n".join(lines)


def materialize(store: FeatureStore, end: object = None, full: bool = False,
                progress: Progress | None = None) -> MaterializeResult:
    """Process events before `end` (default now), update offline tables, load online.

    Raises:
        NotAppliedError: the registry file differs from the applied version.
        InputError: `end` is not a time, or is before the last materialization's end
            without `full`.
        SourceError: a source cannot be read.
        OnlineStoreUnavailable: the online store cannot be reached (the offline tables
            are already updated; the next run loads the online store again).
    """
    end_us = now_micros() if end is None else to_micros(end, "end")
    applied = store.applied()
    if applied is None or applied.registry_hash != registry_hash(store.registry_text):
        raise NotAppliedError("the registry file has changes that are not applied: "
                              "run `featurestore apply` first")
    graph = store.kernels()
    result = MaterializeResult(end_us=end_us)
    result.views = store.offline_database().run(
        lambda con: _materialize_offline(con, store, graph, end_us, full, progress))
    result.online_version, result.online_states = load_online(store, graph)
    return result


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATES_TABLE} "
                "(view VARCHAR NOT NULL, entity BLOB NOT NULL, state BLOB NOT NULL)")
    con.execute(f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (view VARCHAR PRIMARY KEY, "
                "graph_hash VARCHAR NOT NULL, end_us BIGINT NOT NULL, "
                "dictionaries VARCHAR NOT NULL, updated_at TIMESTAMPTZ NOT NULL)")


def _materialize_offline(con: duckdb.DuckDBPyConnection, store: FeatureStore,
                         graph: CompiledGraph, end_us: int, full: bool,
                         progress: Progress | None) -> list[ViewRun]:
    _create_tables(con)
    con.begin()
    try:
        runs = [_materialize_view(con, store, graph, name, end_us, full, progress)
                for name in store.registry.feature_views]
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return runs


def _materialize_view(con: duckdb.DuckDBPyConnection, store: FeatureStore,
                      graph: CompiledGraph, name: str, end_us: int, full: bool,
                      progress: Progress | None) -> ViewRun:
    view = graph.views[name]
    rows = con.execute(f"SELECT graph_hash, end_us, dictionaries FROM {RUNS_TABLE} "
                       "WHERE view = ?", [name]).fetchall()
    previous = rows[0] if rows else None
    incremental = not full and previous is not None and previous[0] == graph.hash
    if incremental and end_us < previous[1]:
        raise InputError(f"end {format_micros(end_us)} is before the last materialization of "
                         f"'{name}' ({format_micros(previous[1])}); rebuild with full=True "
                         "(--full)")
    spec = source_spec(store.registry, store.registry.feature_views[name].source,
                       store.offline_path)
    if incremental:
        dictionaries = orjson.loads(previous[2])
    else:
        dictionaries = build_dictionaries(con, spec, store.base_dir, view.string_columns)
        con.execute(f"DELETE FROM {STATES_TABLE} WHERE view = ?", [name])
    run = ViewRun(name, incremental, previous[1] if incremental else None)
    keys = store.registry.entities[store.registry.feature_views[name].entity].keys
    total = suggest_partitions(count_rows(con, spec, store.base_dir), events.ROWS_PER_PARTITION)
    with tempfile.TemporaryDirectory(prefix="featurestore-") as staging:
        partitions = read_partitions(con, spec, store.base_dir, keys, view.input_columns,
                                     view.string_columns, dictionaries, run.start_us, end_us,
                                     total, staging_dir=staging)
        for done, partition in enumerate(partitions, start=1):
            if len(partition):
                _fold_partition(con, view, name, partition, dictionaries, end_us, incremental)
                run.events += len(partition)
                run.entities += partition.key_table.num_rows
            if progress is not None:
                progress(name, done, total, run.events)
    con.execute(f"DELETE FROM {RUNS_TABLE} WHERE view = ?", [name])
    con.execute(f"INSERT INTO {RUNS_TABLE} VALUES (?, ?, ?, ?, now())",
                [name, graph.hash, end_us, orjson.dumps(dictionaries).decode()])
    _write_latest_values(con, view, name, keys, dictionaries, end_us)
    return run


def _fold_partition(con: duckdb.DuckDBPyConnection, view: CompiledView, name: str,
                    partition: object, dictionaries: dict[str, list[str]], end_us: int,
                    incremental: bool) -> None:
    """Fold one partition's events into its entities' stored states (upsert)."""
    keys = [encode_entity_key(tuple(row.values()))
            for row in partition.key_table.to_pylist()]
    old = _stored_states(con, name, keys) if incremental else [None] * len(keys)
    states = view.update_states(old, partition.entity, partition.ts, partition.columns,
                                dictionaries, end_us)
    batch = pa.table({
        "view": pa.array([name] * len(states.blobs), pa.string()),
        "entity": pa.array([keys[i] for i in states.entities], pa.binary()),
        "state": pa.array(states.blobs, pa.binary()),
    })
    con.register("fs_batch", batch)
    try:
        if incremental:
            con.execute(f"DELETE FROM {STATES_TABLE} WHERE view = ? AND entity IN "
                        "(SELECT entity FROM fs_batch)", [name])
        con.execute(f"INSERT INTO {STATES_TABLE} SELECT view, entity, state FROM fs_batch")
    finally:
        con.unregister("fs_batch")


def _batches(con: duckdb.DuckDBPyConnection, sql: str,
             params: list[object] | None = None) -> Iterator[pa.RecordBatch]:
    """Stream a query result as Arrow record batches (DuckDB 1.x and 2.x spellings)."""
    relation = con.sql(sql, params=params)
    reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    yield from reader(LOAD_BATCH)


def _stored_states(con: duckdb.DuckDBPyConnection, name: str,
                   keys: list[bytes]) -> list[bytes | None]:
    wanted = pa.table({"i": pa.array(range(len(keys)), pa.int64()),
                       "entity": pa.array(keys, pa.binary())})
    con.register("fs_wanted", wanted)
    try:
        rows = con.execute(f"SELECT w.i, s.state FROM fs_wanted w JOIN {STATES_TABLE} s "
                           "ON s.view = ? AND s.entity = w.entity", [name]).fetchall()
    finally:
        con.unregister("fs_wanted")
    found: list[bytes | None] = [None] * len(keys)
    for i, state in rows:
        found[i] = bytes(state)
    return found


def _write_latest_values(con: duckdb.DuckDBPyConnection, view: CompiledView, name: str,
                         keys: tuple[str, ...], dictionaries: dict[str, list[str]],
                         end_us: int) -> None:
    """Replace `features_<view>`: every entity's feature values at the end time."""
    table = quote_identifier(f"features_{name}")
    reader = _batches(con, f"SELECT entity, state FROM {STATES_TABLE} WHERE view = ? "
                      "ORDER BY entity", [name])
    batches = [_latest_batch(view, keys, dictionaries, end_us, batch) for batch in reader]
    values = pa.concat_tables(batches) if batches else _latest_batch(
        view, keys, dictionaries, end_us, None)
    con.register("fs_latest", values)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM fs_latest")
    finally:
        con.unregister("fs_latest")


def _latest_batch(view: CompiledView, keys: tuple[str, ...],
                  dictionaries: dict[str, list[str]], end_us: int,
                  batch: pa.RecordBatch | None) -> pa.Table:
    entities = batch.column("entity").to_pylist() if batch is not None else []
    blobs = batch.column("state").to_pylist() if batch is not None else []
    decoded = [decode_entity_key(entity) for entity in entities]
    out = view.values_from_states(blobs, end_us)
    columns: dict[str, pa.Array] = {}
    for i, key in enumerate(keys):
        columns[key] = pa.array([d[i] for d in decoded])
    for k, feature in enumerate(view.feature_names):
        column = view.string_feature_columns.get(feature)
        columns[feature] = feature_array(out[k], view.feature_types[feature],
                                         dictionaries.get(column) if column else None)
    columns["as_of"] = pa.array([end_us] * len(blobs), pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


def load_online(store: FeatureStore, graph: CompiledGraph) -> tuple[str, int]:
    """Load every stored state into a new online version and publish it atomically.

    Returns:
        (version name, number of states written).
    """
    online = store.online_store()
    version = f"m{now_micros()}-{uuid.uuid4().hex[:8]}"

    def stage(con: duckdb.DuckDBPyConnection) -> int:
        metadata = {"graph_hash": graph.hash.encode()}
        for view, end_us, dictionaries in con.execute(
                f"SELECT view, end_us, dictionaries FROM {RUNS_TABLE}").fetchall():
            metadata[f"dictionaries:{view}"] = dictionaries.encode()
            metadata[f"end:{view}"] = str(end_us).encode()
        return online.write_version(version, _stored_items(con), metadata)

    try:
        count = store.offline_database().run(stage)
        online.publish(version)
    except BaseException:
        online.discard(version)
        raise
    return version, count


def _stored_items(con: duckdb.DuckDBPyConnection) -> Iterator[tuple[str, tuple, bytes]]:
    reader = _batches(con, f"SELECT view, entity, state FROM {STATES_TABLE}")
    for batch in reader:
        views = batch.column("view").to_pylist()
        entities = batch.column("entity").to_pylist()
        states = batch.column("state").to_pylist()
        for view, entity, state in zip(views, entities, states, strict=True):
            yield view, decode_entity_key(entity), state
