"""Bearer tokens and the rate limit, through real `featurestore serve` subprocesses.

One server with `--auth --access-log` serves most tests here; the rate limit and worker
processes get servers of their own. Every response and every line the servers print is
checked for the tokens: none may ever show up.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from featurestore import FeatureStore
from featurestore.serving.guard import Guard, RateLimiter
from tests.serving.conftest import DEMO_END, ServerProcess, cli_environment, make_demo_store

LOOKUP = {"service": "fraud_v1", "entities": {"user_id": [1, 2]},
          "request": {"amount_now": [10.0, 20.0]},
          "at": (DEMO_END + timedelta(hours=2)).isoformat()}
PUSH = {"source": "transactions", "rows": [
    {"user_id": 4, "event_ts": (DEMO_END + timedelta(minutes=5)).isoformat(), "amount": 7.0,
     "merchant_category": "fuel"}]}
WRONG = "fst_" + "A" * 43  # shaped like a token, never created
APPLIES_WITHIN_S = 5.0


@dataclass
class AuthServer:
    """A server with --auth, its project, the tokens made for it and what it answered."""

    server: ServerProcess
    store: FeatureStore
    log: Path
    tokens: dict[str, str]
    answers: list[httpx.Response] = field(default_factory=list)

    def request(self, method: str, path: str, token: str | None = None,
                **options: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = httpx.request(method, f"{self.server.url}{path}", headers=headers,
                                 timeout=10.0, **options)  # type: ignore[arg-type]
        self.answers.append(response)
        return response


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    directory = tmp_path_factory.mktemp("auth")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY"):
            patch.delenv(name, raising=False)
        store = make_demo_store(directory / "demo", "local")
        tokens = {"reader": store.create_token("reader", ["read"]),
                  "pusher": store.create_token("pusher", ["read", "push"]),
                  "push_only": store.create_token("push_only", ["push"])}
    store.close()
    log = directory / "serve.log"
    server = ServerProcess(store.registry_path, output=log, args=["--auth", "--access-log"])
    server.start()
    try:
        yield AuthServer(server, store, log, tokens)
    finally:
        server.stop()


def token_cli(store: FeatureStore, *args: str) -> subprocess.CompletedProcess[str]:
    """`featurestore token ...` in its own process."""
    return subprocess.run([sys.executable, "-m", "featurestore", "token", *args, "--registry",
                           str(store.registry_path)], env=cli_environment(),
                          capture_output=True, text=True, timeout=60, check=True)


def wait_for_status(auth: AuthServer, token: str, status: int) -> float:
    """Seconds until GET /registry with `token` answers `status` (fails after 5 s)."""
    started = time.monotonic()
    while time.monotonic() - started < APPLIES_WITHIN_S:
        if auth.request("GET", "/registry", token).status_code == status:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"GET /registry did not answer {status} within {APPLIES_WITHIN_S}s")


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/online-features"), ("GET", "/registry"), ("POST", "/push"),
    ("GET", "/nowhere"), ("GET", "/push"),
])
def test_no_token_is_401_with_www_authenticate(auth_server: AuthServer, method: str,
                                               path: str) -> None:
    response = auth_server.request(method, path, json={})
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    basic = httpx.request(method, f"{auth_server.server.url}{path}", timeout=10.0,
                          headers={"Authorization": "Basic cmVhZGVyOnJlYWRlcg=="})
    assert_error(basic, 401, "unauthorized")
    assert basic.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("presented", [WRONG, "not-even-shaped", WRONG[:-1]])
def test_a_wrong_token_is_401_invalid_token(auth_server: AuthServer, presented: str) -> None:
    response = auth_server.request("POST", "/online-features", presented, json=LOOKUP)
    error = assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert error["message"] == "the token is not valid: unknown or revoked"


def test_the_read_scope_looks_up_and_reads_the_registry(auth_server: AuthServer) -> None:
    expected = auth_server.store.get_online_features(**LOOKUP)
    reader = auth_server.tokens["reader"]
    lookup = auth_server.request("POST", "/online-features", reader, json=LOOKUP)
    assert lookup.status_code == 200 and lookup.json() == {"features": expected}
    registry = auth_server.request("GET", "/registry", reader)
    assert registry.status_code == 200 and registry.json()["project"] == "fraud_demo"
    # The scheme is case-insensitive (RFC 7235).
    lower = httpx.get(f"{auth_server.server.url}/registry", timeout=10.0,
                      headers={"authorization": f"bearer {reader}"})
    assert lower.status_code == 200


def test_a_token_without_the_scope_is_403(auth_server: AuthServer) -> None:
    push = auth_server.request("POST", "/push", auth_server.tokens["reader"], json=PUSH)
    assert assert_error(push, 403, "forbidden")["message"] == (
        "token 'reader' does not have the 'push' scope")
    lookup = auth_server.request("POST", "/online-features", auth_server.tokens["push_only"],
                                 json=LOOKUP)
    assert assert_error(lookup, 403, "forbidden")["message"] == (
        "token 'push_only' does not have the 'read' scope")


def test_the_push_scope_pushes(auth_server: AuthServer) -> None:
    response = auth_server.request("POST", "/push", auth_server.tokens["pusher"], json=PUSH)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == 1


@pytest.mark.parametrize("path", ["/health", "/docs", "/openapi.json",
                                  "/docs-assets/swagger-ui.css"])
def test_health_and_the_docs_stay_open(auth_server: AuthServer, path: str) -> None:
    assert auth_server.request("GET", path).status_code == 200


def test_the_openapi_document_declares_the_tokens(auth_server: AuthServer) -> None:
    document = auth_server.request("GET", "/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = document["paths"]
    for path, method in [("/online-features", "post"), ("/push", "post"),
                         ("/registry", "get")]:
        assert paths[path][method]["security"] == [{"bearer": []}]
        assert {"401", "403"} <= set(paths[path][method]["responses"])
    assert "security" not in paths["/health"]["get"]


def test_tokens_created_and_revoked_while_serving_apply_within_seconds(
        auth_server: AuthServer) -> None:
    created = token_cli(auth_server.store, "create", "short_lived", "--scope", "read")
    token = created.stdout.strip()
    auth_server.tokens["short_lived"] = token
    assert wait_for_status(auth_server, token, 200) < APPLIES_WITHIN_S
    token_cli(auth_server.store, "revoke", "short_lived")
    assert wait_for_status(auth_server, token, 401) < APPLIES_WITHIN_S
    response = auth_server.request("POST", "/online-features", token, json=LOOKUP)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_token_list_shows_the_last_use(auth_server: AuthServer) -> None:
    for name in ("reader", "pusher"):
        auth_server.request("GET", "/registry", auth_server.tokens[name])
    deadline = time.monotonic() + 10.0  # written within a second or so of the first use
    while True:
        listed = [orjson.loads(line) for line in
                  token_cli(auth_server.store, "list", "--json").stdout.splitlines()]
        used = {entry["name"]: entry["last_used"] for entry in listed}
        if None not in (used["reader"], used["pusher"]) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert used["pusher"] is not None and used["reader"] is not None
    table = token_cli(auth_server.store, "list").stdout
    assert "pusher" in table and all(token not in table
                                      for token in auth_server.tokens.values())


def test_no_token_ever_shows_up_in_answers_or_logs(auth_server: AuthServer) -> None:
    # One more round with every token (valid, revoked, wrong) on every kind of path.
    for token in [*auth_server.tokens.values(), WRONG]:
        auth_server.request("POST", "/online-features", token, json=LOOKUP)
        auth_server.request("POST", "/push", token, json={"source": "nowhere", "rows": []})
        auth_server.request("GET", f"/nowhere?token={token[:8]}", token)
    secrets = [*auth_server.tokens.values(), WRONG]
    assert len(auth_server.answers) >= 12
    for answer in auth_server.answers:
        shown = answer.content.decode() + "".join(f"{name}: {value}\n"
                                                  for name, value in answer.headers.items())
        assert not any(secret in shown for secret in secrets), shown
    log = auth_server.log.read_text()
    assert "auth: on (bearer tokens, 3 active)" in log.splitlines()[1]
    assert '"GET /nowhere" 401' in log and '"POST /push" 403' in log  # refusals are logged
    assert not any(secret in log for secret in secrets)


def test_the_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    # Auth from the registry this time (no --auth), and a limit of 5 requests a second.
    store = make_demo_store(tmp_path / "demo", "local")
    text = store.registry_path.read_text() + "serving:\n  auth: true\n  rate_limit: 5\n"
    store.registry_path.write_text(text)
    store = FeatureStore(store.registry_path)
    first, second = store.create_token("first", ["read"]), store.create_token("second", ["read"])
    store.close()
    server = ServerProcess(store.registry_path, output=tmp_path / "serve.log")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            answers = [http.get("/registry", headers={"Authorization": f"Bearer {first}"})
                       for _ in range(30)]
            other = http.get("/registry", headers={"Authorization": f"Bearer {second}"})
            health = [http.get("/health").status_code for _ in range(30)]
            anonymous = http.get("/registry")
    finally:
        server.stop()
    statuses = [answer.status_code for answer in answers]
    assert statuses[:5] == [200] * 5 and 429 in statuses
    limited = answers[statuses.index(429)]
    assert int(limited.headers["retry-after"]) >= 1
    assert assert_error(limited, 429, "rate_limited")["message"].startswith(
        "more than 5 requests per second from token 'first' in this server process")
    assert other.status_code == 200  # each token has its own bucket
    assert set(health) == {200}  # /health is never limited
    assert anonymous.status_code == 401
    startup = (tmp_path / "serve.log").read_text().splitlines()[1]
    assert startup == ("auth: on (bearer tokens, 2 active); rate limit: 5 requests per "
                       "second per token and process")


def test_workers_get_auth_and_see_a_token_created_after_startup(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    store.close()
    log = tmp_path / "serve.log"
    server = ServerProcess(store.registry_path, output=log,
                           args=["--auth", "--workers", "2"])
    server.start()
    try:
        assert httpx.get(f"{server.url}/registry", timeout=10.0).status_code == 401
        token = store.create_token("late", ["read"])
        deadline = time.monotonic() + APPLIES_WITHIN_S
        statuses: set[int] = set()
        while time.monotonic() < deadline and statuses != {200}:
            # New connections, spread over both workers: each must know the token.
            statuses = {httpx.get(f"{server.url}/registry", timeout=10.0,
                                  headers={"Authorization": f"Bearer {token}"}).status_code
                        for _ in range(20)}
        assert statuses == {200}
    finally:
        server.stop()
    lines = log.read_text().splitlines()
    assert lines[1] == "auth: on (bearer tokens, 0 active)"
    assert lines[2].startswith("warning: no token is active, so every request but /health")


async def one_request(app: Guard, path: str, client: str) -> int:
    """One GET through the middleware alone (no HTTP); the status it answered."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path, "headers": [],
             "client": (client, 5000)}
    await app(scope, receive, send)
    return sent[0]["status"]


def test_without_auth_the_limit_counts_per_client_and_the_name_is_none() -> None:
    states: list[dict[str, object]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        states.append(dict(scope["state"]))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guard = Guard(app, None, 2)
    calls = [("/registry", "10.0.0.7")] * 3 + [("/health", "10.0.0.7"),
                                               ("/registry", "10.0.0.8")]
    statuses = [asyncio.run(one_request(guard, path, client)) for path, client in calls]
    assert statuses == [200, 200, 429, 200, 200]
    assert states == [{"token_name": None}] * 4


def test_the_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(4, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(5)] == [None, None, None, None, 1]
    assert limiter.take("b") is None  # another key, another bucket
    now[0] += 0.25  # one request's worth
    assert limiter.take("a") is None and limiter.take("a") == 1
    now[0] += 10.0  # never more than the capacity
    assert [limiter.take("a") for _ in range(5)] == [None, None, None, None, 1]
