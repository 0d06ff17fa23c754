"""Times users give: ISO-8601 text or a datetime, read one way only."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from featurestore.errors import InputError
from featurestore.times import format_micros, to_micros

MARCH_31 = 1_711_843_200_000_000  # 2024-03-31T00:00:00Z
NOON = MARCH_31 + 12 * 3_600_000_000


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-03-31", MARCH_31),
    ("2024-03-31T12:00:00Z", NOON),
    ("2024-03-31T12:00:00", NOON),
    ("2024-03-31 12:00", NOON),
    ("2024-03-31T14:00:00+02:00", NOON),
    ("2024-03-31T12:00:00.000001Z", NOON + 1),
    (dt.datetime(2024, 3, 31, 12), NOON),
    (dt.datetime(2024, 3, 31, 7, tzinfo=dt.timezone(dt.timedelta(hours=-5))), NOON),
    (pd.Timestamp("2024-03-31T12:00:00.000001999"), NOON + 1),
    (pd.Timestamp("2024-03-31T08:00:00", tz="America/New_York"), NOON),
])  # fmt: skip
def test_iso_text_and_datetimes_are_read_with_naive_as_utc(value: object, expected: int) -> None:
    assert to_micros(value, "at") == expected


@pytest.mark.parametrize("value", [
    MARCH_31, 1_711_843_200, 1.5, True, np.int64(MARCH_31),  # seconds? microseconds?
    "today", "now", "yesterday", "05/04/2024", "2024-3-31", "31.03.2024", "", " 2024-03-31",
    np.datetime64("2024-03-31T12:00:00"), pd.NaT, None, [2024, 3, 31],
])  # fmt: skip
def test_anything_else_is_refused_naming_the_accepted_forms(value: object) -> None:
    with pytest.raises(InputError) as caught:
        to_micros(value, "at")
    message = str(caught.value)
    assert message.startswith("'at': expected an ISO-8601 timestamp such as "
                              "'2024-03-31T12:00:00Z' (naive means UTC) or a datetime, got ")
    assert "\n" not in message


def test_the_message_shows_what_was_given() -> None:
    with pytest.raises(InputError, match=r"^'end': .* or a datetime, got 'today'$"):
        to_micros("today", "end")
    with pytest.raises(InputError, match=r"got 1711843200 \(int\)$"):
        to_micros(1_711_843_200, "end")


def test_a_date_object_is_refused_with_its_iso_text_as_the_fix() -> None:
    with pytest.raises(InputError, match=r"give its ISO text '2024-03-31' \(midnight UTC\)"):
        to_micros(dt.date(2024, 3, 31), "at")
    assert to_micros(dt.date(2024, 3, 31).isoformat(), "at") == MARCH_31


def test_format_micros_round_trips() -> None:
    assert to_micros(format_micros(NOON + 1), "at") == NOON + 1
