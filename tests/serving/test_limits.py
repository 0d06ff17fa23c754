"""The server's limits, through a real `featurestore serve`: the body size, rows per push
and body deadline of the registry's `serving` section, and uvicorn's connection limits.

Requests that a client library would not send (a body that never ends, one that
trickles) go through raw sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from featurestore import FeatureStore
from featurestore.registry.serving_settings import BODY_TIMEOUT_S, MAX_BODY_BYTES
from tests.projects import write_demo_project
from tests.serving.conftest import DEMO_END, ServerProcess, demo_text

MAX_BODY = 2_000
MAX_ROWS = 3
BODY_TIMEOUT = 1.0
LIMITS = (f"\nserving:\n  max_body_bytes: {MAX_BODY}\n  max_push_rows: {MAX_ROWS}\n"
          f"  body_timeout: {BODY_TIMEOUT}\n")
SOCKET_TIMEOUT_S = 15.0


def push_rows(count: int) -> dict[str, object]:
    """A push body of `count` valid transactions."""
    return {"source": "transactions", "rows": [
        {"user_id": 1 + i, "event_ts": (DEMO_END + timedelta(minutes=i)).isoformat(),
         "amount": 10.0 + i, "merchant_category": "fuel"} for i in range(count)]}


def applied_project(directory: Path, extra: str = "") -> Path:
    """The demo project (local online store, nothing materialized), applied."""
    write_demo_project(directory, demo_text("local") + extra, events=500, users=20, days=30)
    store = FeatureStore(directory)
    store.apply()
    store.close()
    return directory / "registry.yaml"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server whose registry sets small limits."""
    directory = tmp_path_factory.mktemp("limited")
    server = ServerProcess(applied_project(directory / "demo", LIMITS))
    server.start()
    yield server
    server.stop()


def connect(server: ServerProcess) -> socket.socket:
    """A raw TCP connection to the server."""
    return socket.create_connection(("127.0.0.1", server.port), timeout=SOCKET_TIMEOUT_S)


def head(path: str, *headers: str) -> bytes:
    """The request line and headers of a POST, without a body."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer_until_closed(connection: socket.socket) -> tuple[int, dict[str, str], dict]:
    """Status, headers and JSON body of the answer; the server must close the connection
    after it (the body was left unread)."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    connection.close()
    header_block, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = header_block.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip()
               for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, orjson.loads(body)


def test_an_announced_body_over_the_limit_gets_413_before_it_is_sent(
        limited: ServerProcess) -> None:
    connection = connect(limited)
    # Only the head: the server answers without waiting for (or reading) the body.
    connection.sendall(head("/online-features", f"Content-Length: {MAX_BODY + 1}"))
    status, headers, body = answer_until_closed(connection)
    assert status == 413 and headers["connection"] == "close"
    assert body["error"]["code"] == "body_too_large"
    assert str(MAX_BODY) in body["error"]["message"]


def test_a_chunked_body_over_the_limit_gets_413_without_its_end(limited: ServerProcess) -> None:
    connection = connect(limited)
    chunk = b"x" * (MAX_BODY + 500)
    # One chunk past the limit, and no last chunk: the body has no end to wait for.
    connection.sendall(head("/push", "Transfer-Encoding: chunked")
                       + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    status, _, body = answer_until_closed(connection)
    assert (status, body["error"]["code"]) == (413, "body_too_large")


def test_a_body_over_the_limit_from_a_client_library_gets_413(limited: ServerProcess) -> None:
    chunked = httpx.post(f"{limited.url}/push", content=iter([b" " * (MAX_BODY + 1)]),
                         timeout=10.0)
    sized = httpx.post(f"{limited.url}/online-features", content=b" " * (MAX_BODY + 1),
                       timeout=10.0)
    for response in (chunked, sized):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"


def test_rows_past_max_push_rows_get_413_and_are_not_stored(limited: ServerProcess) -> None:
    too_many = httpx.post(f"{limited.url}/push", json=push_rows(MAX_ROWS + 1), timeout=10.0)
    assert too_many.status_code == 413
    assert too_many.json()["error"] == {
        "code": "too_many_rows",
        "message": f"{MAX_ROWS + 1} rows in one push; the limit is {MAX_ROWS} "
                   "(serving.max_push_rows)"}
    store = FeatureStore(limited.registry)
    try:
        assert store.push_audit() == []
        allowed = httpx.post(f"{limited.url}/push", json=push_rows(MAX_ROWS), timeout=10.0)
        assert allowed.status_code == 200 and allowed.json()["rows"] == MAX_ROWS
        assert [record.rows for record in store.push_audit()] == [MAX_ROWS]
    finally:
        store.close()


def test_a_body_slower_than_the_deadline_gets_408(limited: ServerProcess) -> None:
    connection = connect(limited)
    body = orjson.dumps(push_rows(1))
    connection.sendall(head("/push", f"Content-Length: {len(body)}"))
    started = time.monotonic()
    # A byte every 0.3 s, stopping before the deadline, so that no byte is in flight
    # when the server answers and closes.
    for byte in body[:3]:
        connection.sendall(bytes([byte]))
        time.sleep(0.3)
    status, headers, answer = answer_until_closed(connection)
    waited = time.monotonic() - started
    assert status == 408 and headers["connection"] == "close"
    assert answer["error"]["code"] == "body_timeout"
    assert answer["error"]["message"] == (
        f"the request body did not arrive within {BODY_TIMEOUT:g} s (3 bytes received)")
    assert BODY_TIMEOUT <= waited < BODY_TIMEOUT + 3


def test_the_defaults() -> None:
    assert (MAX_BODY_BYTES, BODY_TIMEOUT_S) == (1024 * 1024, 10.0)


def test_uvicorn_limits_on_connections(tmp_path: Path) -> None:
    registry = applied_project(tmp_path / "demo")
    server = ServerProcess(registry, args=["--limit-concurrency", "2",
                                           "--timeout-keep-alive", "1"])
    server.start()
    try:
        # An idle keep-alive connection is closed after --timeout-keep-alive seconds.
        idle = connect(server)
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        while idle.recv(65536):
            pass
        assert time.monotonic() - started < 3
        idle.close()
        assert httpx.get(f"{server.url}/health", timeout=10.0).status_code == 200
        # With another connection open, a request is the second of two: over the limit.
        held = connect(server)
        try:
            time.sleep(0.2)  # the server has accepted it
            refused = httpx.get(f"{server.url}/health", timeout=10.0)
        finally:
            held.close()
        assert refused.status_code == 503
    finally:
        server.stop()
