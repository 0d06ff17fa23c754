"""The console's Jinja2 environment: templates from this package, everything escaped."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from featurestore.times import format_micros


@cache
def environment() -> Environment:
    """The environment every page renders with (built once per process).

    Autoescaping is on for every template: names, descriptions and values come from
    registry files and data, and must never become markup. StrictUndefined turns a
    misspelt variable into an error a test sees, not an empty cell.
    """
    env = Environment(loader=PackageLoader("featurestore.console", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["age"] = format_age
    env.filters["number"] = format_number
    env.filters["seconds"] = format_seconds
    env.filters["micros"] = format_micros
    env.filters["when"] = format_when
    return env


def format_age(seconds: float | None) -> str:
    """A duration for people, to two units: `45 s`, `12 min`, `3 h 20 min`, `2 d 4 h`."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 0:
        return f"in {format_age(-seconds)}"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, hours, days = whole // 60, whole // 3600, whole // 86_400
    if whole < 3600:
        return f"{minutes} min"
    if whole < 86_400:
        rest = minutes - hours * 60
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    rest = hours - days * 24
    return f"{days} d {rest} h" if rest else f"{days} d"


def format_number(value: float | int | None) -> str:
    """Thousands separated integers, and floats to 4 significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def format_when(moment: datetime | str | None) -> str:
    """A moment to the second, in UTC: `2026-12-01 06:14:19 UTC` (ISO text or datetime)."""
    if moment is None:
        return "-"
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def format_seconds(value: float | None) -> str:
    """A run's duration: `0.42 s`, `12.3 s`, `4 min 05 s`."""
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s"
