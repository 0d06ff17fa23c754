"""The definitions as the server shows them (``GET /registry``).

The registry's JSON is the validated definitions, with one difference: connection
settings in ``store`` are shown by `redact_url`, so a Redis password in
``store.online`` never leaves the process.
"""

from __future__ import annotations

from typing import Any

from featurestore.credentials import redact_url
from featurestore.registry import Registry


def registry_document(registry: Registry) -> dict[str, Any]:
    """The definitions as JSON-ready data, with passwords in store settings redacted.

    Args:
        registry: the validated definitions.

    Returns:
        `registry.model_dump(mode="json")` with ``store.online`` and ``store.offline``
        passed through `redact_url`.
    """
    document = registry.model_dump(mode="json")
    store = document.get("store") or {}
    for name in ("online", "offline"):
        if isinstance(store.get(name), str):
            store[name] = redact_url(store[name])
    return document
