"""Fixtures for real services: a private redis-server per test session, online stores.

Tests never touch a Redis they did not start: the server here listens on a free port of
127.0.0.1, saves nothing, and is stopped by its process id at the end of the session.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from featurestore.online import LOCAL_FILE_NAME, OnlineStore, open_online_store

if TYPE_CHECKING:
    from tests.redis_cluster import RedisClusterNodes

REDIS_INSTALL_HINT = (
    "redis-server not found on PATH: install it (Debian/Ubuntu: sudo apt-get install "
    "redis-server; macOS: brew install redis) or run `make redis-server`"
)
_READY_LINE = "Ready to accept connections"
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_TEST_PROJECT = "test_project"
REDIS_TEST_PASSWORD = "pw-that-must-never-be-shown"
"""The password of the `password_redis` server: a test fails wherever it shows up."""

# Compiled kernels are shared by every test and test subprocess (and kept between runs):
# a registry compiles once, not once per temporary project.
os.environ.setdefault("FEATURESTORE_CACHE_DIR",
                      str(Path(__file__).resolve().parents[1] / ".cache" / "test-kernels"))


class RedisServer:
    """A private redis-server process on 127.0.0.1; `start` after `stop` reuses the port.

    Args:
        executable: path of the redis-server binary.
        directory: its working directory (it writes nothing there with saving off).
        password: when given, clients must authenticate with it (``--requirepass``).
        durable: keep an append-only file in `directory`, fsynced on every write, so
            the data survives `stop` and `start` (as a production Redis would).
        extra_args: more redis-server options (a cluster node's, for instance).
    """

    def __init__(self, executable: str, directory: Path, password: str | None = None,
                 durable: bool = False, extra_args: tuple[str, ...] = ()) -> None:
        self.executable = executable
        self.directory = directory
        self.password = password
        self.durable = durable
        self.extra_args = extra_args
        self.port = _free_port()
        self._process: subprocess.Popen[str] | None = None
        self._output: list[str] = []

    @property
    def url(self) -> str:
        """The redis:// URL of the server (with its password, if it has one)."""
        credentials = f":{self.password}@" if self.password is not None else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and return once it answers PING (empty unless durable)."""
        if self.running:
            return
        self._output = []
        self._process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--daemonize", "no",
             *(["--appendonly", "yes", "--appendfsync", "always"] if self.durable
               else ["--appendonly", "no"]),
             "--dir", str(self.directory),
             *(["--requirepass", self.password] if self.password is not None else []),
             *self.extra_args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self.directory,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        # The drain thread reads the log until the process exits, so its pipe never
        # fills; the log line announcing readiness replaces any polling loop.
        threading.Thread(target=self._drain, args=(self._process, lines), daemon=True).start()
        try:
            while (line := lines.get(timeout=_START_TIMEOUT_S)) is not None:
                if _READY_LINE in line:
                    break
            else:
                raise RuntimeError("redis-server exited:\n" + "".join(self._output))
        except queue.Empty as error:
            self.stop()
            raise RuntimeError(
                "redis-server did not become ready:\n" + "".join(self._output)
            ) from error
        with self._client() as client:
            client.ping()

    def stop(self) -> None:
        """Stop the process by its PID: terminate, wait, kill if it does not exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def flush(self) -> None:
        """FLUSHALL on this private server."""
        with self._client() as client:
            client.flushall()

    def _client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, socket_connect_timeout=1.0)

    def _drain(self, process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self._output.append(line)
            lines.put(line)
        lines.put(None)


@dataclass(frozen=True)
class OnlineBackend:
    """One online store backend under test; `open` gives a new store object on it."""

    kind: str
    setting: str
    base_dir: Path
    project: str = _TEST_PROJECT

    def open(self) -> OnlineStore:
        """A new store object on this backend (same data as the others)."""
        return open_online_store(self.setting, self.base_dir, self.project)

    def stored_versions(self) -> set[str]:
        """Versions that still have data, read from the backend's raw layout."""
        if self.kind == "redis":
            prefix = f"fs:{self.project}:v:".encode()
            with redis.Redis.from_url(self.setting) as client:
                keys = client.scan_iter(match=prefix + b"*", count=1000)
                return {key[len(prefix):].split(b":", 1)[0].decode() for key in keys}
        if self.kind == "cluster":
            # Every key starts with a {hash tag}; scan each master on its own.
            body = f"fs:{self.project}:v:".encode()
            versions = set()
            for address in self.setting.removeprefix("redis+cluster://").split(","):
                host, _, port = address.rpartition(":")
                with redis.Redis(host=host, port=int(port)) as client:
                    for key in client.scan_iter(match=b"{*}" + body + b"*", count=1000):
                        rest = key.partition(b"}")[2]
                        if rest.startswith(body):
                            versions.add(rest[len(body):].split(b":", 1)[0].decode())
            return versions
        import sqlite3  # only the local backend needs it

        connection = sqlite3.connect(self.base_dir / LOCAL_FILE_NAME)
        try:
            rows = connection.execute(
                "SELECT version FROM states UNION SELECT version FROM metadata"
                " UNION SELECT version FROM versions"
            ).fetchall()
        finally:
            connection.close()
        return {row[0] for row in rows}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server for the whole session."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(REDIS_INSTALL_HINT, pytrace=False)
    server = RedisServer(executable, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    """A private 3-master Redis Cluster for the whole session (see tests/redis_cluster.py)."""
    executable, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if executable is None or cli is None:
        pytest.fail(REDIS_INSTALL_HINT, pytrace=False)
    from tests.redis_cluster import RedisClusterNodes

    cluster = RedisClusterNodes(executable, tmp_path_factory.mktemp("redis-cluster"), cli)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[str]:
    """A Dask LocalCluster of 2 worker processes (1 thread each) on 127.0.0.1 for one test
    module; yields its scheduler address (tcp://127.0.0.1:PORT). The workers inherit
    FEATURESTORE_CACHE_DIR (set above), so they load the kernels the tests compiled.

    Per module, not per session: an idle cluster's scheduler thread and worker processes
    would otherwise take CPU from every later test of the same test process."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1")
    try:
        with Client(cluster, set_as_default=False) as client:
            found = client.run(_featurestore_location)
        if len(found) != 2 or len(set(found.values())) != 1:
            pytest.fail(f"Dask workers cannot import featurestore alike: {found}",
                        pytrace=False)
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _featurestore_location() -> str:
    import featurestore

    return str(Path(featurestore.__file__).parent)


@pytest.fixture
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A private redis-server of its own that requires a password; stopped after the test."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(REDIS_INSTALL_HINT, pytrace=False)
    server = RedisServer(executable, tmp_path_factory.mktemp("redis-auth"),
                         password=REDIS_TEST_PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clean_redis(redis_server: RedisServer) -> RedisServer:
    """The private server, running and empty."""
    # A test that stops the server restarts it, but if it failed halfway it may not have.
    redis_server.start()
    redis_server.flush()
    return redis_server


@pytest.fixture
def clean_redis_cluster(redis_cluster: RedisClusterNodes) -> RedisClusterNodes:
    """The private Redis Cluster, every master running and empty."""
    # A test that stops a node restarts it, but if it failed halfway it may not have.
    redis_cluster.start()
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture(params=["redis", "local", "cluster"])
def online_backend(request: pytest.FixtureRequest, tmp_path: Path) -> OnlineBackend:
    """Each online store backend in turn, empty."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("clean_redis")
        return OnlineBackend("redis", server.url, tmp_path)
    if request.param == "cluster":
        cluster: RedisClusterNodes = request.getfixturevalue("clean_redis_cluster")
        return OnlineBackend("cluster", cluster.url, tmp_path)
    return OnlineBackend("local", "local", tmp_path)


@pytest.fixture
def online_store(online_backend: OnlineBackend) -> Iterator[OnlineStore]:
    """A fresh store of each backend kind; closed after the test."""
    store = online_backend.open()
    try:
        yield store
    finally:
        store.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
