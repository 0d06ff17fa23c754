"""How registry messages name a YAML value they did not expect ("got a list")."""

from __future__ import annotations

from typing import Any


def describe_value(value: Any) -> str:
    """Name the kind of a YAML value for messages ("got a list")."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
