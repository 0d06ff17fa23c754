"""Timestamps given by users (spines, pushed rows), normalised to microseconds UTC."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.errors import InputError
from featurestore.offline.arrow_types import NAIVE_MICROS, UTC_MICROS, is_text_type


def _parse_text(values: pa.ChunkedArray, label: str) -> pa.ChunkedArray:
    """ISO-8601 strings → UTC timestamps (strings without an offset are UTC)."""
    import pandas as pd
    series = values.to_pandas()
    try:
        parsed = pd.to_datetime(series, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        coerced = pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce")
        bad = np.flatnonzero(coerced.isna().to_numpy() & series.notna().to_numpy())
        row = int(bad[0]) if len(bad) else 0
        raise InputError(
            f"{label} holds a value that is not an ISO-8601 timestamp at row {row}: "
            f"{series.iloc[row]!r}"
        ) from None
    return pa.chunked_array([pa.Array.from_pandas(parsed)]).cast(UTC_MICROS, safe=False)


def normalize_timestamps(values: pa.ChunkedArray | pa.Array, label: str) -> pa.ChunkedArray:
    """Timestamps at microsecond precision, with UTC as the only time zone.

    Naive timestamps stay naive (they are UTC by convention); tz-aware ones become
    tz-aware UTC (the instants are unchanged); dates become midnight UTC; ISO-8601
    strings are parsed (an offset is honoured; none means UTC). Sub-microsecond
    precision is truncated.

    Args:
        values: the column.
        label: how to name the column in errors, e.g. "spine column 'event_ts'".

    Raises:
        InputError: the column holds numbers or other non-time values, or text that is
            not ISO-8601.
    """
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values])
    kind = values.type
    if pa.types.is_timestamp(kind):
        return values.cast(UTC_MICROS if kind.tz else NAIVE_MICROS, safe=False)
    if pa.types.is_date(kind):
        return values.cast(NAIVE_MICROS)
    if is_text_type(kind):
        return _parse_text(values, label)
    if pa.types.is_null(kind):
        return values.cast(NAIVE_MICROS)
    raise InputError(
        f"{label} has type {kind}; expected timestamps (naive = UTC, or tz-aware), "
        "dates, or ISO-8601 strings"
    )


def epoch_micros(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """int64 microseconds since the epoch of normalised timestamps (no nulls)."""
    return pc.cast(values, pa.int64()).to_numpy().astype(np.int64, copy=False)
