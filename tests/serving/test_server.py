"""The HTTP server: answers, the error contract, outages of Redis, fuzzing, a real uvicorn."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import redis
import schemathesis
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from featurestore import FeatureStore
from featurestore.online.cluster_keys import entity_tag
from featurestore.online.entity_keys import encode_entity_key
from featurestore.registry.serving_settings import MAX_BODY_BYTES, MAX_PUSH_ROWS
from featurestore.serving.http_errors import install_handlers, json_errors
from featurestore.serving.server import create_app
from tests.conftest import REDIS_TEST_PASSWORD, RedisServer
from tests.redis_cluster import RedisClusterNodes
from tests.serving.conftest import ALL_FEATURES, DEMO_END, ServerProcess, make_demo_store

AT = (DEMO_END + timedelta(hours=2)).isoformat()
LOOKUP = {"service": "fraud_v1", "entities": {"user_id": [1, 2]},
          "request": {"amount_now": [10.0, 20.0]}, "at": AT}
PUSH = {"source": "transactions", "rows": [
    {"user_id": 4, "event_ts": (DEMO_END + timedelta(minutes=5)).isoformat(), "amount": 700.0,
     "merchant_category": "fuel"}]}


@pytest.fixture(scope="module")
def client(shared_store: FeatureStore) -> Iterator[TestClient]:
    with TestClient(create_app(shared_store)) as test_client:
        yield test_client


def test_lookup_over_http_equals_the_sdk(client: TestClient, shared_store: FeatureStore) -> None:
    body = {"features": ALL_FEATURES, "entities": {"user_id": [1, 2, 3, 999_999]},
            "request": {"amount_now": [1.0, None, 30.0, 4.0]}, "at": AT, "full_names": True}
    response = client.post("/online-features", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = shared_store.get_online_features(**body)
    assert response.json() == {"features": expected}


def error_of(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    return response.status_code, body["error"]["code"]


def with_(**changes: object) -> bytes:
    return orjson.dumps({**LOOKUP, **changes})


BAD_REQUESTS = [
    ("/online-features", b'{"service": "fraud_v1",', 400, "malformed_json"),
    ("/online-features", b"", 400, "malformed_json"),
    ("/online-features", b"[1, 2]", 400, "invalid_body"),
    ("/online-features", with_(entitys={"user_id": [1]}), 400, "unknown_field"),
    ("/online-features", with_(entities=[1]), 400, "invalid_body"),
    ("/online-features", with_(full_names="yes"), 400, "invalid_body"),
    ("/online-features", with_(service="fraud_v2"), 400, "unknown_feature"),
    ("/online-features", with_(service=None, features=["user_txn:nope"]), 400,
     "unknown_feature"),
    ("/online-features", with_(entities={}), 400, "missing_entity_key"),
    ("/online-features", with_(entities={"user_id": [1, 2], "card": [1, 2]}), 400,
     "unknown_entity_key"),
    ("/online-features", with_(entities={"user_id": ["1", "2"]}), 400, "wrong_type"),
    ("/online-features", with_(entities={"user_id": [1, 2.5]}), 400, "wrong_type"),
    ("/online-features", with_(request={"amount_now": [1.0]}), 400, "length_mismatch"),
    ("/online-features", with_(request={"amount_now": ["a", "b"]}), 400, "wrong_type"),
    ("/online-features", with_(request={}), 400, "missing_request_field"),
    ("/online-features", with_(entities={"user_id": list(range(1001))},
                               request={"amount_now": [1.0] * 1001}), 413,
     "too_many_entities"),
    ("/online-features", with_(at="not a time"), 400, "invalid_time"),
    # Readable more than one way (microseconds? May 4?): refused rather than guessed at.
    ("/online-features", with_(at=1_706_659_200_000_000), 400, "invalid_time"),
    ("/online-features", with_(at="05/04/2024"), 400, "invalid_time"),
    ("/online-features", with_(at="today"), 400, "invalid_time"),
    ("/online-features", with_(service=None, features=["txn_context:amount_z"], entities={},
                               request={"amount_now": [1.0]}), 400, "missing_entity_key"),
    ("/online-features", with_(at="2020-01-01T00:00:00Z"), 400, "time_before_materialization"),
    # orjson reads integers past 64 bits as floats; 2**63 is past int64 keys.
    ("/online-features", with_(entities={"user_id": [1, 2**63]}), 400, "wrong_type"),
    ("/online-features", b'{"service": "fraud_v1", "entities": {"user_id": '
                         b'[123456789012345678901234567890]}}', 400, "wrong_type"),
    ("/online-features", b" " * (MAX_BODY_BYTES + 1), 413, "body_too_large"),
    ("/push", orjson.dumps({"source": "nope", "rows": []}), 400, "unknown_source"),
    ("/push", orjson.dumps({"rows": []}), 400, "invalid_body"),
    ("/push", orjson.dumps({"source": "transactions", "rows": [{"user_id": "x"}]}), 400,
     "invalid_rows"),
    ("/push", orjson.dumps({"source": "transactions", "rows": [{}] * (MAX_PUSH_ROWS + 1)}),
     413, "too_many_rows"),
    ("/push", orjson.dumps({"source": "transactions", "rows": {"user_id": 1}}), 400,
     "invalid_body"),
    ("/push", orjson.dumps({"source": "transactions", "rows": [1, 2]}), 400, "invalid_rows"),
]


@pytest.mark.parametrize(("path", "body", "status", "code"), BAD_REQUESTS)
def test_bad_requests_get_a_coded_4xx(client: TestClient, path: str, body: bytes, status: int,
                                      code: str) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert error_of(response) == (status, code)


def test_a_request_feature_over_http_needs_only_what_it_reads(client: TestClient) -> None:
    body = {"features": ["txn_context:log_amount_now"], "request": {"amount_now": [0.0, None]}}
    response = client.post("/online-features", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"features": {"log_amount_now": [0.0, None]}}


def test_the_time_error_names_the_accepted_forms(client: TestClient) -> None:
    response = client.post("/online-features", content=with_(at="today"),
                           headers={"content-type": "application/json"})
    assert response.json()["error"]["message"] == (
        "'at': expected an ISO-8601 timestamp such as '2024-03-31T12:00:00Z' (naive means "
        "UTC) or a datetime, got 'today'")


def test_a_bug_is_a_logged_json_500_without_a_trace(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI()
    install_handlers(app)

    @app.post("/broken")
    @json_errors
    async def broken(request: Request) -> Response:
        raise ZeroDivisionError("a bug in the server")

    with TestClient(app) as client:
        response = client.post("/broken", json={})
    assert error_of(response) == (500, "internal_error")
    assert "Traceback" not in response.text and "ZeroDivisionError" not in response.text
    assert "ZeroDivisionError: a bug in the server" in caplog.text


def test_unknown_paths_and_methods_answer_in_the_same_shape(client: TestClient) -> None:
    assert error_of(client.get("/features")) == (404, "not_found")
    assert error_of(client.get("/online-features")) == (405, "method_not_allowed")


def test_health_registry_and_docs(client: TestClient, shared_store: FeatureStore) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    answer = health.json()
    age = answer["views"]["user_txn"].pop("age_seconds")
    assert age == pytest.approx((datetime.now(UTC) - DEMO_END).total_seconds(), abs=60)
    assert answer == {"status": "ok", "materialized": True,
                      "online_store": "local" if shared_store.online == "local" else "redis",
                      "served_version": 1, "applied_version": 1, "pending": None,
                      "views": {"user_txn": {"materialized_until": DEMO_END.isoformat()}}}
    registry = client.get("/registry").json()
    assert registry["project"] == "fraud_demo"
    assert (registry["served_version"], registry["applied_version"]) == (1, 1)
    assert registry["views"]["user_txn"]["materialized_until"] == DEMO_END.isoformat()
    assert registry["graph_hash"] == shared_store.kernels().hash
    served = set(registry["definitions"]["feature_views"]["user_txn"]["features"])
    assert served == set(shared_store.registry.feature_views["user_txn"].features)
    assert len(served) == 15
    assert served >= {name.split(":")[1] for name in ALL_FEATURES if name.startswith("user_txn:")}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {"/online-features", "/push", "/health", "/registry"}


def test_push_over_http_reaches_lookups(demo_store: FeatureStore) -> None:
    lookup = {"features": ["user_txn:txn_count_1h", "user_txn:last_category"],
              "entities": {"user_id": [4]}, "at": (DEMO_END + timedelta(minutes=30)).isoformat()}
    with TestClient(create_app(demo_store)) as client:
        before = client.post("/online-features", json=lookup).json()["features"]
        pushed = client.post("/push", json=PUSH)
        assert pushed.status_code == 200
        assert pushed.json() == {"source": "transactions", "rows": 1, "online": True,
                                 "entities": 1}
        after = client.post("/online-features", json=lookup).json()["features"]
    assert after == {"user_id": [4], "txn_count_1h": [before["txn_count_1h"][0] + 1],
                     "last_category": ["fuel"]}


def test_a_push_that_cannot_be_stored_is_a_503(demo_store: FeatureStore) -> None:
    # A file where the segment folder belongs: the disk refuses, like a full one would.
    folder = demo_store.offline_path.parent / "pushed"
    folder.mkdir()
    (folder / "transactions").write_text("not a folder")
    with TestClient(create_app(demo_store)) as client:
        assert error_of(client.post("/push", json=PUSH)) == (503, "storage_unavailable")


def test_redis_outage_gives_503_and_service_resumes(clean_redis: RedisServer,
                                                    tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis.url)
    with TestClient(create_app(store)) as client:
        expected = client.post("/online-features", json=LOOKUP).json()
        clean_redis.stop()
        try:
            for _ in range(3):
                assert error_of(client.post("/online-features", json=LOOKUP)) == (
                    503, "online_store_unavailable")
            assert error_of(client.post("/push", json=PUSH)) == (503, "online_store_unavailable")
            health = client.get("/health")
            assert health.status_code == 503 and health.json()["status"] == "unavailable"
        finally:
            clean_redis.start()
        # Back, but empty (Redis is a cache): the server says so until a materialization.
        assert client.get("/health").json()["materialized"] is False
        assert error_of(client.post("/online-features", json=LOOKUP)) == (503, "not_materialized")
        store.materialize(end=DEMO_END)
        assert client.post("/online-features", json=LOOKUP).json() == expected
    store.close()


def test_a_cluster_master_outage_gives_503_and_service_resumes(
        clean_redis_cluster: RedisClusterNodes, tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis_cluster.url)
    # The master holding user 1's states; LOOKUP touches it.
    stopped = clean_redis_cluster.owner_of(entity_tag(encode_entity_key((1,))))
    with TestClient(create_app(store)) as client:
        expected = client.post("/online-features", json=LOOKUP).json()
        clean_redis_cluster.stop_node(stopped)
        try:
            for _ in range(3):
                response = client.post("/online-features", json=LOOKUP)
                assert error_of(response) == (503, "online_store_unavailable")
                assert response.headers["content-type"] == "application/json"
            assert error_of(client.post("/push", json=PUSH)) == (503, "online_store_unavailable")
            health = client.get("/health")
            assert health.status_code == 503 and health.json()["status"] == "unavailable"
        finally:
            clean_redis_cluster.start_node(stopped)
        # Back with its data (masters are durable): the same answers, no materialization.
        assert client.get("/health").json()["materialized"] is True
        assert client.post("/online-features", json=LOOKUP).json() == expected
    store.close()


def test_a_paused_redis_times_out_to_503_then_serves_the_same_state(
        clean_redis: RedisServer, tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", f"{clean_redis.url}?socket_timeout=0.3")
    with redis.Redis.from_url(clean_redis.url) as admin:
        pid = admin.info("server")["process_id"]
    with TestClient(create_app(store)) as client:
        expected = client.post("/online-features", json=LOOKUP).json()
        os.kill(pid, signal.SIGSTOP)  # our private server: hung, not gone
        try:
            assert error_of(client.post("/online-features", json=LOOKUP)) == (
                503, "online_store_unavailable")
        finally:
            os.kill(pid, signal.SIGCONT)
        # Nothing was lost and nothing needs a restart or a new materialization.
        assert client.post("/online-features", json=LOOKUP).json() == expected
    store.close()


@pytest.mark.slow
def test_fuzzed_requests_never_get_a_server_error(clean_redis: RedisServer,
                                                  tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis.url)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(store))
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if operation.method.upper() == "POST":
            modes.append(GenerationMode.NEGATIVE)  # GETs take no input to break
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=20, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def call(case: schemathesis.Case) -> None:
                response = case.call()
                assert response.status_code < 500, (case.body, response.text)
                if response.status_code >= 400:
                    assert set(response.json()) <= {"error", "status", "online_store"}

            call()
    store.close()


def test_the_documented_examples_are_valid_requests(demo_store: FeatureStore) -> None:
    with TestClient(create_app(demo_store)) as client:
        paths = client.get("/openapi.json").json()["paths"]
        for path in ("/online-features", "/push"):
            content = paths[path]["post"]["requestBody"]["content"]["application/json"]
            example = content["examples"]["example"]["value"]
            assert client.post(path, json=example).status_code == 200, (path, example)


def test_a_real_server_answers_over_http(clean_redis: RedisServer, tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis.url)
    expected = store.get_online_features(**LOOKUP)
    server = ServerProcess(store.registry_path)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            assert http.get("/health").json()["status"] == "ok"
            for _ in range(20):  # keep-alive: one connection for every request
                assert http.post("/online-features", json=LOOKUP).json() == {
                    "features": expected}
            assert http.post("/push", json=PUSH).json()["online"] is True
            assert error_of(http.post("/online-features", content=b"{")) == (
                400, "malformed_json")
    finally:
        server.stop()
    store.close()


def test_a_real_server_never_shows_the_redis_password(password_redis: RedisServer,
                                                      tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", password_redis.url)
    shown = password_redis.url.replace(REDIS_TEST_PASSWORD, "***")
    server = ServerProcess(store.registry_path, output=tmp_path / "serve.log")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            assert http.post("/online-features", json=LOOKUP).status_code == 200
            password_redis.stop()
            health = http.get("/health")
            lookup = http.post("/online-features", json=LOOKUP)
    finally:
        server.stop()
        store.close()
    # Error messages name the store without its password.
    assert health.status_code == 503 and shown in health.json()["error"]["message"]
    assert error_of(lookup) == (503, "online_store_unavailable")
    assert shown in lookup.json()["error"]["message"]
    assert REDIS_TEST_PASSWORD not in health.text + lookup.text
    # So does the line `serve` prints at startup.
    log = (tmp_path / "serve.log").read_text()
    assert log.splitlines()[0] == (f"serving fraud_demo from the {shown} online store on "
                                   f"http://127.0.0.1:{server.port} (OpenAPI at /docs)")
    assert REDIS_TEST_PASSWORD not in log


def test_the_registry_shows_no_password(password_redis: RedisServer, tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", password_redis.url, materialize=False)
    with TestClient(create_app(store)) as client:
        answer = client.get("/registry")
    store.close()
    assert answer.json()["definitions"]["store"]["online"] == password_redis.url.replace(
        REDIS_TEST_PASSWORD, "***")
    assert REDIS_TEST_PASSWORD not in answer.text
