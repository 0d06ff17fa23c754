"""Fixtures for the online path: demo projects materialized into each online store.

The online store is named in the project's registry.yaml (`store.online`), so a
subprocess (a server, a materialization) started with `--registry` uses the same one.
Redis is always the private server of `tests/conftest.py`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from featurestore import FeatureStore
from tests.conftest import RedisServer
from tests.projects import DEMO_TEXT, REPO, write_demo_project

# write_demo_project's 30 days start on 2024-01-01: every event is before DEMO_END, so
# training sets at times >= DEMO_END see exactly the events a materialization at
# DEMO_END folded.
DEMO_END = datetime(2024, 1, 31, tzinfo=UTC)
DEMO_USERS = 60
ALL_FEATURES = [f"user_txn:{name}" for name in (
    "txn_count_1h", "amount_sum_7d", "amount_mean_30d", "amount_std_30d", "amount_max_1d",
    "big_txn_7d", "log_amount_sum_1d", "last_category", "recent_amounts",
    "first_categories_30d", "top_categories_30d", "amount_decayed_1d", "txn_decayed_1h",
    "distinct_categories_30d", "amount_quantiles_30d")] + [
    "txn_context:amount_z", "txn_context:log_amount_now"]
_SERVER_START_TIMEOUT_S = 60.0


def demo_text(online: str) -> str:
    """The demo registry with `store.online` set to `online`."""
    return DEMO_TEXT.replace("online: local ", f"online: {online} ", 1)


def make_demo_store(directory: Path, online: str, materialize: bool = True) -> FeatureStore:
    """Write, apply and (unless told not to) materialize a small demo project."""
    write_demo_project(directory, demo_text(online), events=3_000, users=DEMO_USERS, days=30)
    store = FeatureStore(directory)
    store.apply()
    if materialize:
        store.materialize(end=DEMO_END)
    return store


def online_setting(kind: str, redis: RedisServer | None) -> str:
    """The `store.online` value of a backend kind."""
    return "local" if kind == "local" else redis.url  # type: ignore[union-attr]


def module_online_setting(request: pytest.FixtureRequest) -> str:
    """The `store.online` value for a module-scoped fixture parametrized by backend
    kind ("redis" or "local"): the private Redis is started and emptied first."""
    redis = None
    if request.param == "redis":
        redis = request.getfixturevalue("redis_server")
        redis.start()
        redis.flush()
    return online_setting(request.param, redis)


@pytest.fixture(autouse=True)
def _no_store_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry file alone decides where the stores are."""
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def demo_store(online_backend: object, tmp_path: Path) -> Iterator[FeatureStore]:
    """A materialized demo project on each backend, fresh for each test."""
    setting = online_backend.setting  # type: ignore[attr-defined]
    store = make_demo_store(tmp_path / "demo", setting)
    yield store
    store.close()


@pytest.fixture(scope="module", params=["redis", "local"])
def shared_store(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    """A materialized demo project on each backend, shared by a module's read-only tests."""
    setting = module_online_setting(request)
    directory = tmp_path_factory.mktemp(f"shared-{request.param}")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
            patch.delenv(name, raising=False)
        store = make_demo_store(directory, setting)
    yield store
    store.close()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli_environment() -> dict[str, str]:
    """The environment for a `featurestore` subprocess: this checkout importable, and
    only the registry file deciding where the stores are and whether auth is on."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY",
                        "FEATURESTORE_AUTH")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class ServerProcess:
    """`featurestore serve` in a subprocess on a free port of 127.0.0.1.

    Started with `start()`, ready once GET /health answers; stopped by its PID. With
    `output`, what the process prints (stdout and stderr) goes to that file; `args` are
    more options of `serve`. Subclasses may run another command (`command`, `environment`).
    """

    def __init__(self, registry: Path, output: Path | None = None,
                 args: Sequence[str] = ()) -> None:
        self.registry = registry
        self.output = output
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The running process (None before `start` and after `stop`)."""
        return self._process

    def command(self) -> list[str]:
        """The command line of the server."""
        return [sys.executable, "-m", "featurestore", "serve", "--registry",
                str(self.registry), "--host", "127.0.0.1", "--port", str(self.port), *self.args]

    def environment(self) -> dict[str, str]:
        """The server's environment."""
        return cli_environment()

    def start(self) -> None:
        """Start the server and wait until it answers /health (any status)."""
        command, env = self.command(), self.environment()
        if self.output is None:
            self._process = subprocess.Popen(command, env=env,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        else:
            with self.output.open("wb") as log:
                self._process = subprocess.Popen(command, env=env, stdout=log,
                                                 stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                error = (self.output.read_text() if self.output is not None
                         else self._process.stderr.read().decode() if self._process.stderr
                         else "")
                raise RuntimeError(f"{' '.join(command[2:4])} exited:\n{error}")
            if self.answers():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{' '.join(command[2:4])} did not answer within "
                           f"{_SERVER_START_TIMEOUT_S:.0f}s")

    def answers(self) -> bool:
        """Whether GET /health answers now (any status); the readiness probe of `start`."""
        try:
            httpx.get(f"{self.url}/health", timeout=1.0)
        except httpx.TransportError:
            return False
        return True

    def stop(self) -> None:
        """Terminate the process by its PID (kill it if it does not exit)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
