"""Materialization: kernel states in DuckDB, latest values, and the online load.

`materialize(end=T)` folds every event with `ts < T` into one state blob per entity and
feature view (the tiles and running aggregates the kernels merge at lookup time),
keeps them in the offline file (table `featurestore_states`), writes a latest-values
table per view (`features_<view>`: every entity's features at T), records per view the
end T, the view's state key and what was read from its source (table
`featurestore_view_runs`; every run also adds a row per view to the history of
`run_history.py`), then loads every state into a new online-store version and
publishes it, with the registry version that built it, in one step.

Incremental runs continue each entity's fold with the events in `[previous end, T)`;
the fold continues exactly where the previous one stopped, so the states equal those
of one run over everything. Events that reached the record since with any other time
(late pushes, files added to a glob, rows added or corrected in a table) are found by
`manifest.py` and `changed_entities.py`, and the entities they belong to are recomputed
from all their events. A file rewritten or removed, or a view whose state key changed
(its definitions, or its source's), is rebuilt from all events. Views are independent:
a change to one rebuilds only that one.

All offline writes of a run happen in one DuckDB transaction: a run that fails or is
killed leaves the previous states, tables and watermarks as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.compilation import source_spec
from featurestore.errors import InputError, NotAppliedError
from featurestore.feature_columns import view_feature_array
from featurestore.offline import events
from featurestore.offline.changed_entities import (
    ViewSource,
    checksum_changes,
    compute_checksums,
    drop_checksums,
    keep_checksums,
    new_data_keys,
    write_keys,
)
from featurestore.offline.dictionaries import build_dictionaries
from featurestore.offline.event_query import EntityFilter, plan_events
from featurestore.offline.events import read_partitions, suggest_partitions
from featurestore.offline.manifest import (
    ManifestChanges,
    SourceManifest,
    capture_manifest,
    compare_manifests,
)
from featurestore.offline.partition_tasks import (
    FoldTask,
    entity_keys,
    lookup_states,
    state_batch,
)
from featurestore.offline.publications import record_publication
from featurestore.offline.pushed_after_end import FoldedStates, fold_pushed_after_end
from featurestore.offline.remote_partitions import RemoteRun, remote_run
from featurestore.offline.run_history import create_run_history_table, record_view_run
from featurestore.offline.source_cache import SourceCache, source_cache_dir
from featurestore.offline.sources import count_rows, quote_identifier
from featurestore.online.entity_keys import decode_entity_key, encode_entity_key
from featurestore.online.published import PublishedRegistry, ViewPublication, publication_metadata
from featurestore.online.stored_states import join_value
from featurestore.registry import Source
from featurestore.registry.state import registry_hash
from featurestore.statistics.history import create_statistics_table, record_view_statistics
from featurestore.times import format_micros, now_micros, to_micros
from featurestore.validation.at_materialize import RunChecks
from featurestore.validation.errors import ExpectationError
from featurestore.view_states import compiled_state_keys
from transforms import CompiledGraph, CompiledView

if TYPE_CHECKING:
    from featurestore.context import StoreContext
    from featurestore.registry.state import AppliedRegistry

STATES_TABLE = "featurestore_states"
RUNS_TABLE = "featurestore_view_runs"
LOAD_BATCH = 20_000

Progress = Callable[[str, int, int, int], None]
"""Called as progress(view, partitions_done, partitions_total, events_done)."""


@dataclass
class ViewRun:
    """What one materialization did for one feature view.

    Attributes:
        view: the view.
        incremental: True when the stored states were continued, not rebuilt.
        start_us: the previous run's end (incremental runs), else None.
        rebuild: why the view was rebuilt from all events (None when incremental).
        events: events folded.
        entities: entities whose state was written.
        recomputed: entities recomputed from all their events because late, added or
            corrected data touched them (incremental runs).
    """

    view: str
    incremental: bool
    start_us: int | None
    rebuild: str | None = None
    events: int = 0
    entities: int = 0
    recomputed: int = 0

    def render(self) -> str:
        """One line for the report."""
        since = (f"since {format_micros(self.start_us)}" if self.start_us is not None
                 else f"full rebuild: {self.rebuild}")
        line = (f"{self.view}: {self.events:,} events, {self.entities:,} entities updated "
                f"({since})")
        if self.recomputed:
            line += (f"; {self.recomputed:,} entities recomputed from their history "
                     "(late, added or corrected events)")
        return line


@dataclass
class MaterializeResult:
    """Outcome of `materialize`: the end time, per-view work and the online version."""

    end_us: int
    views: list[ViewRun] = field(default_factory=list)
    online_version: str = ""
    online_states: int = 0
    registry_version: int = 0
    expectations: list[str] = field(default_factory=list)
    """Broken expectations (warn, quarantine) and rows quarantined, one line each."""

    def render(self) -> str:
        """A short human-readable report."""
        lines = [f"materialized events before {format_micros(self.end_us)} "
                 f"(registry version {self.registry_version})"]
        lines += [f"  {run.render()}" for run in self.views]
        lines += [f"  {line}" for line in self.expectations]
        lines.append(f"  online store: {self.online_states:,} states published "
                     f"(version {self.online_version})")
        return "\n".join(lines)


def materialize(store: StoreContext, end: object = None, full: bool = False,
                progress: Progress | None = None,
                engine: str | None = None) -> MaterializeResult:
    """Process events before `end` (default now), update offline tables, load online.

    Partitions are folded on `engine` (None: $FEATURESTORE_ENGINE, else the registry's
    `store.engine`); on a remote engine each partition's states come back as a Parquet
    part and are committed here, in the run's one transaction, once all are done.

    Raises:
        NotAppliedError: the registry file differs from the applied version.
        InputError: `end` is not a time, or is before the last materialization's end
            without `full`.
        SourceError: a source cannot be read, or changed in a way that cannot be
            followed incrementally (the message says what to run).
        OnlineStoreUnavailable: the online store cannot be reached (the offline tables
            are already updated; the next run loads the online store again).
        ExpectationError: an expectation with `on_fail: fail` is broken (nothing is
            changed; the run's verdicts are recorded).
        EngineError: the engine cannot be reached or gave up on a partition (nothing
            is changed).
    """
    run_at = datetime.now(UTC)
    end_us = now_micros() if end is None else to_micros(end, "end")
    applied = _current_applied(store)
    graph = store.kernels()
    keys = compiled_state_keys(store.registry, graph)
    result = MaterializeResult(end_us=end_us, registry_version=applied.version)
    checks = RunChecks(store, end_us)
    executor = store.executor(engine)
    with remote_run(store, executor, graph) as remote:
        result.views = store.offline_database().run(
            lambda con: _materialize_offline(con, store, graph, keys, end_us, full, progress,
                                             checks, (run_at, applied.version), remote))
    result.expectations = checks.render()
    published = _publication(applied, graph, keys)
    result.online_version, result.online_states = load_online(store, published)
    return result


def publication(store: StoreContext) -> PublishedRegistry:
    """What a materialization publishes beside its states: the applied registry version,
    the sources' schemas and the views' state keys (for `load_online` on its own).

    Raises:
        NotAppliedError: the registry file differs from the applied version.
    """
    applied = _current_applied(store)
    graph = store.kernels()
    return _publication(applied, graph, compiled_state_keys(store.registry, graph))


def _current_applied(store: StoreContext) -> AppliedRegistry:
    applied = store.applied()
    if applied is None or applied.registry_hash != registry_hash(store.registry_text):
        raise NotAppliedError("the registry file has changes that are not applied: "
                              "run `featurestore apply` first")
    return applied


def _publication(applied: AppliedRegistry, graph: CompiledGraph,
                 keys: dict[str, str]) -> PublishedRegistry:
    return PublishedRegistry(
        applied.version, applied.registry_hash, applied.registry_text, applied.definition,
        {source: {column: str(kind) for column, kind in columns}
         for source, columns in graph.graph.spec.schemas}, keys)


def _create_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATES_TABLE} "
                "(view VARCHAR NOT NULL, entity BLOB NOT NULL, state BLOB NOT NULL, "
                "newest_us BIGINT)")
    # The entity's newest event folded into the state (null in files made before it
    # was kept: unknown until the entity's state is next written).
    con.execute(f"ALTER TABLE {STATES_TABLE} ADD COLUMN IF NOT EXISTS newest_us BIGINT")
    con.execute(f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (view VARCHAR PRIMARY KEY, "
                "state_key VARCHAR NOT NULL, end_us BIGINT NOT NULL, "
                "dictionaries VARCHAR NOT NULL, manifest VARCHAR, "
                "updated_at TIMESTAMPTZ NOT NULL)")
    create_statistics_table(con)
    create_run_history_table(con)


def _materialize_offline(con: duckdb.DuckDBPyConnection, store: StoreContext,
                         graph: CompiledGraph, keys: dict[str, str], end_us: int, full: bool,
                         progress: Progress | None, checks: RunChecks,
                         history: tuple[datetime, int],
                         remote: RemoteRun | None = None) -> list[ViewRun]:
    run_at, version = history  # the run's start and registry version, for `run_history`
    _create_tables(con)
    con.begin()
    try:
        # Source expectations before any state is folded: a failing rule stops early.
        checks.check_sources(con)
        with (_scratch(remote) as staging,
              SourceCache(source_cache_dir(store.offline_path)) as copies):
            runs = []
            for name in store.registry.feature_views:
                started = perf_counter()
                runs.append(_materialize_view(con, _ViewJob(
                    store, graph.views[name], keys[name], end_us, staging, copies, remote),
                    full, progress))
                record_view_run(con, runs[-1], end_us, run_at, perf_counter() - started,
                                version)
        # Views removed from the registry leave nothing behind that a reader could use.
        names = list(store.registry.feature_views)
        con.execute(f"DELETE FROM {RUNS_TABLE} WHERE NOT list_contains(?, view)", [names])
        con.execute(f"DELETE FROM {STATES_TABLE} WHERE NOT list_contains(?, view)", [names])
        # Feature expectations read the latest values just written, before publishing.
        checks.check_features(con)
        if checks.active:
            checks.record(con)
        con.commit()
    except ExpectationError as error:
        con.rollback()
        checks.record_failure(con, error)
        raise
    except BaseException:
        con.rollback()
        raise
    return runs


@contextlib.contextmanager
def _scratch(remote: RemoteRun | None) -> Iterator[Path]:
    """Where a run's scratch files go: the shared run folder on a remote engine (the
    workers read the recompute filters), else a private temporary folder."""
    if remote is not None:
        yield remote.folder
        return
    with tempfile.TemporaryDirectory(prefix="featurestore-") as staging:
        yield Path(staging)


@dataclass(frozen=True)
class _ViewJob:
    """One view's share of a run: what it reads and where its scratch files go
    (`copies`: the run's Parquet copies of CSV sources; `remote`: the remote run
    partitions go to, None in process)."""

    store: StoreContext
    view: CompiledView
    state_key: str
    end_us: int
    staging: Path
    copies: SourceCache
    remote: RemoteRun | None = None

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def keys(self) -> tuple[str, ...]:
        registry = self.store.registry
        return registry.entities[registry.feature_views[self.name].entity].keys

    @property
    def source_name(self) -> str:
        return self.store.registry.feature_views[self.name].source

    @property
    def source(self) -> Source:
        return self.store.registry.sources[self.source_name]


def _materialize_view(con: duckdb.DuckDBPyConnection, job: _ViewJob, full: bool,
                      progress: Progress | None) -> ViewRun:
    store, view, name, end_us = job.store, job.view, job.name, job.end_us
    rows = con.execute(f"SELECT state_key, end_us, dictionaries, manifest FROM {RUNS_TABLE} "
                       "WHERE view = ?", [name]).fetchall()
    previous = rows[0] if rows else None
    spec = source_spec(store.registry, store.registry.feature_views[name].source,
                       store.offline_path)
    policy = job.source.change_policy
    manifest = capture_manifest(spec, policy, store.base_dir, rebuild=full)
    # Every read of this run sees the same pushed segments: the ones recorded.
    spec = job.copies.use(dataclasses.replace(spec, segments=manifest.segments),
                          store.base_dir)
    source = ViewSource(spec, store.base_dir, job.keys, view.input_columns, view.string_columns)
    changes, reason = _what_changed(name, previous, manifest, job, full)
    # Counting may scan the source (CSV, queries): once per view, for every pass.
    partitions = suggest_partitions(count_rows(con, spec, store.base_dir),
                                    events.ROWS_PER_PARTITION)
    tables = policy in ("append", "rewrite")
    if tables:
        compute_checksums(con, source, previous[1] if reason is None else None, end_us)
    if reason is not None:
        run = ViewRun(name, False, None, rebuild=reason)
        dictionaries = build_dictionaries(con, spec, store.base_dir, view.string_columns)
        con.execute(f"DELETE FROM {STATES_TABLE} WHERE view = ?", [name])
        _fold_events(con, job, source, dictionaries, run, progress, partitions, None, None,
                     False)
    else:
        run = ViewRun(name, True, previous[1])
        dictionaries = orjson.loads(previous[2])
        selects = new_data_keys(con, source, changes, end_us)
        if tables:
            selects.append(checksum_changes(con, name, job.source_name, policy, len(job.keys)))
        recompute = _recompute_filter(con, job, selects)
        others = None if recompute is None else EntityFilter(recompute.keys_file, keep=False)
        _fold_events(con, job, source, dictionaries, run, progress, partitions, previous[1],
                     others, True)
        if recompute is not None:
            run.recomputed = recompute.count
            _fold_events(con, job, source, dictionaries, run, progress, partitions, None,
                         EntityFilter(recompute.keys_file, keep=True), False)
    if tables:
        keep_checksums(con, name)
    else:
        drop_checksums(con, name)
    con.execute(f"DELETE FROM {RUNS_TABLE} WHERE view = ?", [name])
    con.execute(f"INSERT INTO {RUNS_TABLE} VALUES (?, ?, ?, ?, ?, now())",
                [name, job.state_key, end_us, orjson.dumps(dictionaries).decode(),
                 manifest.to_json()])
    _write_latest_values(con, view, name, job.keys, dictionaries, end_us)
    # Statistics of the values just written, in the same transaction as they are.
    record_view_statistics(con, name, f"features_{name}", list(view.feature_names), end_us)
    return run


def _what_changed(name: str, previous: tuple | None, manifest: SourceManifest, job: _ViewJob,
                  full: bool) -> tuple[ManifestChanges | None, str | None]:
    """What changed since the last run, and why the view is rebuilt (None: it is not)."""
    if full:
        return None, "requested (--full)"
    if previous is None:
        return None, "first materialization"
    if previous[0] != job.state_key:
        return None, "its definitions changed"
    if job.end_us < previous[1]:
        raise InputError(f"end {format_micros(job.end_us)} is before the last materialization "
                         f"of '{name}' ({format_micros(previous[1])}); rebuild with "
                         "full=True (--full)")
    changes = compare_manifests(job.source_name, SourceManifest.from_json(previous[3]),
                                manifest)
    return changes, changes.rebuild


@dataclass(frozen=True)
class _Recompute:
    keys_file: str
    count: int


def _recompute_filter(con: duckdb.DuckDBPyConnection, job: _ViewJob,
                      selects: list[str]) -> _Recompute | None:
    """Write the keys of the entities to recompute and drop their stored states."""
    if not selects:
        return None
    path = job.staging / f"recompute-{job.name}.parquet"
    keys = write_keys(con, selects, len(job.keys), path)
    if keys.num_rows == 0:
        return None
    encoded = [encode_entity_key(tuple(row.values())) for row in keys.to_pylist()]
    con.register("fs_recompute", pa.table({"entity": pa.array(encoded, pa.binary())}))
    try:
        con.execute(f"DELETE FROM {STATES_TABLE} WHERE view = ? AND entity IN "
                    "(SELECT entity FROM fs_recompute)", [job.name]).fetchall()
    finally:
        con.unregister("fs_recompute")
    return _Recompute(str(path), keys.num_rows)


def _fold_events(con: duckdb.DuckDBPyConnection, job: _ViewJob, source: ViewSource,
                 dictionaries: dict[str, list[str]], run: ViewRun, progress: Progress | None,
                 total: int, start_us: int | None, entities: EntityFilter | None,
                 incremental: bool) -> None:
    """Fold the events in [start_us, end) (of some entities) into the stored states,
    reading the source in `total` partitions."""
    if job.remote is not None:
        _fold_remotely(con, job, source, dictionaries, run, progress, total,
                       (start_us, entities), incremental)
        return
    partitions = read_partitions(con, source.spec, source.base_dir, source.keys,
                                 source.columns, source.string_columns, dictionaries,
                                 start_us, job.end_us, total, staging_dir=job.staging,
                                 entities=entities)
    for done, partition in enumerate(partitions, start=1):
        if len(partition):
            _fold_partition(con, job.view, job.name, partition, dictionaries, job.end_us,
                            incremental)
            run.events += len(partition)
            run.entities += partition.key_table.num_rows
        if progress is not None:
            progress(job.name, done, total, run.events)


def _fold_remotely(con: duckdb.DuckDBPyConnection, job: _ViewJob, source: ViewSource,
                   dictionaries: dict[str, list[str]], run: ViewRun,
                   progress: Progress | None, total: int,
                   window: tuple[int | None, EntityFilter | None], incremental: bool) -> None:
    """`_fold_events` with each partition on a worker: a `FoldTask` per partition writes
    its states as a Parquet part (continuing the stored states, exported for the
    workers, on incremental runs); once every task is done the parts are upserted in
    partition order, inside the run's transaction."""
    remote = job.remote
    assert remote is not None
    start_us, entities = window
    query = plan_events(con, source.spec, source.base_dir, source.keys, source.columns,
                        source.string_columns, start_us, job.end_us, entities)
    reads = remote.partition_reads(con, source.spec, query, dictionaries, total)
    previous: list[str | None] = [None] * len(reads)
    if incremental:
        previous = remote.states_by_partition(
            con, f"SELECT entity, state, newest_us FROM {STATES_TABLE} WHERE view = ?",
            [job.name], query, total)
    tasks = [FoldTask(remote.kernels, job.name, read, job.end_us, previous[read.partition],
                      remote.file(f"states-{job.name}-{read.partition}"))
             for read in reads]
    results = remote.executor.run(tasks, "materialize")
    for done, result in enumerate(results, start=1):
        if result.path is not None:
            _upsert_states(con, job.name, pq.read_table(result.path), incremental)
            run.events += result.events
            run.entities += result.entities
        if progress is not None:
            progress(job.name, done, total, run.events)


def _fold_partition(con: duckdb.DuckDBPyConnection, view: CompiledView, name: str,
                    partition: object, dictionaries: dict[str, list[str]], end_us: int,
                    incremental: bool) -> None:
    """Fold one partition's events into its entities' stored states (upsert)."""
    keys = entity_keys(partition)
    old, old_newest = (_stored_states(con, name, keys) if incremental
                       else ([None] * len(keys), [None] * len(keys)))
    batch = state_batch(view, name, partition, dictionaries, end_us, keys, old, old_newest)
    _upsert_states(con, name, batch, incremental)


def _upsert_states(con: duckdb.DuckDBPyConnection, name: str, batch: pa.Table,
                   incremental: bool) -> None:
    """Write new state rows of a view, replacing the entities' old ones (incremental)."""
    con.register("fs_batch", batch)
    try:
        if incremental:
            con.execute(f"DELETE FROM {STATES_TABLE} WHERE view = ? AND entity IN "
                        "(SELECT entity FROM fs_batch)", [name])
        con.execute(f"INSERT INTO {STATES_TABLE} (view, entity, state, newest_us) "
                    "SELECT view, entity, state, newest_us FROM fs_batch")
    finally:
        con.unregister("fs_batch")


def _batches(con: duckdb.DuckDBPyConnection, sql: str,
             params: list[object] | None = None) -> Iterator[pa.RecordBatch]:
    """Stream a query result as Arrow record batches (DuckDB 1.x and 2.x spellings)."""
    relation = con.sql(sql, params=params)
    reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
    yield from reader(LOAD_BATCH)


def _stored_states(con: duckdb.DuckDBPyConnection, name: str,
                   keys: list[bytes]) -> tuple[list[bytes | None], list[int | None]]:
    """The stored states of entities (None: none) and their newest event times."""
    return lookup_states(con, STATES_TABLE, keys, "s.view = ? AND", [name])


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
    names = view.feature_names
    for feature, values in view.split_features(out[view.rows_of(names)], names).items():
        columns[feature] = view_feature_array(view, feature, values, dictionaries)
    columns["as_of"] = pa.array([end_us] * len(blobs), pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


def load_online(store: StoreContext, published: PublishedRegistry) -> tuple[str, int]:
    """Load every stored state into a new online version and publish it atomically,
    with the registry version that built them (see `featurestore.online.published`).

    Returns:
        (version name, number of states written).
    """
    online = store.online_store()
    version = f"m{now_micros()}-{uuid.uuid4().hex[:8]}"

    def stage(con: duckdb.DuckDBPyConnection) -> int:
        views = [ViewPublication(*row) for row in con.execute(
            f"SELECT view, state_key, end_us, dictionaries FROM {RUNS_TABLE}").fetchall()]
        # Pushed events at or after a view's end are in no stored state: fold them in,
        # or publishing would drop them from the online store.
        folded, views = fold_pushed_after_end(con, store, views, STATES_TABLE, RUNS_TABLE)
        metadata = publication_metadata(published, views)
        # What each state holds, kept after a later run replaces it (for replay).
        record_publication(con, version, published.version, RUNS_TABLE)
        return online.write_version(version, _stored_items(con, folded), metadata)

    try:
        count = store.offline_database().run(stage)
        online.publish(version)
    except BaseException:
        online.discard(version)
        raise
    return version, count


def _stored_items(con: duckdb.DuckDBPyConnection,
                  folded: FoldedStates) -> Iterator[tuple[str, tuple, bytes]]:
    """Every stored state, or its value with pushed events folded in; then the states
    of entities that only pushed events after the end have."""
    remaining = dict(folded)
    reader = _batches(con, f"SELECT view, entity, state, newest_us FROM {STATES_TABLE}")
    for batch in reader:
        views = batch.column("view").to_pylist()
        entities = batch.column("entity").to_pylist()
        states = batch.column("state").to_pylist()
        newest = batch.column("newest_us").to_pylist()
        for view, entity, state, time in zip(views, entities, states, newest, strict=True):
            value = remaining.pop((view, entity), None) if remaining else None
            yield view, decode_entity_key(entity), value or join_value(state, time)
    for (view, entity), value in remaining.items():
        yield view, decode_entity_key(entity), value
