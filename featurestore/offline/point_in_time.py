"""Feature values of one feature view at spine times, computed from raw events.

The source's events stream in hash partitions sorted by (entity, time)
(`events.read_partitions`); the spine rows are split by the same hash
(`keys.partition_of_keys`), so partition p's spine rows meet exactly partition p's events.
For each partition the spine rows are sorted by (entity, time), the view's compiled
training kernel computes the wanted features (only those) at those times, and they are
scattered back to spine order. Memory holds one partition of events at a time, plus one
float64 value per spine row and wanted feature.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.offline import events
from featurestore.offline.dictionaries import build_dictionaries
from featurestore.offline.event_query import EntityFilter, EventQuery, plan_events
from featurestore.offline.events import read_partitions, suggest_partitions
from featurestore.offline.keys import normalize_keys, partition_of_keys
from featurestore.offline.partition_tasks import SPINE_TS, TrainingTask
from featurestore.offline.remote_partitions import RemoteRun
from featurestore.offline.schema import check_columns, describe_source
from featurestore.offline.sources import SourceSpec, count_rows
from featurestore.offline.spine import present_rows
from transforms import CompiledView
from transforms.spec import ColumnType

# Events per hash partition: one partition's events are in memory at a time.
ROWS_PER_PARTITION = events.ROWS_PER_PARTITION
# A spine whose entities are few next to the source's rows (fewer than one per this many
# rows) reads only those entities' events: a 1,000-row spine need not read, sort and
# evaluate 10M events. Spines that cover most entities read everything, unfiltered.
ROWS_PER_FILTERED_ENTITY = 1000


@dataclass(frozen=True)
class ViewRequest:
    """What to compute for one feature view.

    Attributes:
        view: the compiled view.
        source: the view's source.
        keys: the entity key columns (in the source and in the spine).
        features: the features wanted, a subset of `view.feature_names`.
        start_us: events before this time cannot reach any wanted feature at the
            spine's times (None: every event can, e.g. for lifetime features).
    """

    view: CompiledView
    source: SourceSpec
    keys: tuple[str, ...]
    features: tuple[str, ...]
    start_us: int | None


@dataclass(frozen=True)
class ViewValues:
    """Wanted feature values of one view, in spine order.

    Attributes:
        values: feature → float64 array, one value per spine row (NaN = null; string
            features hold dictionary codes); a list feature's is a block of rows
            (`CompiledView.split_features`).
        dictionaries: source column → dictionary, to decode string features.
    """

    values: dict[str, np.ndarray]
    dictionaries: dict[str, list[str]]


def earliest_event_needed(
    windows: Sequence[tuple[int | None, int | None]], first_query_us: int
) -> int | None:
    """The start of the earliest window tail any query at or after `first_query_us` reads.

    Args:
        windows: (window, hop) in microseconds of each wanted feature; (None, None) for
            a lifetime feature.
        first_query_us: the earliest spine time.

    Returns:
        min over features of `floor(t, hop) - window` at the earliest spine time, or None
        when a lifetime feature needs every event.
    """
    starts = []
    for window, hop in windows:
        if window is None or hop is None:
            return None
        starts.append((first_query_us // hop) * hop - window)
    return min(starts) if starts else None


def compute_view_values(
    con: duckdb.DuckDBPyConnection,
    request: ViewRequest,
    base_dir: Path,
    spine_keys: pa.Table,
    spine_us: np.ndarray,
    remote: RemoteRun | None = None,
) -> ViewValues:
    """The wanted features of one view at every spine row's time.

    Args:
        con: a connection that can read the view's source.
        request: the view, its source and the wanted features.
        base_dir: folder that relative source paths are resolved against.
        spine_keys: the spine's key columns, in spine order; a row with a null key
            gets the values of an unseen entity (count and sum 0, the others null).
        spine_us: int64 spine times (µs UTC), in spine order.
        remote: send each partition to this run's executor (None: in this process).

    Raises:
        SourceError: the source cannot be read or does not match the definitions.
        InputError: a spine key column does not convert to the source's key type.
        EngineError: the remote engine gave up on a partition.
    """
    view = request.view
    wanted = view.rows_of(request.features)
    out = np.full((len(wanted), len(spine_us)), np.nan)
    if len(spine_us) == 0:
        return ViewValues(view.split_features(out, request.features), {})
    present = present_rows(spine_keys)
    if not present.all():
        return _without_null_keys(con, request, base_dir, spine_keys, spine_us, present,
                                  remote)
    key_types = key_kinds(con, request.source, base_dir, request.keys)
    keys = normalize_keys(spine_keys, key_types)
    dictionaries = build_dictionaries(con, request.source, base_dir, view.string_columns)
    source_rows = count_rows(con, request.source, base_dir)
    partitions = suggest_partitions(source_rows, ROWS_PER_PARTITION)
    by_partition = _rows_by_partition(
        partition_of_keys(con, keys, key_types, partitions), partitions
    )
    with _spine_entities(keys, source_rows, remote) as entities:
        if remote is not None:
            query = plan_events(con, request.source, base_dir, request.keys,
                                view.input_columns, view.string_columns, request.start_us,
                                int(spine_us.max()), entities)
            _remote_values(con, remote, request, query, (by_partition, keys, spine_us),
                           dictionaries, wanted, out)
            return ViewValues(view.split_features(out, request.features), dictionaries)
        partition_events = read_partitions(
            con, request.source, base_dir, request.keys, view.input_columns,
            view.string_columns, dictionaries, request.start_us, int(spine_us.max()),
            partitions, entities=entities,
        )  # fmt: skip
        _fill_values(view, partition_events, by_partition, keys, spine_us, dictionaries,
                     wanted, out)
    return ViewValues(view.split_features(out, request.features), dictionaries)


def _without_null_keys(
    con: duckdb.DuckDBPyConnection, request: ViewRequest, base_dir: Path,
    spine_keys: pa.Table, spine_us: np.ndarray, present: np.ndarray,
    remote: RemoteRun | None,
) -> ViewValues:  # fmt: skip
    """Values for the rows with keys; the others get an unseen entity's values."""
    rows = np.flatnonzero(present)
    found = compute_view_values(con, request, base_dir, spine_keys.take(rows), spine_us[rows],
                                remote)
    view = request.view
    # An unseen entity's values: what the kernels give for no state at all.
    names = list(found.values)
    empty = view.split_features(view.values_from_states([None], 0)[view.rows_of(names), 0],
                                names)
    values = {}
    for name, computed in found.values.items():
        filled = np.repeat(np.asarray(empty[name])[..., None], len(spine_us), axis=-1)
        filled[..., rows] = computed
        values[name] = filled
    return ViewValues(values, found.dictionaries)


@contextlib.contextmanager
def _spine_entities(keys: pa.Table, source_rows: int,
                    remote: RemoteRun | None = None) -> Iterator[EntityFilter | None]:
    """A filter to the spine's entities when they are few (see ROWS_PER_FILTERED_ENTITY);
    its file is in the run folder for a remote run, so the workers can read it."""
    distinct = keys.group_by(keys.column_names).aggregate([])
    if distinct.num_rows * ROWS_PER_FILTERED_ENTITY >= source_rows:
        yield None
        return
    if remote is not None:
        path = remote.file("entities")
        pq.write_table(distinct, path)
        yield EntityFilter(path, keep=True)
        return
    with tempfile.TemporaryDirectory(prefix="featurestore-spine-") as folder:
        path = Path(folder) / "entities.parquet"
        pq.write_table(distinct, path)
        yield EntityFilter(str(path), keep=True)


def _fill_values(view: CompiledView, partition_events: Iterator[events.EventPartition],
                 by_partition: list[np.ndarray], keys: pa.Table, spine_us: np.ndarray,
                 dictionaries: dict[str, list[str]], wanted: list[int],
                 out: np.ndarray) -> None:
    """Run the kernels on each partition's events and queries; values land in `out`."""
    features = view.features_of(wanted)
    for partition, rows in zip(partition_events, by_partition, strict=True):
        if len(rows) == 0:
            continue
        query_entity = partition.entities_of(keys.take(rows))
        query_ts = spine_us[rows]
        # The kernel walks events and queries together: both sorted by (entity, time).
        order = np.lexsort((query_ts, query_entity))
        # Kernels take writable arrays; Arrow hands out read-only zero-copy views.
        event_ts = partition.ts if partition.ts.flags.writeable else partition.ts.copy()
        values = view.training_values(
            partition.entity, event_ts, partition.columns, dictionaries,
            query_entity[order], query_ts[order], features=features,
        )  # fmt: skip
        out[:, rows[order]] = values[wanted]


def _remote_values(con: duckdb.DuckDBPyConnection, remote: RemoteRun, request: ViewRequest,
                   query: EventQuery,
                   spine: tuple[list[np.ndarray], pa.Table, np.ndarray],
                   dictionaries: dict[str, list[str]], wanted: list[int],
                   out: np.ndarray) -> None:
    """`_fill_values` with each partition on a worker: the driver writes each
    partition's spine rows to the run folder, a `TrainingTask` per partition that has
    some computes them, and the values land in `out` from the parts."""
    by_partition, keys, spine_us = spine
    name = request.view.name
    reads = remote.partition_reads(con, request.source, query, dictionaries,
                                   len(by_partition))
    tasks, placed = [], []
    for partition, rows in enumerate(by_partition):
        if len(rows) == 0:
            continue
        spine_file = remote.file(f"spine-{name}-{partition}")
        part = keys.take(rows).append_column(SPINE_TS, pa.array(spine_us[rows], pa.int64()))
        pq.write_table(part, spine_file)
        tasks.append(TrainingTask(remote.kernels, name, reads[partition], spine_file,
                                  tuple(wanted), False,
                                  remote.file(f"values-{name}-{partition}")))
        placed.append(rows)
    for rows, path in zip(placed, remote.executor.run(tasks, "training"), strict=True):
        part = pq.read_table(path)
        for index in range(len(wanted)):
            out[index, rows] = part.column(f"f{index}").to_numpy()


def _rows_by_partition(partition_of_row: np.ndarray, partitions: int) -> list[np.ndarray]:
    """Spine row numbers of each partition, ascending within a partition."""
    order = np.argsort(partition_of_row, kind="stable")
    bounds = np.searchsorted(partition_of_row[order], np.arange(partitions + 1))
    return [order[bounds[p] : bounds[p + 1]] for p in range(partitions)]


def key_kinds(
    con: duckdb.DuckDBPyConnection, source: SourceSpec, base_dir: Path, keys: Sequence[str]
) -> dict[str, ColumnType]:
    """The kind (INT or STRING, as the source types it) of each entity key column.

    Raises:
        SourceError: the source cannot be read or lacks a key column.
    """
    schema = describe_source(con, source, base_dir)
    check_columns(schema, dict.fromkeys(keys, "the entity keys"), source.name)
    return {key: schema[key] for key in keys}
