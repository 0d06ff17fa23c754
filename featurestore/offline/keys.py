"""Entity keys: canonical types, hash partitioning, and dense entity ids.

Key columns reach DuckDB's `hash()` in one canonical type per kind (BIGINT for integer
keys, VARCHAR for string keys), whatever their width in the source or the spine. The
partition of a key is `hash(keys) % partitions`, computed by DuckDB for events and for
spine rows alike, so spine rows of partition p meet exactly the events of partition p.
DuckDB's `hash()` has no per-process seed: partitions are stable across calls and
processes (for one DuckDB version; nothing stores a partition number).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.errors import InputError, SourceError
from featurestore.offline.arrow_types import is_text_type
from featurestore.offline.sources import fetch_table, quote_identifier
from transforms.spec import ColumnType

# Kind of key → (DuckDB type, Arrow type) that hashing and entity ids use.
CANONICAL_KEY_TYPES: dict[ColumnType, tuple[str, pa.DataType]] = {
    ColumnType.INT: ("BIGINT", pa.int64()),
    ColumnType.STRING: ("VARCHAR", pa.string()),
}
_ROW = "__featurestore_row"
_ENTITY = "__featurestore_entity"


def partition_expression(key_sql: Sequence[str], partitions: int) -> str:
    """SQL for the partition number of a row, given its canonical key expressions."""
    return f"hash({', '.join(key_sql)}) % {int(partitions)}"


def _accepts(arrow_type: pa.DataType, kind: ColumnType) -> bool:
    """Whether spine values of `arrow_type` may stand for keys of `kind`."""
    is_text = is_text_type(arrow_type)
    if kind is ColumnType.INT:
        # Integers stored as floats (pandas does this when a column had nulls) or as
        # decimal text are accepted when each value converts exactly.
        return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or is_text
    return is_text or pa.types.is_integer(arrow_type)


def normalize_keys(table: pa.Table, key_types: Mapping[str, ColumnType]) -> pa.Table:
    """The key columns of `table`, cast to their canonical Arrow types.

    Args:
        table: a spine, or any table holding the key columns.
        key_types: key column → its kind in the source (INT or STRING).

    Raises:
        InputError: a key column has a type that cannot stand for the source's keys, or
            a value does not convert exactly (names the column).
        SourceError: the source's key column is neither integer nor string.
    """
    columns = {}
    for name, kind in key_types.items():
        if name not in table.column_names:
            columns_given = ", ".join(table.column_names)
            raise InputError(f"missing key column '{name}'; columns: {columns_given}")
        if kind not in CANONICAL_KEY_TYPES:
            raise SourceError(f"key column '{name}' is {kind}; keys must be integers or strings")
        target = CANONICAL_KEY_TYPES[kind][1]
        values = table.column(name)
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        if not _accepts(values.type, kind):
            raise InputError(
                f"key column '{name}' has type {values.type}; the source's '{name}' "
                f"holds {kind} keys"
            )
        try:
            columns[name] = values.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise InputError(
                f"key column '{name}' does not convert to the source's {kind} keys: {error}"
            ) from error
    return pa.table(columns)


def partition_of_keys(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    key_types: Mapping[str, ColumnType],
    partitions: int,
) -> np.ndarray:
    """The event partition of each row of `table`, as `read_partitions` assigns them.

    Args:
        con: any DuckDB connection (hashing needs no data).
        table: rows holding the key columns (a spine, entities to look up).
        key_types: key column → its kind in the source, as in `describe_source`.
        partitions: the partition count given to `read_partitions`.

    Returns:
        int64 array: the partition number of each row, in row order.
    """
    keys = normalize_keys(table, key_types)
    if partitions <= 1 or keys.num_rows == 0:
        return np.zeros(keys.num_rows, dtype=np.int64)
    keys = keys.append_column(_ROW, pa.array(np.arange(keys.num_rows, dtype=np.int64)))
    name = f"__featurestore_keys_{uuid.uuid4().hex}"
    expression = partition_expression([quote_identifier(key) for key in key_types], partitions)
    con.register(name, keys)
    try:
        result = fetch_table(con, f"SELECT {_ROW}, {expression} AS p FROM {name}")
    finally:
        con.unregister(name)
    # Scatter by row number rather than trusting the result order: a connection may run
    # with preserve_insertion_order disabled.
    out = np.empty(keys.num_rows, dtype=np.int64)
    out[result.column(0).to_numpy()] = result.column(1).to_numpy().astype(np.int64)
    return out


def dense_entities(key_columns: Sequence[pa.ChunkedArray]) -> tuple[np.ndarray, np.ndarray]:
    """Entity ids of rows sorted by their keys: equal keys → equal id, ids 0, 1, 2, ...

    Returns:
        (entity id of each row, index of the first row of each entity).
    """
    count = len(key_columns[0]) if key_columns else 0
    if count == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    starts = np.zeros(count, dtype=bool)
    starts[0] = True
    for column in key_columns:
        changed = pc.not_equal(column.slice(1), column.slice(0, count - 1))
        starts[1:] |= changed.to_numpy(zero_copy_only=False)
    return np.cumsum(starts, dtype=np.int64) - 1, np.flatnonzero(starts)


def entity_ids(key_table: pa.Table, table: pa.Table) -> np.ndarray:
    """Entity ids, in a partition's numbering, of the rows of `table`.

    Args:
        key_table: an `EventPartition.key_table` (row i holds the keys of entity i).
        table: rows holding the same key columns (for example the spine rows of that
            partition); their key types are cast to the partition's.

    Returns:
        int64 array in row order: the entity id, or -1 for keys with no events in the
        partition.

    Raises:
        InputError: a key column is missing or does not convert to the events' key type.
    """
    names = key_table.column_names
    kinds = {
        name: next(k for k, (_, arrow) in CANONICAL_KEY_TYPES.items() if arrow == field.type)
        for name, field in zip(names, key_table.schema, strict=True)
    }
    keys = normalize_keys(table, kinds)
    rows = keys.append_column(_ROW, pa.array(np.arange(keys.num_rows, dtype=np.int64)))
    numbered = key_table.append_column(
        _ENTITY, pa.array(np.arange(key_table.num_rows, dtype=np.int64))
    )
    joined = rows.join(numbered, keys=names, join_type="left outer")
    out = np.full(keys.num_rows, -1, dtype=np.int64)
    entity = joined.column(_ENTITY).fill_null(-1).to_numpy()
    out[joined.column(_ROW).to_numpy()] = entity
    return out
