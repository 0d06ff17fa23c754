"""What a worker runs for one partition: read it, run the kernels, write a Parquet part.

Tasks are frozen dataclasses of plain data, so any executor can pickle them to another
process or machine. A task reads its partition with a private in-memory DuckDB
connection (never the driver's offline file: the driver staged table and query
sources to Parquet), and carries the kernels as their graph spec and cache folder:
each worker process builds the `CompiledGraph` once per graph hash and reuses it for
every later task (`_GRAPHS`), while the machine code comes from the on-disk cache.

The arithmetic is the in-process path's (`point_in_time._fill_values`,
`materialize._fold_partition`): the same reads, the same orderings and the same kernel
calls, so the parts hold the same bits.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.offline.event_query import EventQuery
from featurestore.offline.events import EventPartition, read_partition
from featurestore.offline.sources import quote_literal
from featurestore.online.entity_keys import encode_entity_key
from featurestore.online.stored_states import later, newest_per_entity
from transforms import CompiledGraph, CompiledView, compile_graph
from transforms.spec import GraphSpec

SPINE_TS = "__featurestore_spine_ts"
"""The time column of a spine part (entity key columns keep their names)."""
FOUND = "found"

# Graph hash and cache folder → the graph built from them, once per worker process.
_GRAPHS: dict[tuple[str, str], CompiledGraph] = {}
_GRAPHS_LOCK = threading.Lock()


def graphs_built() -> int:
    """How many kernel graphs this process has built for tasks (one per graph hash)."""
    return len(_GRAPHS)


@dataclass(frozen=True)
class ShippedKernels:
    """How a worker gets the kernels: the graph spec, its hash and the kernel cache.

    Attributes:
        spec: the spec the driver compiled.
        cache_dir: the kernel cache folder (shared by the processes of one machine,
            so a worker loads machine code the driver or another worker compiled).
        hash: the compiled graph's hash, the key it is built once per process under.
    """

    spec: GraphSpec
    cache_dir: str
    hash: str

    @classmethod
    def of(cls, graph: CompiledGraph, cache_dir: Path) -> ShippedKernels:
        """What rebuilds `graph` in another process."""
        return cls(graph.graph.spec, str(cache_dir), graph.hash)

    def view(self, name: str) -> CompiledView:
        """The compiled view `name`, building the graph on this process's first use."""
        return self._graph().views[name]

    def load(self) -> None:
        """Build the graph and load every kernel's machine code in this process now
        (a worker's preparation for a run)."""
        self._graph().warm()

    def _graph(self) -> CompiledGraph:
        key = (self.hash, self.cache_dir)
        with _GRAPHS_LOCK:
            graph = _GRAPHS.get(key)
            if graph is None:
                graph = _GRAPHS[key] = compile_graph(self.spec, self.cache_dir)
        return graph


@dataclass(frozen=True)
class PartitionRead:
    """One partition of a planned read, readable without the driver's database.

    Attributes:
        query: the planned query (staged to Parquet when the source is a table, a
            query, or a CSV costly to scan once per partition).
        dictionaries: column → its dictionary, already holding every value the read
            meets (see `remote_partitions.complete_dictionaries`).
        partition: which partition.
        partitions: the partition count.
        base_dir: the registry's folder (relative file names in SQL).
        temp_dir: where DuckDB may spill while sorting.
    """

    query: EventQuery
    dictionaries: dict[str, list[str]]
    partition: int
    partitions: int
    base_dir: str
    temp_dir: str

    def read(self) -> EventPartition:
        """The partition's events, as `events.read_partition` gives them.

        Raises:
            SourceError: the source cannot be read.
            RuntimeError: a value missing from the shipped dictionaries (the driver
                completes them first, so codes agree across workers).
        """
        dictionaries = {name: list(values) for name, values in self.dictionaries.items()}
        with duckdb.connect() as con:
            con.execute("SET enable_progress_bar = false")
            con.execute(f"SET file_search_path = {quote_literal(self.base_dir)}")
            con.execute(f"SET temp_directory = {quote_literal(self.temp_dir)}")
            partition = read_partition(con, self.query, dictionaries, self.partition,
                                       self.partitions)
        for name, values in dictionaries.items():
            if len(values) != len(self.dictionaries[name]):
                raise RuntimeError(
                    f"partition {self.partition} of source '{self.query.source}': column "
                    f"'{name}' holds values its shipped dictionary lacks")
        return partition


@dataclass(frozen=True)
class TrainingTask:
    """Training values of one view at some spine rows, from one partition's events.

    Attributes:
        kernels: the kernels to run.
        view: the feature view.
        read: the partition to read.
        spine_file: a Parquet file with the entity key columns (canonical types) and
            the time in `SPINE_TS` (int64 µs) of each row to compute.
        wanted: the wanted output rows (`CompiledView.rows_of`).
        found_only: compute only the rows whose entity has events in this partition
            (the others get NaN and `found` false), as `verify` reads every partition
            for the same rows.
        output: where to write the part: `found`, then `f0`, `f1`, ... (float64) per
            spine row, in the spine file's order.
    """

    kernels: ShippedKernels
    view: str
    read: PartitionRead
    spine_file: str
    wanted: tuple[int, ...]
    found_only: bool
    output: str

    def __call__(self) -> str:
        """Compute and write the part; return its path."""
        view = self.kernels.view(self.view)
        spine = pq.read_table(self.spine_file)
        partition = self.read.read()
        keys = spine.drop_columns([SPINE_TS])
        spine_us = spine.column(SPINE_TS).to_numpy().astype(np.int64, copy=False)
        entity = partition.entities_of(keys)
        rows = np.flatnonzero(entity >= 0) if self.found_only else np.arange(len(entity))
        out = np.full((len(self.wanted), len(entity)), np.nan)
        if len(rows):
            query_entity = entity[rows]
            query_ts = spine_us[rows]
            # The kernel walks events and queries together: both sorted by (entity, time).
            order = np.lexsort((query_ts, query_entity))
            values = view.training_values(
                partition.entity, partition.ts, partition.columns, self.read.dictionaries,
                query_entity[order], query_ts[order], features=view.features_of(self.wanted),
            )  # fmt: skip
            out[:, rows[order]] = values[list(self.wanted)]
        columns = {FOUND: pa.array(entity >= 0)}
        columns.update({f"f{index}": pa.array(values) for index, values in enumerate(out)})
        write_part(pa.table(columns), self.output)
        return self.output


@dataclass(frozen=True)
class FoldResult:
    """What a fold task wrote: the part (None: the partition had no events), how many
    events it folded and how many entities' states it holds."""

    path: str | None
    events: int
    entities: int


@dataclass(frozen=True)
class FoldTask:
    """Fold one partition's events into its entities' states.

    Attributes:
        kernels: the kernels to run.
        view: the feature view.
        read: the partition to read.
        end_us: the run's end.
        previous_states: a Parquet file of the stored states (entity, state, newest_us)
            of this partition's entities, to continue (incremental runs), or None to
            start afresh (a full run, or no entity of the partition has a state).
        output: where to write the part (view, entity, state, newest_us).
    """

    kernels: ShippedKernels
    view: str
    read: PartitionRead
    end_us: int
    previous_states: str | None
    output: str

    def __call__(self) -> FoldResult:
        """Fold and write the part."""
        view = self.kernels.view(self.view)
        partition = self.read.read()
        if not len(partition):
            return FoldResult(None, 0, 0)
        keys = entity_keys(partition)
        if self.previous_states is None:
            old, old_newest = [None] * len(keys), [None] * len(keys)
        else:
            with duckdb.connect() as con:
                relation = f"read_parquet({quote_literal(self.previous_states)})"
                old, old_newest = lookup_states(con, relation, keys)
        batch = state_batch(view, self.view, partition, self.read.dictionaries, self.end_us,
                            keys, old, old_newest)
        write_part(batch, self.output)
        return FoldResult(self.output, len(partition), partition.key_table.num_rows)


def write_part(table: pa.Table, path: str) -> None:
    """Write a part whole or not at all: a task rerun after its worker died mid-write
    (or run twice) replaces the file in one step, so the driver never reads half a part."""
    partial = f"{path}.{os.getpid()}-{threading.get_ident()}.partial"
    pq.write_table(table, partial)
    os.replace(partial, path)


def entity_keys(partition: EventPartition) -> list[bytes]:
    """The encoded entity key of each entity of a partition, by entity id."""
    return [encode_entity_key(tuple(row.values())) for row in partition.key_table.to_pylist()]


def state_batch(view: CompiledView, name: str, partition: EventPartition,
                dictionaries: dict[str, list[str]], end_us: int, keys: list[bytes],
                old: list[bytes | None], old_newest: list[int | None]) -> pa.Table:
    """The new state rows (view, entity, state, newest_us) of a partition's entities."""
    states = view.update_states(old, partition.entity, partition.ts, partition.columns,
                                dictionaries, end_us)
    newest = newest_per_entity(partition.entity, partition.ts).tolist()
    return pa.table({
        "view": pa.array([name] * len(states.blobs), pa.string()),
        "entity": pa.array([keys[i] for i in states.entities], pa.binary()),
        "state": pa.array(states.blobs, pa.binary()),
        "newest_us": pa.array([later(old_newest[i], time) for i, time
                               in zip(states.entities.tolist(), newest, strict=True)],
                              pa.int64()),
    })


def lookup_states(con: duckdb.DuckDBPyConnection, relation: str, keys: list[bytes],
                  condition: str = "", params: list[object] | None = None,
                  ) -> tuple[list[bytes | None], list[int | None]]:
    """The states (None: none) and newest event times of entities, from `relation`
    (FROM-clause text with columns entity, state, newest_us, joined as `s`; `condition`
    is more of the join condition, ending in AND, its `?` filled from `params`)."""
    wanted = pa.table({"i": pa.array(range(len(keys)), pa.int64()),
                       "entity": pa.array(keys, pa.binary())})
    con.register("fs_wanted", wanted)
    try:
        rows = con.execute(f"SELECT w.i, s.state, s.newest_us FROM fs_wanted w JOIN "
                           f"{relation} s ON {condition} s.entity = w.entity",
                           params or []).fetchall()
    finally:
        con.unregister("fs_wanted")
    found: list[bytes | None] = [None] * len(keys)
    newest: list[int | None] = [None] * len(keys)
    for i, state, time in rows:
        found[i] = bytes(state)
        newest[i] = time
    return found, newest
