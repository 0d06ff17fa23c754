"""Times given by users (SDK arguments, CLI flags, JSON) as int64 microseconds UTC.

A time a user gives is an ISO-8601 string or a `datetime`, and nothing else: integers
(seconds? microseconds?), "today" and "05/04/2024" (May 4 or April 5?) can each be read
more than one way, so they are refused rather than guessed at. Spine timestamps are
columns of data and follow their own rules (`featurestore.offline.timestamps`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from featurestore.errors import InputError
from featurestore.loaded_pandas import is_pandas_null

TIME_EXAMPLE = "2024-03-31T12:00:00Z"
"""The example of an accepted time that error messages show."""

EPOCH_UNITS: dict[str, tuple[int, int]] = {
    "s": (1_000_000, 1), "ms": (1_000, 1), "us": (1, 1), "ns": (1, 1_000),
}
"""Units of epoch-integer source timestamps (`timestamp_unit`) → (multiplier, divisor)
taking a value to microseconds: `value * multiplier // divisor`, the division flooring
(nanoseconds before 1970 move to the earlier microsecond, as timestamps truncate)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def now_micros() -> int:
    """The current time in microseconds since the epoch, UTC."""
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def to_micros(value: object, name: str = "time") -> int:
    """A time a user gave, in microseconds since the epoch, UTC.

    Args:
        value: an ISO-8601 string, a date ("2024-03-31", midnight) or a date and time
            ("2024-03-31T12:00:00", with an offset such as "+02:00" or "Z"; without
            one it is UTC), or a `datetime` (naive = UTC; a `pandas.Timestamp` is one).
            Digits beyond the microsecond are dropped.
        name: the argument's name, for the error message.

    Raises:
        InputError: anything else (numbers, dates that are not datetimes, numpy
            datetime64, "today", "05/04/2024"); the message names `name` and the
            accepted forms.
    """
    if isinstance(value, str):
        try:
            return datetime_micros(datetime.fromisoformat(value))
        except ValueError:
            raise InputError(_expected(name, value)) from None
    if isinstance(value, datetime):
        if is_pandas_null(value):  # NaT: a datetime by type, but no time at all
            raise InputError(_expected(name, value))
        return datetime_micros(value)
    if isinstance(value, date):
        # A date object is a day in no time zone; refusing it keeps "naive means UTC"
        # the one rule, and the fix (an ISO date string) is in the message.
        raise InputError(f"{_expected(name, value)}; for a day, give its ISO text "
                         f"{value.isoformat()!r} (midnight UTC)")
    raise InputError(_expected(name, value))


def datetime_micros(moment: datetime) -> int:
    """Microseconds since the epoch of a datetime; a naive one is taken as UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MICROSECOND


def format_micros(micros: int) -> str:
    """ISO-8601 text of a microsecond time, UTC."""
    return (_EPOCH + timedelta(microseconds=micros)).isoformat()


def _expected(name: str, value: object) -> str:
    shown = repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
    return (f"'{name}': expected an ISO-8601 timestamp such as '{TIME_EXAMPLE}' (naive means "
            f"UTC) or a datetime, got {shown}")
