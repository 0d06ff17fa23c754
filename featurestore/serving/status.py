"""What `GET /health` and `GET /registry` report: versions served and freshness.

Freshness is per feature view: the end of its last materialization (events before it
are in the online states) and how old that end is now. Pushed events reach the states
without moving the end.
"""

from __future__ import annotations

from typing import Any

from featurestore.errors import OnlineStoreUnavailable
from featurestore.online.published import end_name
from featurestore.serving.deployment import ServedVersion
from featurestore.serving.registry_document import registry_document
from featurestore.times import format_micros, now_micros


def freshness(served: ServedVersion) -> tuple[bool, dict[str, Any]]:
    """Whether anything is published, and per view its materialization end and age.

    Raises:
        OnlineStoreUnavailable: the online store cannot be reached.
    """
    views = list(served.context.registry.feature_views)
    result = served.context.online_store().read([], [end_name(view) for view in views])
    now = now_micros()
    report: dict[str, Any] = {}
    for view in views:
        end = result.metadata.get(end_name(view))
        if end is None:
            report[view] = {"materialized_until": None, "age_seconds": None}
        else:
            report[view] = {"materialized_until": format_micros(int(end)),
                            "age_seconds": round((now - int(end)) / 1e6, 3)}
    return result.version is not None, report


def versions(served: ServedVersion) -> dict[str, Any]:
    """The served and applied registry versions, and what is pending."""
    return {"served_version": served.registry_version,
            "applied_version": served.applied_version,
            "pending": served.pending}


def health_answer(served: ServedVersion, backend: str) -> dict[str, Any]:
    """The body of a 200 `GET /health`.

    Raises:
        OnlineStoreUnavailable: the online store cannot be reached.
    """
    served.context.online_store().ping()
    materialized, views = freshness(served)
    status = "degraded" if served.pending is not None else "ok"
    return {"status": status, "online_store": backend, "materialized": materialized,
            **versions(served), "views": views}


def registry_answer(served: ServedVersion) -> dict[str, Any]:
    """The body of `GET /registry`: the served definitions, versions and freshness
    (freshness is null while the online store cannot be reached)."""
    try:
        views: dict[str, Any] | None = freshness(served)[1]
    except OnlineStoreUnavailable:
        views = None
    kernels = served.context.kernels()
    return {"project": served.context.registry.project, "graph_hash": kernels.hash,
            **versions(served), "views": views,
            "definitions": registry_document(served.context.registry)}
