"""How the kernels' column types look in Arrow, and which Arrow types hold text."""

from __future__ import annotations

import pyarrow as pa

from transforms.spec import ColumnType

NAIVE_MICROS = pa.timestamp("us")
UTC_MICROS = pa.timestamp("us", tz="UTC")

# The one Arrow type each ColumnType is stored as (pushed segments, validated rows).
# Timestamps are naive and hold UTC, like the sources' TIMESTAMP columns.
ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.INT: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.BOOL: pa.bool_(),
    ColumnType.STRING: pa.string(),
    ColumnType.TIMESTAMP: NAIVE_MICROS,
}


def is_text_type(arrow_type: pa.DataType) -> bool:
    """Whether an Arrow type holds strings (string, large_string or string_view)."""
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_string_view(arrow_type)
    )
