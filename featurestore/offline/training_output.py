"""Training-set output: the spine with typed feature columns, as Arrow or pandas.

Feature values leave the kernels as float64 with NaN for null. Each column's type comes
from the compiled graph (`feature_columns.feature_array`, shared with materialization),
never from the data, so a column has the same type whether or not this spine happened
to produce a null. In pandas, integer columns that can be null use the nullable `Int64`
dtype (count and sum never are null: they stay `int64`), booleans `boolean`, floats NaN;
strings and timestamps (`datetime64[us, UTC]`, NaT) convert as Arrow converts them (the
pandas default string dtype). Request-view features are float64, or booleans when
their expression is boolean (`feature_columns.request_feature_type`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from featurestore.feature_columns import feature_array, list_feature_array
from transforms.spec import ColumnType

if TYPE_CHECKING:
    import pandas as pd

# Aggregations that are 0, never null, over an empty window (DESIGN §4.3).
NEVER_NULL_AGGREGATIONS = frozenset({"count", "sum", "approx_count_distinct"})


@dataclass(frozen=True, eq=False)
class FeatureColumn:
    """One output feature column, still in the kernels' representation.

    Attributes:
        name: the output column name.
        kind: the feature's result type.
        values: float64 per row, NaN for null (string features: dictionary codes); for a
            list feature, the block of rows `feature_columns.list_feature_array` takes.
        never_null: count and sum; an integer column then needs no null mask.
        dictionary: decodes a string feature's codes (None for other kinds).
        ranked: a top_k list of (value, count) pairs.
    """

    name: str
    kind: ColumnType
    values: np.ndarray
    never_null: bool = False
    dictionary: Sequence[str] | None = None
    ranked: bool = False

    @property
    def is_list(self) -> bool:
        """Whether the column holds lists (its values are a block of rows)."""
        return self.values.ndim == 2

    def to_arrow(self) -> pa.Array:
        """The column as a typed Arrow array (NaN becomes null)."""
        if self.is_list:
            return list_feature_array(self.values, self.kind, self.dictionary, self.ranked)
        return feature_array(self.values, self.kind, self.dictionary)

    def to_pandas(self) -> np.ndarray | pd.api.extensions.ExtensionArray:
        """The column as values for a pandas DataFrame (nullable dtypes where needed)."""
        import pandas as pd
        array = self.to_arrow()
        if self.is_list:
            return array.to_pandas().array  # an array per row, None where empty
        null = np.isnan(self.values)
        if pa.types.is_floating(array.type):
            return self.values
        if pa.types.is_integer(array.type):
            integers = np.where(null, 0, self.values).astype(np.int64)
            return integers if self.never_null else pd.arrays.IntegerArray(integers, null)
        if pa.types.is_boolean(array.type):
            return pd.arrays.BooleanArray(self.values != 0, null)
        # Strings and timestamps: Arrow's own conversion gives None and NaT.
        return array.to_pandas().array


def arrow_result(spine: pa.Table, columns: Sequence[FeatureColumn]) -> pa.Table:
    """The spine with the feature columns appended."""
    for column in columns:
        spine = spine.append_column(column.name, column.to_arrow())
    return spine


def pandas_result(spine: pa.Table, columns: Sequence[FeatureColumn]) -> pd.DataFrame:
    """The spine as pandas with the feature columns appended (a fresh RangeIndex)."""
    import pandas as pd
    frame = spine.to_pandas()
    if not columns:
        return frame
    features = pd.DataFrame(
        {column.name: column.to_pandas() for column in columns}, index=frame.index
    )
    # One concat rather than one insert per feature, each of which would copy the frame.
    return pd.concat([frame, features], axis=1)
