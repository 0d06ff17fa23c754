"""Kernel outputs (float64 with NaN for null) as typed Arrow columns.

Counts and sums of integers come back as integers; booleans (first/last/min/max of a
boolean expression, a boolean request feature) as booleans; string features (first/last
of a string column) come back as dictionary codes and are decoded here; NaN becomes null.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from featurestore.offline.dictionaries import decode_codes
from transforms.spec import ColumnType


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
