"""The console mounted at /ui by `featurestore serve --ui`, beside the online API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from featurestore.serving.server import create_app
from tests.console.conftest import write_console_project
from tests.console.links import crawl
from tests.serving.conftest import ServerProcess, make_demo_store


@pytest.fixture(scope="module")
def served_with_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `featurestore serve --ui` on a demo project with history."""
    directory = tmp_path_factory.mktemp("served-ui")
    registry = write_console_project(directory / "demo")
    server = ServerProcess(registry, output=directory / "serve.log", args=["--ui"])
    server.start()
    yield server.url
    server.stop()


def test_every_page_under_ui_links_within_ui(served_with_ui: str) -> None:
    seen = crawl(served_with_ui, "/ui/")
    assert {"/ui/registry", "/ui/lineage", "/ui/runs", "/ui/features/user_txn/amount_sum_7d",
            "/ui/assets/console.css"} <= seen
    assert all(path.startswith("/ui/") for path in seen), seen


def test_the_api_still_answers_beside_the_console(served_with_ui: str) -> None:
    assert httpx.get(f"{served_with_ui}/health", timeout=10).status_code == 200
    response = httpx.get(f"{served_with_ui}/ui", timeout=10, follow_redirects=True)
    assert response.status_code == 200 and "fraud_demo" in response.text
    assert httpx.get(f"{served_with_ui}/ui/nope", timeout=10).status_code == 404


def test_the_console_is_off_unless_asked(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local", materialize=False)
    with TestClient(create_app(store, owns_store=True)) as client:
        response = client.get("/ui/")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/json")


def test_with_auth_the_console_needs_a_read_token(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    reader = store.create_token("reader", ["read"])
    pusher = store.create_token("pusher", ["push"])
    with TestClient(create_app(store, owns_store=True, auth=True, ui=True)) as client:
        assert client.get("/ui/").status_code == 401
        assert client.get("/ui/assets/console.css").status_code == 401
        assert client.get("/ui/", headers={"Authorization": f"Bearer {pusher}"}
                          ).status_code == 403
        page = client.get("/ui/registry", headers={"Authorization": f"Bearer {reader}"})
        assert page.status_code == 200 and "user_txn" in page.text
