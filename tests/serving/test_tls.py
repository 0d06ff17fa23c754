"""HTTPS: `featurestore serve --ssl-certfile F --ssl-keyfile K`, with a self-signed
certificate made here by the command docs/deployment.md gives."""

from __future__ import annotations

import shlex
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from featurestore.errors import InputError
from featurestore.serving.connections import Connections
from tests.projects import REPO
from tests.serving.conftest import ServerProcess, cli_environment
from tests.serving.test_limits import applied_project
from tests.serving.test_server_processes import guide_block

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl command is not "
                                   "installed (it makes the test's self-signed certificate)")


class TlsServer(ServerProcess):
    """A server on HTTPS, ready once /health answers over TLS."""

    def __init__(self, registry: Path, output: Path, cert: Path, key: Path,
                 workers: int) -> None:
        super().__init__(registry, output, ["--ssl-certfile", str(cert), "--ssl-keyfile",
                                            str(key), "--workers", str(workers)])
        self.cert = cert
        self.url = f"https://localhost:{self.port}"

    def answers(self) -> bool:
        try:
            httpx.get(f"{self.url}/health", timeout=1.0, verify=trusting(self.cert))
        except httpx.TransportError:
            return False
        return True


def trusting(cert: Path) -> ssl.SSLContext:
    """A client context that trusts this one certificate."""
    return ssl.create_default_context(cafile=str(cert))


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, by the guide's `openssl req` command."""
    command = guide_block("sh", "openssl req").strip().replace("\\\n", "")
    subprocess.run(shlex.split(command), cwd=directory, check=True, capture_output=True,
                   timeout=60)
    return directory / "cert.pem", directory / "key.pem"


@needs_openssl
@pytest.mark.parametrize("workers", [1, 2])
def test_serves_https_with_the_certificate(tmp_path: Path, workers: int) -> None:
    cert, key = make_certificate(tmp_path)
    registry = applied_project(tmp_path / "demo")
    server = TlsServer(registry, tmp_path / "serve.log", cert, key, workers)
    server.start()
    try:
        with httpx.Client(verify=trusting(cert)) as client:
            health = client.get(f"{server.url}/health", timeout=10.0)
        with pytest.raises(httpx.TransportError):  # plain HTTP to the TLS port
            httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=10.0)
        with pytest.raises(httpx.ConnectError):  # a client that does not trust it
            httpx.get(f"{server.url}/health", timeout=10.0)
    finally:
        server.stop()
    assert health.status_code == 200 and health.json()["status"] in ("ok", "degraded")
    assert (tmp_path / "serve.log").read_text().splitlines()[0].startswith(
        f"serving fraud_demo from the local online store on https://127.0.0.1:{server.port} ")


@needs_openssl
def test_bad_tls_files_are_one_line_before_starting(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    registry = applied_project(tmp_path / "demo")
    missing = tmp_path / "missing.pem"
    cases = [
        (["--ssl-certfile", str(cert)],
         "error: HTTPS needs both --ssl-certfile and --ssl-keyfile (or neither, for plain "
         "HTTP)"),
        (["--ssl-keyfile", str(key)],
         "error: HTTPS needs both --ssl-certfile and --ssl-keyfile (or neither, for plain "
         "HTTP)"),
        (["--ssl-certfile", str(missing), "--ssl-keyfile", str(key)],
         f"error: --ssl-certfile: file not found: {missing}"),
        (["--ssl-certfile", str(cert), "--ssl-keyfile", str(missing)],
         f"error: --ssl-keyfile: file not found: {missing}"),
        (["--ssl-certfile", str(key), "--ssl-keyfile", str(cert), "--workers", "2"],
         f"error: cannot serve HTTPS with {key} and {cert}: "),
    ]
    for options, message in cases:
        done = subprocess.run(
            [sys.executable, "-m", "featurestore", "serve", "--registry", str(registry),
             "--port", "0", *options],
            env=cli_environment(), capture_output=True, text=True, timeout=60, cwd=REPO)
        assert done.returncode == 1, done
        assert done.stdout == ""
        [line] = done.stderr.splitlines()
        assert line.startswith(message)


def test_connections_refuse_half_a_pair(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="needs both"):
        Connections(ssl_certfile=tmp_path / "cert.pem")
    assert Connections().scheme == "http"
    assert Connections().uvicorn_settings() == {"limit_concurrency": None,
                                                "timeout_keep_alive": 5.0}
