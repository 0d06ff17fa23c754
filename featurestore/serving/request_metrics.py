"""Counting and timing every HTTP request, by route template and status.

`RequestMetrics` is ASGI middleware (outside the auth guard, so refused requests count
too). Per request it costs one clock reading at each end, a dictionary lookup for the
route and one for the label children, and a wrapper around `send`: about 4 µs, against
the 200 µs a demo lookup takes in the server (docs/decisions.md, "Metrics").

The `endpoint` label is the route template (``/push``, ``/docs-assets/{path}``), never
the raw path, and every path no route serves is one label, ``unmatched``: clients
choose paths, and a label per path would grow the series without bound.

A 503 whose error code is ``online_store_unavailable`` (`http_errors`, and /health's
own answer) counts as an online-store error of the endpoint's operation. The body is
looked at only when the status is 503, so other answers pay nothing for it.
"""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from featurestore.serving.metrics import ServerMetrics

UNMATCHED = "unmatched"
"""The `endpoint` label of a path that no route serves."""

OPERATIONS = {"/online-features": "lookup", "/push": "push", "/health": "health",
              "/registry": "registry"}
"""The `operation` label of online-store errors per route template (others: the template)."""

_UNAVAILABLE_CODE = b'"code":"online_store_unavailable"'


class RouteTemplates:
    """Maps a request path to the template of the route serving it.

    Args:
        app: the FastAPI application, with all its routes added.
        extra: templates of paths served in front of FastAPI (the lookup front).
    """

    def __init__(self, app: FastAPI, extra: tuple[str, ...] = ()) -> None:
        self._exact: dict[str, str] = {path: path for path in extra}
        self._patterns: list[tuple[BaseRoute, str]] = []
        self._prefixes: list[tuple[str, str]] = []
        for route in app.routes:
            path = getattr(route, "path", None)
            if path is None:
                continue
            if isinstance(route, Mount):
                self._prefixes.append((f"{path}/", f"{path}/{{path}}"))
            elif "{" in path:
                self._patterns.append((route, path))
            else:
                self._exact[path] = path

    def template(self, path: str) -> str:
        """The template of the route serving `path` (`UNMATCHED` when none does)."""
        known = self._exact.get(path)
        if known is not None:
            return known
        for prefix, template in self._prefixes:
            if path.startswith(prefix):
                return template
        for route, template in self._patterns:
            if route.path_regex.match(path):  # type: ignore[attr-defined]
                return template
        return UNMATCHED


class RequestMetrics:
    """ASGI middleware counting and timing each HTTP request (see the module docstring).

    Args:
        app: the application to measure.
        metrics: the counters to move.
        templates: the route template of each path.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics, templates: RouteTemplates) -> None:
        self.app = app
        self._metrics = metrics
        self._templates = templates
        # Label children cached: `labels()` takes a lock and builds a key on each call.
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection, counting and timing it when it is an HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the application fails before answering
        unavailable = False

        async def send_noting_status(message: Message) -> None:
            nonlocal status, unavailable
            if message["type"] == "http.response.start":
                status = message["status"]
            elif status == 503 and _UNAVAILABLE_CODE in message.get("body", b""):
                unavailable = True
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self._record(scope["path"], status, time.perf_counter() - started, unavailable)

    def _record(self, path: str, status: int, seconds: float, unavailable: bool) -> None:
        endpoint = self._templates.template(path)
        children = self._children.get((endpoint, status))
        if children is None:
            label = str(status)
            children = self._children[endpoint, status] = (
                self._metrics.requests.labels(endpoint, label),
                self._metrics.latency.labels(endpoint, label))
        children[0].inc()
        children[1].observe(seconds)
        if unavailable:
            self._metrics.online_errors.labels(OPERATIONS.get(endpoint, endpoint)).inc()
