"""GET /metrics: request, push and online-store counters, freshness gauges, workers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from starlette.types import Receive, Scope, Send

from featurestore import FeatureStore
from featurestore.serving.guard import METRICS_PATH, Guard
from featurestore.serving.metrics import UNKNOWN_SOURCE
from featurestore.serving.request_metrics import UNMATCHED
from featurestore.serving.server import WORKER_HEADER, create_app
from tests.conftest import RedisServer
from tests.serving.conftest import DEMO_END, ServerProcess, cli_environment, make_demo_store
from tests.serving.test_auth import one_request
from tests.serving.test_server_processes import GUIDE, guide_block

LOOKUP = {"service": "fraud_v1", "entities": {"user_id": [1, 2]},
          "request": {"amount_now": [10.0, 20.0]},
          "at": (DEMO_END + timedelta(hours=2)).isoformat()}
BAD_LOOKUP = {"features": ["user_txn:no_such_feature"], "entities": {"user_id": [1]}}
PUSHED_EVENT_AT = DEMO_END + timedelta(minutes=5)
REQUESTS = "featurestore_http_requests_total"
DURATION = "featurestore_http_request_duration_seconds"
ONLINE_ERRORS = "featurestore_online_store_errors_total"
PUSH_REQUESTS = "featurestore_push_requests_total"
PUSH_ROWS = "featurestore_push_rows_total"
MATERIALIZATION_AGE = "featurestore_view_materialization_age_seconds"
PUSH_AGE = "featurestore_view_newest_push_age_seconds"
FAMILIES = {"featurestore_http_requests", DURATION, "featurestore_online_store_errors",
            "featurestore_push_requests", "featurestore_push_rows", MATERIALIZATION_AGE,
            PUSH_AGE}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def push_body(source: str, count: int, amount: object = 7.0) -> dict:
    return {"source": source, "rows": [
        {"user_id": 40 + i, "event_ts": PUSHED_EVENT_AT.isoformat(), "amount": amount,
         "merchant_category": "fuel"} for i in range(count)]}


def parse(text: str) -> tuple[set[str], Samples]:
    """The family names and every sample, keyed by sample name and labels."""
    names, samples = set(), {}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return names, samples


def scrape(get: object, path: str = "/metrics") -> Samples:
    response = get(path)  # type: ignore[operator]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)[1]


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when absent (a counter not moved yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def local_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY"):
            patch.delenv(name, raising=False)
        store = make_demo_store(tmp_path_factory.mktemp("metrics") / "demo", "local")
    yield store
    store.close()


@pytest.fixture(scope="module")
def client(local_store: FeatureStore) -> Iterator[TestClient]:
    with TestClient(create_app(local_store)) as test_client:
        yield test_client


def test_the_output_parses_and_holds_every_family(client: TestClient) -> None:
    client.post("/online-features", json=LOOKUP)
    response = client.get("/metrics")
    names, samples = parse(response.text)
    assert names >= FAMILIES
    assert all(name.startswith("featurestore_") for name, _ in samples)


def test_the_guide_names_every_metric_the_server_gives(client: TestClient) -> None:
    families = text_string_to_metric_families(client.get("/metrics").text)
    given = {f"{family.name}_total" if family.type == "counter" else family.name
             for family in families if not family.name.endswith("_created")}
    section = GUIDE.read_text().split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    documented = {line.split("`")[1] for line in section.splitlines()
                  if line.startswith("| `featurestore_")}
    assert documented == given
    scrape_config = yaml.safe_load(guide_block("yaml", "scrape_configs"))["scrape_configs"][0]
    assert scrape_config["metrics_path"] == METRICS_PATH
    assert scrape_config["authorization"]["type"] == "Bearer"


def test_lookups_move_counters_and_histograms_by_status(client: TestClient) -> None:
    before = scrape(client.get)
    for _ in range(3):
        assert client.post("/online-features", json=LOOKUP).status_code == 200
    for _ in range(2):
        assert client.post("/online-features", json=BAD_LOOKUP).status_code == 400
    after = scrape(client.get)
    ok, bad = {"endpoint": "/online-features", "status": "200"}, {
        "endpoint": "/online-features", "status": "400"}
    assert value(after, REQUESTS, **ok) - value(before, REQUESTS, **ok) == 3
    assert value(after, REQUESTS, **bad) - value(before, REQUESTS, **bad) == 2
    assert value(after, f"{DURATION}_count", **ok) - value(before, f"{DURATION}_count", **ok) == 3
    assert value(after, f"{DURATION}_count", **bad) - value(
        before, f"{DURATION}_count", **bad) == 2
    assert value(after, f"{DURATION}_sum", **ok) > value(before, f"{DURATION}_sum", **ok)
    buckets = sorted((float(dict(labels)["le"]), count) for (name, labels), count in after.items()
                     if name == f"{DURATION}_bucket" and dict(labels)["status"] == "200"
                     and dict(labels)["endpoint"] == "/online-features")
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)
    assert buckets[-1] == (float("inf"), value(after, f"{DURATION}_count", **ok))


def test_the_endpoint_label_is_the_route_template(client: TestClient) -> None:
    before = scrape(client.get)
    for path in ("/no/such/path", "/another-one", "/docs-assets/swagger-ui.css"):
        client.get(path)
    after = scrape(client.get)
    unmatched = {"endpoint": UNMATCHED, "status": "404"}
    assert value(after, REQUESTS, **unmatched) - value(before, REQUESTS, **unmatched) == 2
    asset = {"endpoint": "/docs-assets/{path}", "status": "200"}
    assert value(after, REQUESTS, **asset) - value(before, REQUESTS, **asset) == 1
    endpoints = {dict(labels)["endpoint"] for name, labels in after if name == REQUESTS}
    assert not endpoints & {"/no/such/path", "/another-one", "/docs-assets/swagger-ui.css"}


def test_pushes_count_requests_and_rows_accepted_and_rejected(client: TestClient) -> None:
    before = scrape(client.get)
    assert client.post("/push", json=push_body("transactions", 2)).status_code == 200
    assert client.post("/push", json=push_body("transactions", 3, "lots")).status_code == 400
    assert client.post("/push", json=push_body("no_such_source", 4)).status_code == 400
    assert client.post("/push", content=b"{not json").status_code == 400
    after = scrape(client.get)

    def moved(name: str, source: str, outcome: str) -> float:
        return (value(after, name, source=source, outcome=outcome)
                - value(before, name, source=source, outcome=outcome))

    assert moved(PUSH_REQUESTS, "transactions", "accepted") == 1
    assert moved(PUSH_ROWS, "transactions", "accepted") == 2
    assert moved(PUSH_REQUESTS, "transactions", "rejected") == 1
    assert moved(PUSH_ROWS, "transactions", "rejected") == 3
    # A source that does not exist and a body never parsed share one label.
    assert moved(PUSH_REQUESTS, UNKNOWN_SOURCE, "rejected") == 2
    assert moved(PUSH_ROWS, UNKNOWN_SOURCE, "rejected") == 4
    sources = {dict(labels)["source"] for name, labels in after if name == PUSH_REQUESTS}
    assert "no_such_source" not in sources


def test_freshness_gauges_per_view_are_read_at_scrape_time(client: TestClient,
                                                           local_store: FeatureStore) -> None:
    assert client.post("/push", json=push_body("transactions", 1)).status_code == 200
    now = datetime.now(UTC)
    samples = scrape(client.get)
    for view in local_store.registry.feature_views:
        materialized = value(samples, MATERIALIZATION_AGE, view=view)
        assert materialized == pytest.approx((now - DEMO_END).total_seconds(), abs=5.0)
        pushed = value(samples, PUSH_AGE, view=view)
        # The newest pushed event is 5 minutes after the materialization's end.
        assert pushed == pytest.approx(materialized - 300.0, abs=1.0)
    # Computed per scrape: a later scrape sees older ages.
    later = scrape(client.get)
    view = next(iter(local_store.registry.feature_views))
    assert value(later, MATERIALIZATION_AGE, view=view) >= value(
        samples, MATERIALIZATION_AGE, view=view)


def test_a_newer_push_from_another_process_moves_the_push_age(client: TestClient,
                                                              local_store: FeatureStore) -> None:
    view = next(iter(local_store.registry.feature_views))
    before = value(scrape(client.get), PUSH_AGE, view=view)
    newer = push_body("transactions", 1)
    newer["rows"][0]["event_ts"] = (PUSHED_EVENT_AT + timedelta(days=1)).isoformat()
    local_store.push("transactions", newer["rows"])  # the SDK, not this server
    after = value(scrape(client.get), PUSH_AGE, view=view)
    assert before - after == pytest.approx(86_400.0, abs=5.0)


def test_an_unreachable_redis_moves_the_online_store_error_counter(
        clean_redis: RedisServer, tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis.url)
    with TestClient(create_app(store)) as client:
        assert client.post("/online-features", json=LOOKUP).status_code == 200
        before = scrape(client.get)
        assert value(before, MATERIALIZATION_AGE, view="user_txn") > 0
        clean_redis.stop()
        try:
            for _ in range(2):
                assert client.post("/online-features", json=LOOKUP).status_code == 503
            assert client.post("/push", json=push_body("transactions", 1)).status_code == 503
            assert client.get("/health").status_code == 503
            during = scrape(client.get)
        finally:
            clean_redis.start()
    store.close()
    assert value(during, ONLINE_ERRORS, operation="lookup") == 2
    assert value(during, ONLINE_ERRORS, operation="push") == 1
    assert value(during, ONLINE_ERRORS, operation="health") == 1
    assert value(before, ONLINE_ERRORS, operation="lookup") == 0
    # A 4xx or a 200 is no online-store error; the freshness the store holds is unknown.
    assert value(during, REQUESTS, endpoint="/online-features", status="503") == 2
    assert (MATERIALIZATION_AGE, frozenset({("view", "user_txn")})) not in during


def test_with_auth_the_metrics_need_the_metrics_scope(local_store: FeatureStore) -> None:
    scraper = local_store.create_token("scraper", ["metrics"])
    reader = local_store.create_token("metrics_reader", ["read"])
    with TestClient(create_app(local_store, auth=True)) as client:
        assert client.get("/metrics").status_code == 401
        refused = client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
        assert refused.status_code == 403
        assert "'metrics' scope" in refused.json()["error"]["message"]
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {scraper}"})
        assert answer.status_code == 200
        # The scraper's token reads nothing else.
        lookup = client.post("/online-features", json=LOOKUP,
                             headers={"Authorization": f"Bearer {scraper}"})
        assert lookup.status_code == 403
        samples = parse(answer.text)[1]
        assert value(samples, REQUESTS, endpoint="/metrics", status="401") == 1
        assert value(samples, REQUESTS, endpoint="/metrics", status="403") == 1


def test_scrapes_are_never_rate_limited() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guard = Guard(app, None, 1)
    statuses = [asyncio.run(one_request(guard, path, "10.0.0.7"))
                for path in [METRICS_PATH] * 3 + ["/registry"] * 2]
    assert statuses == [200, 200, 200, 200, 429]


class TmpdirServer(ServerProcess):
    """A server whose temporary files go to a folder of the test's own."""

    def __init__(self, registry: Path, tmpdir: Path, **options: object) -> None:
        super().__init__(registry, **options)  # type: ignore[arg-type]
        self.tmpdir = tmpdir

    def environment(self) -> dict[str, str]:
        return {**cli_environment(), "TMPDIR": str(self.tmpdir)}


def test_two_workers_add_up_their_counters(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    store.close()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    server = TmpdirServer(store.registry_path, tmpdir, output=tmp_path / "serve.log",
                          args=["--workers", "2"])
    server.start()  # its readiness probe is one answered GET /health
    try:
        workers: dict[str, int] = {}
        for _ in range(400):  # a new connection each time: the kernel spreads them
            health = httpx.get(f"{server.url}/health", timeout=10.0)
            assert health.status_code == 200
            worker = health.headers[WORKER_HEADER]
            workers[worker] = workers.get(worker, 0) + 1
            if len(workers) == 2 and min(workers.values()) >= 2:
                break
        assert len(workers) == 2, workers
        folders = [path.name for path in tmpdir.iterdir()]
        assert len(folders) == 1 and folders[0].startswith("featurestore-metrics-")
        for _ in range(4):  # whichever worker answers the scrape sees both
            samples = scrape(lambda path: httpx.get(f"{server.url}{path}", timeout=10.0))
            assert value(samples, REQUESTS, endpoint="/health", status="200") == (
                1 + sum(workers.values()))
            assert value(samples, f"{DURATION}_count", endpoint="/health", status="200") == (
                1 + sum(workers.values()))
        assert value(samples, MATERIALIZATION_AGE, view="user_txn") > 0
        process = server.process
        assert process is not None
        process.terminate()
        assert process.wait(timeout=30) == 0
    finally:
        server.stop()
    assert os.listdir(tmpdir) == []  # the private folder is removed at shutdown
