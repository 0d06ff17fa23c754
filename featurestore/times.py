"""Times given by users (SDK arguments, CLI flags, JSON) as int64 microseconds UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from featurestore.errors import InputError


def now_micros() -> int:
    """The current time in microseconds since the epoch, UTC."""
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def to_micros(value: object, name: str = "time") -> int:
    """A datetime (naive = UTC), ISO-8601 string, date, pandas/numpy timestamp or int µs.

    Raises:
        InputError: the value is none of those; the message names `name`.
    """
    if isinstance(value, bool):
        raise InputError(f"{name}: expected a timestamp, got {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, str | datetime | date | np.datetime64 | pd.Timestamp):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError):
            raise InputError(f"{name}: {value!r} is not an ISO-8601 timestamp") from None
        if pd.isna(stamp):
            raise InputError(f"{name}: {value!r} is not a timestamp")
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return int(stamp.value // 1000)
    raise InputError(f"{name}: expected a timestamp (ISO-8601 string, datetime or "
                     f"microseconds), got {type(value).__name__}")


def format_micros(micros: int) -> str:
    """ISO-8601 text of a microsecond time, UTC."""
    return pd.Timestamp(micros * 1000, tz="UTC").isoformat()
