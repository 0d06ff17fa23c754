"""The server's operational metrics: `GET /metrics` in the Prometheus text format.

Every metric lives in a registry of its own per application (`CollectorRegistry`, not
prometheus_client's global one), so several applications in one process (tests, an
embedding program) never share or collide on counters:

    featurestore_http_requests_total                    counter    endpoint, status
    featurestore_http_request_duration_seconds          histogram  endpoint, status
    featurestore_online_store_errors_total              counter    operation
    featurestore_push_requests_total                    counter    source, outcome
    featurestore_push_rows_total                        counter    source, outcome
    featurestore_served_log_lookups_total               counter    outcome
    featurestore_view_materialization_age_seconds       gauge      view
    featurestore_view_newest_push_age_seconds           gauge      view

The first six are counted by the process that serves the request
(`request_metrics.RequestMetrics`, `PushCounters`, the served-value log); the two
gauges are computed when scraped (`freshness_metrics.FreshnessCollector`).

Several worker processes (`serve --workers N`) each count their own requests. When
PROMETHEUS_MULTIPROC_DIR names a folder (`serve` makes a fresh private one before the
workers start, and removes it after), prometheus_client keeps each process's counters
in memory-mapped files there, and a scrape, whichever worker answers it, adds up every
process's files (`MultiProcessCollector`). The gauges need no files: they are read from
the online store and the pushed segments, which every worker sees alike.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool

from featurestore.serving.guard import METRICS_PATH
from featurestore.serving.http_errors import Endpoint

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's variable naming the folder of per-process metric files."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)
"""Seconds. A lookup takes a fraction of a millisecond in the server, a push some
milliseconds, a Redis that hangs up to its socket timeout (5 s by default)."""

UNKNOWN_SOURCE = "<unknown>"
"""The `source` label of a push naming no source of the served registry (or none at
all): clients choose the name, and one label per misspelling would grow without bound."""

ACCEPTED, REJECTED = "accepted", "rejected"


@dataclass(frozen=True)
class ServerMetrics:
    """The metrics of one server application.

    Attributes:
        registry: what `GET /metrics` renders.
        requests: featurestore_http_requests_total{endpoint, status}.
        latency: featurestore_http_request_duration_seconds{endpoint, status}.
        online_errors: featurestore_online_store_errors_total{operation}.
        pushes: the push counters.
        served_log: featurestore_served_log_lookups_total{outcome}: sampled lookups
            logged, dropped (queue full) or failed (`served_log.ServedLog.counted`).
    """

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    online_errors: Counter
    pushes: PushCounters
    served_log: Counter


def server_metrics(freshness: Collector) -> ServerMetrics:
    """New metrics for one application, with `freshness` computed at each scrape.

    In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set) the counters are registered
    nowhere: prometheus_client writes their values to this process's files, and the
    registry scraped gathers every process's files instead.
    """
    folder = os.environ.get(MULTIPROCESS_ENV)
    registry = CollectorRegistry(auto_describe=False)
    counted: CollectorRegistry | None = registry
    if folder:
        MultiProcessCollector(registry, folder)
        counted = None
    registry.register(freshness)
    requests = Counter("featurestore_http_requests", "HTTP requests answered, by route "
                       "template and status", ["endpoint", "status"], registry=counted)
    latency = Histogram("featurestore_http_request_duration_seconds",
                        "Time from a request's arrival to the end of its answer, by route "
                        "template and status", ["endpoint", "status"], registry=counted,
                        buckets=LATENCY_BUCKETS)
    online_errors = Counter("featurestore_online_store_errors", "Requests answered 503 "
                            "because the online store could not be reached, by operation",
                            ["operation"], registry=counted)
    push_requests = Counter("featurestore_push_requests", "Push requests, by source and "
                            "outcome (accepted or rejected)", ["source", "outcome"],
                            registry=counted)
    push_rows = Counter("featurestore_push_rows", "Rows in push requests, by source and "
                        "outcome (accepted or rejected)", ["source", "outcome"],
                        registry=counted)
    served_log = Counter("featurestore_served_log_lookups", "Lookups sampled for the "
                         "served-value log, by outcome (logged; dropped: its queue was full; "
                         "failed: not encoded or not written)", ["outcome"], registry=counted)
    return ServerMetrics(registry, requests, latency, online_errors,
                         PushCounters(push_requests, push_rows), served_log)


PUSH_BODY_STATE = "push_body"
"""Where the push endpoint leaves its parsed body in the request's state, for
`PushCounters.counted` to read its source and rows."""


class PushCounters:
    """featurestore_push_requests_total and featurestore_push_rows_total.

    Args:
        requests: the counter of requests.
        rows: the counter of rows.
    """

    def __init__(self, requests: Counter, rows: Counter) -> None:
        self.requests = requests
        self.rows = rows

    def counted(self, sources: Callable[[], Collection[str]]) -> Callable[[Endpoint], Endpoint]:
        """A decorator of the push endpoint: a push is accepted when the endpoint
        answers, and rejected when it raises (the error goes on, to `json_errors`).

        The endpoint puts the parsed body in ``request.state.push_body``
        (`PUSH_BODY_STATE`): its source and rows give the label and the row count. A
        body never parsed counts as a request of no rows from `UNKNOWN_SOURCE`.

        Args:
            sources: the sources of the served registry now (other names are counted
                as `UNKNOWN_SOURCE`).
        """

        def decorate(endpoint: Endpoint) -> Endpoint:
            @functools.wraps(endpoint)
            async def counting(request: Request) -> Response:
                try:
                    response = await endpoint(request)
                except BaseException:
                    self._count(getattr(request.state, PUSH_BODY_STATE, None), sources(),
                                REJECTED)
                    raise
                self._count(getattr(request.state, PUSH_BODY_STATE, None), sources(), ACCEPTED)
                return response

            return counting

        return decorate

    def _count(self, body: Mapping[str, object] | None, sources: Collection[str],
               outcome: str) -> None:
        source = body.get("source") if body is not None else None
        label = source if isinstance(source, str) and source in sources else UNKNOWN_SOURCE
        self.requests.labels(label, outcome).inc()
        # inc(0) too: the series of rows exists as soon as the one of requests does.
        self.rows.labels(label, outcome).inc(_row_count(body.get("rows") if body else None))


def _row_count(rows: object) -> int:
    """Rows in a push body's `rows`: a list of objects or an object of columns."""
    if isinstance(rows, list):
        return len(rows)
    if isinstance(rows, dict):
        return max((len(column) for column in rows.values() if isinstance(column, list)),
                   default=0)
    return 0


@contextmanager
def multiprocess_folder() -> Iterator[Path]:
    """A fresh private folder in PROMETHEUS_MULTIPROC_DIR while the block runs (for
    worker processes started in it), removed afterwards.

    Fresh, because files left by an earlier server would be added to this one's
    counters; private (mode 0700, `mkdtemp`), because other users must not write counts.
    """
    previous = os.environ.get(MULTIPROCESS_ENV)
    folder = Path(tempfile.mkdtemp(prefix="featurestore-metrics-"))
    os.environ[MULTIPROCESS_ENV] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


def install_metrics_route(app: FastAPI, metrics: ServerMetrics) -> None:
    """Add `GET /metrics`, rendered in the thread pool: a scrape reads the online store
    and, with several workers, every worker's metric files.

    It is left out of the OpenAPI document, which describes the feature API for its
    clients; docs/deployment.md ("Metrics") describes this one for operators.
    """

    @app.get(METRICS_PATH, include_in_schema=False)
    async def metrics_text(request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
