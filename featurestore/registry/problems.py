"""One located problem in registry.yaml, and how it is printed."""

from __future__ import annotations

from dataclasses import dataclass

KeyPath = tuple[str | int, ...]
"""Where a value sits in the document: mapping keys and list indexes from the root."""


def service_list_path(loc: KeyPath, data: object) -> KeyPath:
    """`loc` as it sits in the file: a service written as a list has no `features` key
    (its members are at `services.NAME[i]`, not `services.NAME.features[i]`)."""
    if len(loc) >= 3 and loc[0] == "services" and loc[2] == "features":
        services = data.get("services") if isinstance(data, dict) else None
        if isinstance(services, dict) and isinstance(services.get(loc[1]), list):
            return (*loc[:2], *loc[3:])
    return loc


def format_path(path: KeyPath) -> str:
    """Spell a key path the way the error messages do: `services.fraud_v1[2]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True, order=True)
class Problem:
    """A mistake in the registry file, with the position it was found at.

    Ordering is by position, so a sorted list reads top to bottom like the file.

    Attributes:
        line: 1-based line in the file.
        column: 1-based column in the file.
        path: the key path of the offending value (empty for the whole document).
        message: what is wrong, with a suggestion when a near miss is known.
    """

    line: int
    column: int
    path: str
    message: str

    def format(self, file_name: str) -> str:
        """Render as `file:LINE:COL: path.to.key: message`."""
        where = f"{file_name}:{self.line}:{self.column}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"
