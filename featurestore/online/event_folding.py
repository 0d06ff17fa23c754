"""Events folded into online states by the kernels' `update_states`: the rows of one
batch prepared per view (dense entity ids, sorted as a materialization sorts them) and
the view's input columns in the kernels' representation.

Pushes fold new events into the published states (`serving/push.py`); a
materialization folds the pushed events at or after its end into the states it
publishes (`offline/pushed_after_end.py`), so that publishing never drops them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from featurestore.offline.dictionaries import encode_strings
from featurestore.offline.timestamps import epoch_micros
from featurestore.online.stored_states import join_value, later, newest_per_entity
from transforms import CompiledView
from transforms.spec import ColumnType


@dataclass(frozen=True)
class ViewBatch:
    """Rows of one batch prepared for one view: sorted by (entity, time).

    Attributes:
        view: the compiled view.
        keys: the distinct entity keys; entity id i is keys[i].
        entity: int64 entity id per row, ascending.
        ts: int64 microseconds per row.
        table: the rows in the same order.
    """

    view: CompiledView
    keys: list[tuple]
    entity: np.ndarray
    ts: np.ndarray
    table: pa.Table


def prepare_batch(view: CompiledView, keys: Sequence[str], timestamp: str,
                  chunk: pa.Table) -> ViewBatch:
    """Dense entity ids for the view's keys, and the rows sorted by (entity, time, values)."""
    columns = [chunk.column(key).to_pylist() for key in keys]
    tuples = list(zip(*columns, strict=True))
    ids: dict[tuple, int] = {}
    entity = np.fromiter((ids.setdefault(key, len(ids)) for key in tuples), np.int64,
                         len(tuples))
    ts = epoch_micros(chunk.column(timestamp))
    # Ties on (entity, time) are ordered by the numeric values, NaN last, like the
    # offline reader orders them, so the fold order matches a materialization's.
    numeric = [floats(chunk.column(name)) for name in view.input_columns
               if name not in view.string_columns]
    order = np.lexsort([*reversed(numeric), ts, entity])
    return ViewBatch(view, list(ids), np.ascontiguousarray(entity[order]),
                      np.array(ts[order], dtype=np.int64), chunk.take(pa.array(order)))


def kernel_columns(view: CompiledView, table: pa.Table, schema: dict[str, ColumnType],
                   dictionaries: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """The view's input columns as kernels read them (float64, NaN for null, codes)."""
    columns: dict[str, np.ndarray] = {}
    for name in view.input_columns:
        values = table.column(name)
        if schema[name] is ColumnType.STRING:
            columns[name] = encode_strings(values, dictionaries[name], extend=True)
        elif schema[name] is ColumnType.TIMESTAMP:
            columns[name] = floats(values.cast(pa.int64()))
        else:
            columns[name] = floats(values)
    return columns


def floats(values: pa.ChunkedArray) -> np.ndarray:
    """A column as float64, NaN for null; timestamps as microseconds, as offline."""
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())
    if pa.types.is_boolean(values.type):
        values = values.cast(pa.float64())
    return np.array(values.cast(pa.float64()).fill_null(np.nan).to_numpy(), dtype=np.float64)


def fold_batch(batch: ViewBatch, old: Sequence[bytes | None],
               old_newest: Sequence[int | None], dictionaries: dict[str, list[str]],
               schema: dict[str, ColumnType], end_us: int,
               framed: bool = True) -> tuple[list[bytes | None], bool]:
    """Fold a batch's events into its entities' states.

    Args:
        batch: the prepared rows of one view.
        old, old_newest: each batch key's current state and newest event time (None:
            none, or unknown).
        dictionaries: the view's dictionaries; strings they lack are appended in place.
        schema: the source's column types.
        end_us: the materialization end the states were folded to.
        framed: store values with their newest event time (`stored_states.join_value`);
            False for states published before those were kept.

    Returns:
        Per batch key, its new stored value (None where no event touched it), and
        whether the dictionaries grew.
    """
    view = batch.view
    sizes = {name: len(dictionaries.setdefault(name, [])) for name in view.string_columns}
    columns = kernel_columns(view, batch.table, schema, dictionaries)
    result = view.update_states(old, batch.entity, batch.ts, columns, dictionaries, end_us)
    values: list[bytes | None] = [None] * len(batch.keys)
    newest = newest_per_entity(batch.entity, batch.ts).tolist()
    for entity, state, time in zip(result.entities.tolist(), result.blobs, newest, strict=True):
        values[entity] = join_value(state, later(old_newest[entity], time)) if framed else state
    grown = any(len(dictionaries[name]) != size for name, size in sizes.items())
    return values, grown
