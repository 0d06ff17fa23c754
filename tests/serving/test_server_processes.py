"""Serving for real: worker processes, the ASGI factory under uvicorn, access logs,
graceful shutdown and a /docs page that needs no internet. Every server here is a real
subprocess on a free port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from featurestore.serving.access_log import logging_config
from featurestore.serving.server import WORKER_HEADER
from tests.conftest import RedisServer
from tests.projects import REPO
from tests.serving.conftest import DEMO_END, ServerProcess, cli_environment, make_demo_store

LOOKUP = {"service": "fraud_v1", "entities": {"user_id": [1, 2]},
          "request": {"amount_now": [10.0, 20.0]},
          "at": (DEMO_END + timedelta(hours=2)).isoformat()}
ACCESS_FIELDS = {"time", "logger", "method", "path", "status", "duration_ms", "client"}
PROMPT_EXIT_S = 5.0
GUIDE = REPO / "docs" / "deployment.md"


class FactoryProcess(ServerProcess):
    """`uvicorn featurestore.serving.app:create_app --factory`, configured by environment."""

    def __init__(self, registry: Path, output: Path | None = None, args: Sequence[str] = (),
                 overrides: dict[str, str] | None = None) -> None:
        super().__init__(registry, output, args)
        self.overrides = overrides or {}

    def command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "featurestore.serving.app:create_app",
                "--factory", "--host", "127.0.0.1", "--port", str(self.port), *self.args]

    def environment(self) -> dict[str, str]:
        return {**cli_environment(), "FEATURESTORE_REGISTRY": str(self.registry),
                **self.overrides}


def guide_block(language: str, containing: str) -> str:
    """The one ```language block of docs/deployment.md that contains `containing`."""
    blocks = re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    [block] = [block for block in blocks if containing in block]
    return block


def terminate(server: ServerProcess) -> tuple[int, float]:
    """SIGTERM the server; its exit status and how long it took to exit."""
    process = server.process
    assert process is not None
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    status = process.wait(timeout=30)
    return status, time.monotonic() - started


def test_two_workers_share_the_port_and_stop_on_sigterm(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    expected = store.get_online_features(**LOOKUP)
    store.close()
    server = ServerProcess(store.registry_path, output=tmp_path / "serve.log",
                           args=["--workers", "2"])
    server.start()
    try:
        workers: set[str] = set()
        for _ in range(400):  # a new connection each time: the kernel spreads them
            health = httpx.get(f"{server.url}/health", timeout=10.0)
            assert health.status_code == 200
            workers.add(health.headers[WORKER_HEADER])
            lookup = httpx.post(f"{server.url}/online-features", json=LOOKUP, timeout=10.0)
            assert lookup.json() == {"features": expected}
            if len(workers) == 2:
                break
        assert len(workers) == 2
        assert server.process is not None and str(server.process.pid) not in workers
        status, seconds = terminate(server)
    finally:
        server.stop()
    assert status == 0 and seconds < PROMPT_EXIT_S
    assert (tmp_path / "serve.log").read_text().splitlines()[0] == (
        f"serving fraud_demo from the local online store on http://127.0.0.1:{server.port} "
        "(OpenAPI at /docs), 2 worker processes")


def test_the_factory_under_uvicorn_follows_the_environment(clean_redis: RedisServer,
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The registry says `online: local` and the default offline file; the environment
    # moves both, for the materialization here and for the factory alike.
    overrides = {"FEATURESTORE_ONLINE": clean_redis.url,
                 "FEATURESTORE_OFFLINE": str(tmp_path / "elsewhere" / "offline.duckdb")}
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "elsewhere").mkdir()
    store = make_demo_store(tmp_path / "demo", "local")
    expected = store.get_online_features(**LOOKUP)
    store.close()
    # The JSON log configuration, made by the command docs/deployment.md gives.
    command = guide_block("sh", "log.json").split("\nuvicorn ")[0].replace("\\\n", "")
    subprocess.run(command, shell=True, cwd=tmp_path, check=True, timeout=60,
                   env={**cli_environment(),
                        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    assert orjson.loads((tmp_path / "log.json").read_bytes()) == logging_config(
        "json", access_log=True)
    server = FactoryProcess(store.registry_path, output=tmp_path / "uvicorn.log",
                            args=["--log-config", str(tmp_path / "log.json")],
                            overrides=overrides)
    server.start()
    try:
        health = httpx.get(f"{server.url}/health", timeout=10.0).json()
        lookup = httpx.post(f"{server.url}/online-features", json=LOOKUP, timeout=10.0)
        status, seconds = terminate(server)
    finally:
        server.stop()
    assert (health["status"], health["online_store"], health["materialized"]) == (
        "ok", "redis", True)
    assert lookup.json() == {"features": expected}
    # Plain uvicorn dies of the signal once it has shut down (`featurestore serve` exits 0).
    assert status in (0, -signal.SIGTERM) and seconds < PROMPT_EXIT_S
    entries = [orjson.loads(line) for line in (tmp_path / "uvicorn.log").read_text().splitlines()]
    assert {"method": "POST", "path": "/online-features", "status": 200}.items() <= next(
        entry for entry in entries if entry.get("method") == "POST").items()


@pytest.mark.parametrize(("registry", "problem"), [
    ("missing.yaml", "featurestore: "),
    ("broken.yaml", "featurestore: "),  # then where the YAML breaks
])
def test_the_factory_refuses_a_bad_registry_in_one_line(tmp_path: Path, registry: str,
                                                        problem: str) -> None:
    (tmp_path / "broken.yaml").write_text("project: [unclosed\n")
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "featurestore.serving.app:create_app", "--factory",
         "--port", "0"],
        env={**cli_environment(), "FEATURESTORE_REGISTRY": str(tmp_path / registry)},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("featurestore:")]
    assert len(lines) == 1 and lines[0].startswith(problem + str(tmp_path / registry)), (
        done.stderr)


def test_json_access_log_lines(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    store.close()
    server = ServerProcess(store.registry_path, output=tmp_path / "serve.log",
                           args=["--access-log", "--log-format", "json"])
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            assert http.post("/online-features", json=LOOKUP).status_code == 200
            assert http.post("/online-features", content=b"{").status_code == 400
            assert http.get("/nowhere").status_code == 404
        status, _ = terminate(server)
    finally:
        server.stop()
    assert status == 0
    startup, auth, *lines = (tmp_path / "serve.log").read_text().splitlines()
    assert startup.startswith("serving fraud_demo from the local online store")
    assert auth.startswith("auth: off: anyone who can reach the port may read and push")
    entries = [orjson.loads(line) for line in lines]  # every other line is JSON
    access = [entry for entry in entries if entry["logger"] == "featurestore.access"]
    assert all(set(entry) == ACCESS_FIELDS for entry in access)
    requests = [(entry["method"], entry["path"], entry["status"]) for entry in access]
    # The readiness probe's GET /health requests come first.
    assert requests[-3:] == [("POST", "/online-features", 200),
                             ("POST", "/online-features", 400), ("GET", "/nowhere", 404)]
    assert all(entry["duration_ms"] >= 0 and entry["client"].startswith("127.0.0.1:")
               and entry["time"].endswith("Z") for entry in access)
    assert any(entry.get("message") == "Application startup complete." for entry in entries)


def test_text_access_log_lines_have_the_duration(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local", materialize=False)
    store.close()
    server = ServerProcess(store.registry_path, output=tmp_path / "serve.log",
                           args=["--access-log"])
    server.start()
    try:
        httpx.get(f"{server.url}/registry", timeout=10.0)
    finally:
        server.stop()
    log = (tmp_path / "serve.log").read_text()
    assert re.search(r'^INFO: +127\.0\.0\.1:\d+ - "GET /registry" 200 \d+\.\d\dms$', log,
                     re.MULTILINE), log


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    expected = store.get_online_features(**LOOKUP)
    store.close()
    server = ServerProcess(store.registry_path, output=tmp_path / "serve.log")
    server.start()
    body = orjson.dumps(LOOKUP)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10.0) as client:
            # Half a request: the server has begun it and waits for the rest of the body.
            client.sendall(b"POST /online-features HTTP/1.1\r\nHost: test\r\n"
                           b"Content-Type: application/json\r\n"
                           + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:10])
            time.sleep(0.5)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert server.process.poll() is None  # still finishing the request
            with pytest.raises(httpx.ConnectError):  # but taking no new connections
                httpx.get(f"{server.url}/health", timeout=2.0)
            client.sendall(body[10:])
            answer = read_response(client)
        status = server.process.wait(timeout=PROMPT_EXIT_S)
    finally:
        server.stop()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert orjson.loads(payload) == {"features": expected}
    assert status == 0


def read_response(client: socket.socket) -> bytes:
    """One whole HTTP response (the server closes the connection after it, shutting
    down)."""
    chunks = []
    while chunk := client.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_docs_need_no_internet(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local", materialize=False)
    store.close()
    server = ServerProcess(store.registry_path)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            page = http.get("/docs")
            assert page.status_code == 200
            assert "http://" not in page.text and "https://" not in page.text, page.text
            references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
            references += re.findall(r"url: '([^']+)'", page.text)
            assert len(references) == 4, references  # script, style sheet, icon, document
            for reference in references:
                assert reference.startswith("/") and not reference.startswith("//"), reference
                assert http.get(reference).status_code == 200, reference
    finally:
        server.stop()


def test_the_worker_header_is_this_process(tmp_path: Path) -> None:
    # In process, the header is the pid of the process answering (here, the test's).
    from fastapi.testclient import TestClient

    from featurestore.serving.server import create_app

    store = make_demo_store(tmp_path / "demo", "local", materialize=False)
    with TestClient(create_app(store, owns_store=True)) as client:
        assert client.get("/health").headers[WORKER_HEADER] == str(os.getpid())


def test_the_memory_measurement_of_the_guide_runs(clean_redis: RedisServer,
                                                   tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis.url)
    store.close()
    snippet = guide_block("python", "memory_usage").replace(
        "redis://localhost:6379/0", clean_redis.url)
    done = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True,
                          timeout=60, env=cli_environment())
    assert done.returncode == 0, done.stderr
    entities, _, size = done.stdout.partition(" entities, ")
    assert int(entities) > 0 and int(size.split()[0]) > 0, done.stdout
