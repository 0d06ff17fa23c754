"""Engine settings: "local", or "dask://host:port" for the workers of a Dask scheduler.

Only the syntax lives here (the registry model checks it without importing any engine);
`selection.py` decides which setting applies and opens the executor.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOCAL = "local"
DASK_SCHEME = "dask"


def engine_problem(value: str) -> str | None:
    """What is wrong with an engine setting, or None when it is usable."""
    if value == LOCAL:
        return None
    expected = f"expected 'local' or 'dask://host:port', got {value!r}"
    if not value.startswith(f"{DASK_SCHEME}://"):
        return expected
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        return f"{expected}: {error}"
    if not parts.hostname:
        return f"{expected}: no host"
    if port is None:
        return f"{expected}: no port"
    if port == 0:
        return f"{expected}: port 0"
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return f"{expected}: nothing may follow host:port"
    return None


def scheduler_address(value: str) -> str:
    """The Dask scheduler address (`tcp://host:port`) of a valid dask:// setting."""
    parts = urlsplit(value)
    host = parts.hostname or ""
    # An IPv6 literal keeps its brackets in an address.
    shown = f"[{host}]" if ":" in host else host
    return f"tcp://{shown}:{parts.port}"
