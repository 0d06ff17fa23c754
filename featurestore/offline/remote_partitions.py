"""The driver's side of a remote run: plan partition reads that workers can do alone.

Before any task is sent, the driver makes each read self-contained:

- Staging: a source that is a DuckDB table or a SQL query lives in (or needs) the
  driver's offline file, which workers must not need; it is written once, per
  partition, to Parquet in the run folder (`event_query.stage_partitions`). CSV files
  are staged too when the local path would stage them (several partitions, no Parquet
  copy). Parquet and CSV files, and pushed segments, are read by the workers directly.
- Dictionaries: in process, values missing from a dictionary are appended while
  partitions are read in order (sorted among themselves, per partition). Workers read
  partitions at the same time, so the driver appends them beforehand in exactly that
  order, and every worker encodes with the same complete dictionaries: the codes, and
  so the states and values, are the ones the in-process path gives.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.compilation import kernel_cache_dir
from featurestore.executors import Executor
from featurestore.offline.event_query import (
    PARTITION_COLUMN,
    EventQuery,
    is_costly_to_rescan,
    stage_partitions,
)
from featurestore.offline.keys import partition_expression
from featurestore.offline.partition_tasks import PartitionRead, ShippedKernels
from featurestore.offline.run_folder import run_folder
from featurestore.offline.sources import SourceSpec, fetch_table, located_errors, quote_literal
from featurestore.online.entity_keys import decode_entity_key
from transforms import CompiledGraph

if TYPE_CHECKING:
    from featurestore.context import StoreContext


@dataclass(frozen=True)
class RemoteRun:
    """A run whose partitions go to a remote executor.

    Attributes:
        executor: where tasks run.
        folder: the run's shared folder (removed when the run ends).
        kernels: the kernels, as tasks carry them.
        base_dir: the registry's folder.
    """

    executor: Executor
    folder: Path
    kernels: ShippedKernels
    base_dir: Path

    def file(self, stem: str, suffix: str = ".parquet") -> str:
        """A new, unique path in the run folder."""
        return str(self.folder / f"{stem}-{uuid.uuid4().hex[:8]}{suffix}")

    def partition_reads(self, con: duckdb.DuckDBPyConnection, spec: SourceSpec,
                        query: EventQuery, dictionaries: dict[str, list[str]],
                        partitions: int) -> list[PartitionRead]:
        """One self-contained read per partition of a planned query (see the module
        docstring); `dictionaries` are completed in place, as reading in process would
        extend them.

        Raises:
            SourceError: the source cannot be read.
            ValueError: no dictionary for a string column.
        """
        missing = [name for name in query.string_columns if name not in dictionaries]
        if missing:
            raise ValueError(f"no dictionary given for string column '{missing[0]}'")
        partitions = max(partitions, 1)
        shipped = ship_query(con, spec, self.base_dir, query, partitions,
                             Path(self.file("staged", "")))
        complete_dictionaries(con, shipped, dictionaries, partitions)
        frozen = {name: list(dictionaries[name]) for name in query.string_columns}
        spill = str(self.folder / "spill")
        return [PartitionRead(shipped, frozen, partition, partitions, str(self.base_dir),
                              spill)
                for partition in range(partitions)]


    def states_by_partition(self, con: duckdb.DuckDBPyConnection, states_sql: str,
                            params: list[object], query: EventQuery,
                            partitions: int) -> list[str | None]:
        """Stored states, split into one Parquet file per partition of `query`'s read.

        Each fold task then reads its own entities' states only, not every state of the
        view: the export costs one pass over the states however many partitions there
        are. An entity's partition is the hash of its decoded key columns, computed as
        the event read computes it (`keys.partition_expression` over the canonical key
        types), so a state lands in the partition its events are read in.

        Args:
            con: the driver's connection.
            states_sql: a query selecting `entity, state, newest_us`.
            params: its parameters.
            query: the planned event read the tasks will do.
            partitions: the read's partition count.

        Returns:
            Per partition, the file of its states, or None where it has none.
        """
        partitions = max(partitions, 1)
        width = len(query.key_types)
        hashed = partition_expression([f"__k{i}" for i in range(width)], partitions)
        paths: dict[int, str] = {}
        writers: dict[int, pq.ParquetWriter] = {}
        relation = con.sql(states_sql, params=params)
        reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_record_batch
        # Hashing needs no data: a connection of its own leaves `con`'s stream open.
        with duckdb.connect() as hasher:
            try:
                for batch in reader(_STATES_PER_BATCH):
                    table = pa.Table.from_batches([batch])
                    if table.num_rows == 0:
                        continue
                    of_row = (np.zeros(table.num_rows, dtype=np.int64) if partitions == 1
                              else _partitions_of(hasher, table.column("entity"), width, hashed))
                    for partition in np.unique(of_row).tolist():
                        writer = writers.get(partition)
                        if writer is None:
                            paths[partition] = self.file(f"states-{partition}")
                            writer = writers[partition] = pq.ParquetWriter(
                                paths[partition], table.schema)
                        writer.write_table(table.filter(pa.array(of_row == partition)))
            finally:
                for writer in writers.values():
                    writer.close()
        return [paths.get(partition) for partition in range(partitions)]


_STATES_PER_BATCH = 100_000


def _partitions_of(hasher: duckdb.DuckDBPyConnection, entities: pa.ChunkedArray, width: int,
                   hashed: str) -> np.ndarray:
    """The partition of each encoded entity key, by its decoded key columns."""
    decoded = [decode_entity_key(entity) for entity in entities.to_pylist()]
    # Decoded keys are ints and strs: Arrow's int64 and string, the canonical key types
    # the event read hashes (BIGINT and VARCHAR).
    keys = pa.table({f"__k{i}": [key[i] for key in decoded] for i in range(width)})
    keys = keys.append_column("__row", pa.array(np.arange(keys.num_rows, dtype=np.int64)))
    hasher.register("fs_state_keys", keys)
    try:
        found = fetch_table(hasher, f"SELECT __row, {hashed} AS p FROM fs_state_keys")
    finally:
        hasher.unregister("fs_state_keys")
    out = np.empty(keys.num_rows, dtype=np.int64)
    out[found.column("__row").to_numpy()] = found.column("p").to_numpy()
    return out


@contextmanager
def remote_run(store: StoreContext, executor: Executor,
               kernels: CompiledGraph) -> Iterator[RemoteRun | None]:
    """A `RemoteRun` with its folder for a remote executor; None for the local one."""
    if not executor.remote:
        yield None
        return
    with run_folder(store) as folder:
        shipped = ShippedKernels.of(kernels, kernel_cache_dir(store.offline_path))
        # Every worker loads the kernels at once, before the tasks: a cold worker would
        # otherwise load them inside whichever task it is given first.
        executor.prepare(f"kernels-{shipped.hash}-{shipped.cache_dir}", shipped.load)
        yield RemoteRun(executor, folder, shipped, store.base_dir)


def ship_query(con: duckdb.DuckDBPyConnection, spec: SourceSpec, base_dir: Path,
               query: EventQuery, partitions: int, folder: Path) -> EventQuery:
    """The query itself when workers can run it, else a copy staged under `folder`.

    Every partition of a staged copy gets a file, an empty one when no event hashed to
    it: a staged query reads the source itself for a partition without files, which a
    worker cannot do for a table or a query.
    """
    in_database = spec.table is not None or spec.query is not None
    if not (in_database or (partitions > 1 and is_costly_to_rescan(spec, base_dir))):
        return query
    staged = stage_partitions(con, query, folder, partitions)
    empty = folder / "empty.parquet"
    for partition in range(partitions):
        part = folder / f"{PARTITION_COLUMN}={partition}"
        if any(part.glob("*.parquet")):
            continue
        if not empty.exists():
            with located_errors(query.source, query.location):
                con.execute(f"COPY (SELECT * FROM ({query.unsorted_sql()}) WHERE false) "
                            f"TO {quote_literal(str(empty))} (FORMAT parquet)").fetchall()
        part.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(empty, part / "empty.parquet")
    return staged


def complete_dictionaries(con: duckdb.DuckDBPyConnection, query: EventQuery,
                          dictionaries: Mapping[str, list[str]], partitions: int) -> None:
    """Append to each dictionary, in place, the values the read meets that it lacks:
    partition by partition in order, each partition's new values sorted, as
    `events.read_partition` with `extend=True` does when partitions are read in turn.

    Raises:
        SourceError: the source cannot be read.
    """
    staged = query.staged_dir
    if staged is not None and not any(Path(staged).glob("*/*.parquet")):
        return  # staging found no events: nothing to meet
    for index, name in enumerate(query.string_columns):
        column = f"__s{index}"
        known = pa.table({"value": pa.array(dictionaries[name], pa.string())})
        con.register("fs_known", known)
        try:
            with located_errors(query.source, query.location):
                found = fetch_table(
                    con, f"SELECT DISTINCT __partition, {column} AS value FROM "
                    f"({_rows_with_partition(query, partitions)}) WHERE {column} IS NOT NULL "
                    f"AND {column} NOT IN (SELECT value FROM fs_known)")
        finally:
            con.unregister("fs_known")
        if found.num_rows == 0:
            continue
        by_partition: dict[int, set[str]] = {}
        for partition, value in zip(found.column("__partition").to_pylist(),
                                    found.column("value").to_pylist(), strict=True):
            by_partition.setdefault(int(partition), set()).add(value)
        dictionary = dictionaries[name]
        present = set(dictionary)
        for partition in sorted(by_partition):
            new = sorted(by_partition[partition] - present)
            dictionary.extend(new)
            present.update(new)


def _rows_with_partition(query: EventQuery, partitions: int) -> str:
    """Every row of the read with its partition number in `__partition`."""
    if query.staged_dir is not None:
        files = quote_literal(str(Path(query.staged_dir) / "*" / "*.parquet"))
        # Partition folders only (`*/`): the empty template beside them is not read.
        return f"SELECT * FROM read_parquet({files}, hive_partitioning = true)"
    hashed = partition_expression([f"__k{i}" for i in range(len(query.key_types))],
                                  partitions)
    return f"SELECT *, {hashed} AS __partition FROM ({query.unsorted_sql()})"
