"""Kernel outputs (float64 with NaN for null) as typed Arrow columns.

Counts and sums of integers come back as integers; booleans (first/last/min/max of a
boolean expression, a boolean request feature) as booleans; string features (first/last
of a string column) come back as dictionary codes and are decoded here; NaN becomes null.

A list feature (last_n, first_n, top_k) comes as a block of rows: its length, then its
entries NaN-padded (top_k: k values, then their k counts). It becomes an Arrow
`list<T>` (top_k: `list<struct<value: T, count: int64>>`), null where the length is 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from featurestore.offline.dictionaries import decode_codes
from transforms.spec import ColumnType

if TYPE_CHECKING:
    from transforms.compiler import CompiledView


def feature_array(values: np.ndarray, kind: ColumnType,
                  dictionary: Sequence[str] | None = None) -> pa.Array:
    """One feature's values as an Arrow array of its result type.

    Args:
        values: float64 kernel output, NaN = null.
        kind: the feature's result type (`CompiledView.feature_types`).
        dictionary: the dictionary decoding a string feature's codes.
    """
    values = np.asarray(values, dtype=np.float64)
    if kind == ColumnType.STRING:
        return decode_codes(values, dictionary or ())
    null = np.isnan(values)
    if kind == ColumnType.INT:
        return pa.array(np.where(null, 0, values).astype(np.int64), mask=null)
    if kind == ColumnType.BOOL:
        return pa.array(np.where(null, 0, values) != 0, mask=null, type=pa.bool_())
    if kind == ColumnType.TIMESTAMP:
        return pa.array(np.where(null, 0, values).astype(np.int64), mask=null,
                        type=pa.timestamp("us", tz="UTC"))
    return pa.array(values, mask=null)


def request_feature_type(expression_type: ColumnType | None) -> ColumnType:
    """The output type of a request-view feature whose expression has `expression_type`.

    A boolean expression (`amount_now > 100`) gives booleans; every other request
    feature is float64, on both paths (training sets and lookups).
    """
    return ColumnType.BOOL if expression_type == ColumnType.BOOL else ColumnType.FLOAT


def list_feature_array(block: np.ndarray, kind: ColumnType,
                       dictionary: Sequence[str] | None = None,
                       ranked: bool = False) -> pa.Array:
    """One list feature's values as an Arrow list array (null where empty).

    Args:
        block: float64 [1 + entries, rows]: lengths, then the entries (see the module
            docstring).
        kind: the type of the entries.
        dictionary: decodes string entries.
        ranked: top_k's block: k value rows, then k count rows.
    """
    block = np.asarray(block, dtype=np.float64)
    lengths = np.nan_to_num(block[0]).astype(np.int64)
    entries = block[1:]
    size = entries.shape[0] // 2 if ranked else entries.shape[0]
    # Entry j of row r is kept when j < length[r]; row-major over rows keeps each
    # row's entries together and in order.
    kept = (np.arange(size)[None, :] < lengths[:, None])
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    child = feature_array(entries[:size].T[kept], kind, dictionary)
    if ranked:
        counts = pa.array(entries[size:].T[kept].astype(np.int64))
        child = pa.StructArray.from_arrays([child, counts], names=["value", "count"])
    return pa.ListArray.from_arrays(pa.array(offsets), child,
                                    mask=pa.array(lengths == 0))


def view_feature_array(view: CompiledView, name: str, values: np.ndarray,
                       dictionaries: Mapping[str, Sequence[str]]) -> pa.Array:
    """Feature `name` of `view` as Arrow: `values` is its output row or, for a list
    feature, its block (`CompiledView.split_features`)."""
    column = view.string_feature_columns.get(name)
    dictionary = dictionaries.get(column) if column else None
    plan = view.list_features.get(name)
    if plan is None:
        return feature_array(values, view.feature_types[name], dictionary)
    return list_feature_array(values, view.feature_types[name], dictionary, plan.ranked)
