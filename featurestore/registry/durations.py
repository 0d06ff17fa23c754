"""Durations as written in registry.yaml (`90s`, `5m`, `1h`, `7d`), in microseconds."""

from __future__ import annotations

import re

from transforms.spec import MICROSECONDS

_DURATION = re.compile(r"([1-9][0-9]*)([smhd])")

# Largest unit first, so that formatting picks the shortest exact spelling.
_UNITS_DESCENDING = sorted(MICROSECONDS.items(), key=lambda item: -item[1])


class DurationSyntaxError(ValueError):
    """The text is not a duration; the message says what a duration looks like."""


def parse_duration(text: str) -> int:
    """Parse a duration such as `90s`, `5m`, `1h` or `7d` into microseconds.

    Args:
        text: a positive integer followed by one unit letter, without spaces.

    Returns:
        The duration in microseconds.

    Raises:
        DurationSyntaxError: the text is not a positive integer and a unit.
    """
    match = _DURATION.fullmatch(text)
    if match is None:
        raise DurationSyntaxError(
            f"invalid duration '{text}': expected a positive whole number and a unit "
            "(s, m, h or d), such as '90s', '5m', '1h' or '7d'"
        )
    return int(match.group(1)) * MICROSECONDS[match.group(2)]


def format_duration(microseconds: int) -> str:
    """Spell a duration with the largest unit that divides it exactly (`3600000000` → `1h`).

    Args:
        microseconds: a positive whole number of seconds, in microseconds.
    """
    for unit, size in _UNITS_DESCENDING:
        if microseconds % size == 0:
            return f"{microseconds // size}{unit}"
    return f"{microseconds}us"
