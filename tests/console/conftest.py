"""Fixtures for the web console: a demo project with history, served by `featurestore ui`.

The project has two materializations, a push and a verification behind it, so every page
(the Runs page above all) has something to show.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.serving.conftest import DEMO_END, ServerProcess, make_demo_store

PUSHED_AT = DEMO_END + timedelta(minutes=3)
SECOND_END = DEMO_END + timedelta(days=1)


class ConsoleProcess(ServerProcess):
    """`featurestore ui` in a subprocess on a free port of 127.0.0.1 (started, probed and
    stopped as `ServerProcess` does)."""

    def command(self) -> list[str]:
        """The command line of the console."""
        return [sys.executable, "-m", "featurestore", "ui", "--registry", str(self.registry),
                "--host", "127.0.0.1", "--port", str(self.port), *self.args]


def write_console_project(directory: Path) -> Path:
    """A demo project with history: materialized, pushed to, verified and materialized
    again with a later end; returns its registry file."""
    store = make_demo_store(directory, "local")
    try:
        store.push("transactions", [
            {"user_id": user, "event_ts": PUSHED_AT + timedelta(minutes=user),
             "amount": 12.5 * user, "merchant_category": category}
            for user, category in [(1, "grocery"), (2, "travel"), (3, None)]])
        store.verify(entities=20)
        store.materialize(end=SECOND_END)
    finally:
        store.close()
    return store.registry_path


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (no trailing slash) of a real `featurestore ui` serving a demo project
    with history; what the console prints goes to `console.log` beside the project."""
    directory = tmp_path_factory.mktemp("console")
    with pytest.MonkeyPatch.context() as patch:
        # The registry file alone decides where the stores are.
        for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY"):
            patch.delenv(name, raising=False)
        registry = write_console_project(directory / "demo")
    server = ConsoleProcess(registry, output=directory / "console.log")
    server.start()
    yield server.url
    server.stop()
