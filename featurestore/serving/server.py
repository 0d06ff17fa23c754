"""The HTTP server: FastAPI on uvicorn, a thin layer over the SDK (DESIGN §8).

    POST /online-features   the keyword arguments of `get_online_features` as JSON
    POST /push              {"source": ..., "rows": [...]}
    GET  /health            200 when the online store answers, else 503
    GET  /registry          the applied definitions as JSON
    GET  /metrics           operational metrics, Prometheus text format (`metrics`)
    GET  /docs              OpenAPI (the document itself at /openapi.json), served
                            with no internet (`docs_page`)

With auth on (`serving.auth` or `serve --auth`), every path but /health and the docs
needs a bearer token with the right scope; `guard.Guard` checks it, and applies the rate
limit (`serving.rate_limit`), before any route runs.

Everything costly is done once, in `create_app`: the kernels are compiled (or loaded
from the disk cache), the online store client is opened and the registry's JSON is
rendered. A lookup is answered by a plain ASGI front (`LookupFront`) rather than a
FastAPI route, parses its body with orjson, runs in the event loop without a thread hop
(it is one round trip to the online store plus microseconds of kernels, less than a hop
to the thread pool costs) and answers with orjson. Pushes write a file and may retry on
conflicts, so they run in the thread pool.

Errors keep one shape, ``{"error": {"code", "message"}}`` (see `http_errors`). The
registry's `serving` section bounds each body: its size (413), the rows of a push (413)
and the time to receive it (408); TLS and uvicorn's connection limits are `serve`'s
(`connections`). The store
client reconnects by itself, so a server whose Redis went away answers 503 meanwhile and
serves again as soon as Redis is back, without a restart. A Redis that hangs rather than
refuses holds each lookup (and, lookups running in the event loop, the server) for the
client's socket timeout: 5 s by default, tighter with ``?socket_timeout=0.2`` in the URL.

On shutdown (SIGTERM or Ctrl-C) uvicorn stops accepting connections, lets requests in
flight finish (for at most `serve`'s `shutdown_timeout`), then runs the lifespan's end:
the version-following thread stops and, when the app owns its store, the online store
client is closed. `serve` runs one process, or several sharing the port (`workers`),
each building its app with the factory of `featurestore.serving.app`. See
docs/deployment.md.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from types import FrameType
from typing import TYPE_CHECKING

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from featurestore.console import create_console_app
from featurestore.context import AUTH_ENV, REGISTRY_ENV, UI_ENV
from featurestore.errors import OnlineStoreUnavailable
from featurestore.offline.push_audit import PushOrigin
from featurestore.serving import api_schema
from featurestore.serving.accepted_tokens import AcceptedTokens
from featurestore.serving.access_log import AccessLog, LogFormat, logging_config
from featurestore.serving.connections import Connections
from featurestore.serving.deployment import POLL_SECONDS
from featurestore.serving.docs_page import install_docs
from featurestore.serving.freshness_metrics import FreshnessCollector
from featurestore.serving.guard import OPEN_PATHS, Guard
from featurestore.serving.http_errors import (
    BodyError,
    Endpoint,
    error_response,
    install_handlers,
    json_errors,
    parse_object,
    read_body,
)
from featurestore.serving.metrics import (
    PUSH_BODY_STATE,
    install_metrics_route,
    multiprocess_folder,
    server_metrics,
)
from featurestore.serving.request_metrics import RequestMetrics, RouteTemplates
from featurestore.serving.served_log import (
    DROPPED,
    FAILED,
    LOG_SAMPLE_RATE_ENV,
    LOGGED,
    served_log_for,
)
from featurestore.serving.status import health_answer, registry_answer, versions

if TYPE_CHECKING:
    from featurestore.store import FeatureStore

_NONE = type(None)
_LOOKUP_MEMBERS: dict[str, tuple[type, ...]] = {
    "features": (list, str, _NONE),
    "service": (str, _NONE),
    "entities": (dict,),
    "request": (dict, _NONE),
    "at": (str, int, _NONE),
    "full_names": (bool,),
    "include_metadata": (bool,),
    "transformed": (bool,),
    "fit": (str, _NONE),
}
_PUSH_MEMBERS: dict[str, tuple[type, ...]] = {"source": (str,), "rows": (list, dict)}
_JSON = "application/json"
LOOKUP_PATH = "/online-features"
WORKER_HEADER = "X-Worker-Pid"
"""Header of /health answers naming the process that answered (several share a port)."""
SHUTDOWN_TIMEOUT_S = 20.0
"""Default longest wait for requests in flight at shutdown: within Kubernetes' default
grace period of 30 s before it kills (Docker's is 10 s: see docs/deployment.md)."""
APP_FACTORY = "featurestore.serving.app:create_app"
CONSOLE_PATH = "/ui"
"""Where `serve --ui` mounts the web console."""


def create_app(store: FeatureStore, poll_seconds: float = POLL_SECONDS,
               owns_store: bool = False, auth: bool = False,
               log_sample_rate: float | None = None, ui: bool = False) -> AccessLog:
    """Build the ASGI application for one feature store.

    Compiles (or loads) the kernels of the version to serve and opens the online store
    client, so the first request pays for neither; the online store itself need not be
    reachable yet. While the application runs (between its startup and shutdown
    events) it follows newly applied and published versions (`deployment.py`).

    Args:
        store: the feature store to serve.
        poll_seconds: how often to look for new versions.
        owns_store: close the store's online client when the application shuts down
            (for a store made for this application alone).
        auth: require bearer tokens (`guard.py`) even when the registry's
            `serving.auth` does not ask for them; its `serving.rate_limit` applies too.
        log_sample_rate: share of lookups whose served values are logged
            (`served_log`); None: the registry's `serving.log_sample_rate`.
        ui: mount the read-only web console (`featurestore.console`) at /ui.

    Raises:
        RegistryError, SourceError: the registry cannot be compiled.
    """
    deployment = store.deployment(poll_seconds)
    served = deployment.current
    backend = "local" if store.online == "local" else "redis"
    serving = store.registry.serving
    tokens = AcceptedTokens(store.offline_path) if auth or serving.auth else None
    served_log = deployment.served_log = served_log_for(store.offline_path, serving,
                                                        log_sample_rate)
    metrics = server_metrics(FreshnessCollector(deployment))
    console = create_console_app(store.registry_path) if ui else None
    if served_log is not None:
        outcomes = {outcome: metrics.served_log.labels(outcome)
                    for outcome in (LOGGED, DROPPED, FAILED)}
        served_log.counted = lambda outcome, lookups: outcomes[outcome].inc(lookups)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        deployment.start()
        if served_log is not None:
            served_log.start()
        if tokens is not None:
            tokens.start()
        try:
            yield
        finally:
            if tokens is not None:
                tokens.stop()
            deployment.stop()
            if served_log is not None:
                served_log.stop()  # after the requests in flight: writes what they logged
            if console is not None:
                console.state.followed.close()
            if owns_store:
                store.close()

    app = FastAPI(
        title=f"Feature store: {store.registry.project}",
        description="Online features computed by the same compiled kernels as training sets.",
        version=served.context.kernels().hash,
        lifespan=lifespan,
        docs_url=None,  # the CDN pages; install_docs serves local files instead
        redoc_url=None,
    )
    install_handlers(app)
    install_docs(app)
    if console is not None:
        app.mount(CONSOLE_PATH, console, name="console")
    registry, kernels = served.context.registry, served.context.kernels()
    lookup_doc = api_schema.request_body(
        api_schema.LookupBody, api_schema.lookup_example(registry, kernels))
    push_doc = api_schema.push_request_body(registry, kernels)

    async def online_features(request: Request) -> Response:
        body = parse_object(await read_body(request, serving.max_body_bytes,
                                            serving.body_timeout), _LOOKUP_MEMBERS)
        answer = deployment.answer(**body)
        payload: dict[str, object] = {"features": answer.features}
        if answer.fit is not None:
            payload["fit"] = answer.fit
        if answer.metadata is not None:
            payload["metadata"] = answer.metadata
        if answer.warnings:  # even without metadata: values are likely not what was meant
            payload["warnings"] = answer.warnings
        return Response(orjson.dumps(payload), media_type=_JSON)

    api_schema.document_operation(app, LOOKUP_PATH, "Look up features", lookup_doc,
                                  api_schema.LookupAnswer)
    if tokens is not None:
        api_schema.document_bearer_auth(app, OPEN_PATHS)

    @app.post("/push", openapi_extra=push_doc, summary="Push events of a source",
              description=api_schema.PUSH_DESCRIPTION,
              responses={200: {"model": api_schema.PushAnswer},
                         **api_schema.PUSH_ERROR_RESPONSES})
    @json_errors
    @metrics.pushes.counted(lambda: deployment.current.context.registry.sources)
    async def push_rows(request: Request) -> Response:
        body = parse_object(await read_body(request, serving.max_body_bytes,
                                            serving.body_timeout), _PUSH_MEMBERS)
        setattr(request.state, PUSH_BODY_STATE, body)  # the push counters read it
        for name in _PUSH_MEMBERS:
            if name not in body:
                raise BodyError("invalid_body", f"member '{name}' is required")
        rows = body["rows"]
        if isinstance(rows, dict) and not all(isinstance(v, list) for v in rows.values()):
            raise BodyError("invalid_body", "member 'rows' must be a list of objects or an "
                                            "object of equally long lists")
        count = len(rows) if isinstance(rows, list) else max(map(len, rows.values()), default=0)
        if count > serving.max_push_rows:
            raise BodyError("too_many_rows", f"{count} rows in one push; the limit is "
                                             f"{serving.max_push_rows} (serving.max_push_rows)")
        client = f"{request.client.host}:{request.client.port}" if request.client else None
        # The auth guard names the accepted token in the scope's state (None without auth).
        origin = PushOrigin("http", getattr(request.state, "token_name", None), client)
        result = await run_in_threadpool(deployment.push, body["source"], rows, origin)
        answer = {"source": result.source, "rows": result.rows, "online": result.online,
                  "entities": result.entities}
        if result.warnings:  # broken `on_fail: warn` expectations; the rows were kept
            answer["warnings"] = list(result.warnings)
        return Response(orjson.dumps(answer), media_type=_JSON)

    @app.get("/health", summary="Whether the online store answers, and what is served",
             responses={200: {"model": api_schema.HealthAnswer},
                        503: {"model": api_schema.HealthAnswer}})
    @json_errors
    async def health(request: Request) -> Response:
        served = deployment.current
        worker = {WORKER_HEADER: str(os.getpid())}
        try:
            answer = health_answer(served, backend)
        except OnlineStoreUnavailable as error:
            detail = {"code": "online_store_unavailable", "message": str(error)}
            answer = {"status": "unavailable", "online_store": backend, **versions(served),
                      "error": detail}
            return Response(orjson.dumps(answer), status_code=503, media_type=_JSON,
                            headers=worker)
        return Response(orjson.dumps(answer), media_type=_JSON, headers=worker)

    @app.get("/registry", summary="The definitions this server computes, and their freshness")
    @json_errors
    async def registry_definitions(request: Request) -> Response:
        return Response(orjson.dumps(registry_answer(deployment.current)), media_type=_JSON)

    install_metrics_route(app, metrics)
    guarded = Guard(LookupFront(app, online_features), tokens, serving.rate_limit)
    return AccessLog(RequestMetrics(guarded, metrics, RouteTemplates(app, (LOOKUP_PATH,))))


class LookupFront:
    """The ASGI application: POST /online-features itself, everything else to FastAPI.

    Lookups are the hot path. Going through FastAPI's routing, request validation and
    dependency machinery cost about as much as the lookup's own work (measured here:
    a FastAPI endpoint that parses a body and does one Redis GET takes twice the time of
    the same code as a plain ASGI handler), so this front answers them directly, with the
    same body limit, parsing and error answers; the operation is still in the OpenAPI
    document (`api_schema.document_operation`). Pushes, health, the registry and the
    docs stay ordinary FastAPI routes.

    Args:
        app: the FastAPI application for every other request.
        lookup: the lookup endpoint, taking a Starlette `Request`.
    """

    def __init__(self, app: FastAPI, lookup: Endpoint) -> None:
        self.app = app
        self._lookup = json_errors(lookup)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch one ASGI connection (HTTP, or lifespan events for FastAPI)."""
        if scope["type"] != "http" or scope["path"] != LOOKUP_PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST":
            response = await self._lookup(Request(scope, receive))
        else:
            response = error_response(405, "method_not_allowed",
                                      f"{scope['method']} {LOOKUP_PATH}: Method Not Allowed")
            response.headers["allow"] = "POST"
        await response(scope, receive, send)


def serve(store: FeatureStore, host: str = "127.0.0.1", port: int = 8000,
          access_log: bool = False, log_format: LogFormat = "text", workers: int = 1,
          shutdown_timeout: float = SHUTDOWN_TIMEOUT_S, auth: bool = False,
          connections: Connections | None = None,
          log_sample_rate: float | None = None, ui: bool = False) -> None:
    """Run the server until SIGTERM or Ctrl-C, then shut down gracefully.

    Args:
        store: the feature store to serve (with several workers, each process opens
            its own from the same registry file and environment).
        host: interface to listen on.
        port: TCP port.
        access_log: log one line per request (off by default: it costs about a tenth
            of a lookup's time).
        log_format: "text", or "json" for one JSON object per log line.
        workers: server processes sharing the port.
        shutdown_timeout: longest wait, in seconds, for requests in flight at shutdown.
        auth: require bearer tokens even when the registry's `serving.auth` does not.
        connections: TLS and uvicorn's connection limits (default: plain HTTP, no cap
            on connections, idle keep-alive connections closed after 5 s).
        log_sample_rate: share of lookups logged for `featurestore replay` (None: the
            registry's `serving.log_sample_rate`).
        ui: serve the read-only web console at /ui too.
    """
    settings = {"host": host, "port": port, "access_log": False, "log_level": "info",
                "log_config": logging_config(log_format, access_log),
                "timeout_graceful_shutdown": shutdown_timeout,
                **(connections or Connections()).uvicorn_settings()}
    with _stopped_quietly():
        if workers == 1:
            try:
                uvicorn.run(create_app(store, auth=auth, log_sample_rate=log_sample_rate,
                                       ui=ui), **settings)
            finally:
                store.close()
            return
        # Worker processes import the factory, which reads the registry from the environment.
        store.close()
        os.environ[REGISTRY_ENV] = str(store.registry_path)
        if auth:
            os.environ[AUTH_ENV] = "1"
        if log_sample_rate is not None:
            os.environ[LOG_SAMPLE_RATE_ENV] = repr(log_sample_rate)
        if ui:
            os.environ[UI_ENV] = "1"
        with multiprocess_folder():  # the workers' metrics, added up at each scrape
            uvicorn.run(APP_FACTORY, factory=True, workers=workers, **settings)


@contextlib.contextmanager
def _stopped_quietly() -> Iterator[None]:
    """SIGTERM and Ctrl-C end the process with status 0, and no "Aborted!" or traceback.

    uvicorn handles both while it serves, and once shut down raises the signal again
    for the handler that was there before: by default the process would then die of
    SIGTERM (status -15) or of KeyboardInterrupt. A stop that was asked for is a success,
    for process managers too. Before uvicorn serves (while kernels load) the same handler
    stops at once.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {stop: signal.signal(stop, _exit_successfully) for stop in _STOP_SIGNALS}
    try:
        yield
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _exit_successfully(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
