"""A running server follows applies and materializations without a restart.

The server answers from the last consistent pair of registry version and online states:
an apply that changes feature views waits for its materialization (the server keeps
the old pair and reports `degraded`), one that changes only request views is served at
once, and a materialization switches registry, kernels and states together.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.serving.server import create_app
from tests.projects import write_demo_project
from tests.serving.conftest import DEMO_END, demo_text

AT = (DEMO_END + timedelta(days=3)).isoformat()
POLL_S = 0.05


def lookup(client: TestClient, *features: str) -> tuple[int, dict]:
    response = client.post("/online-features", json={
        "features": list(features), "entities": {"user_id": [1, 2]},
        "request": {"amount_now": [5.0, 50.0]} if any("txn_context" in f for f in features)
        else None, "at": AT})
    return response.status_code, response.json()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not switch in time"
        time.sleep(POLL_S)


@pytest.fixture
def project(online_backend: object, tmp_path: Path) -> Path:
    directory = write_demo_project(tmp_path / "demo", demo_text(online_backend.setting),  # type: ignore[attr-defined]
                                   events=3_000, users=60, days=30)
    store = FeatureStore(directory)
    store.apply()
    store.materialize(end=DEMO_END)
    store.close()
    return directory


@pytest.fixture
def client(project: Path) -> Iterator[TestClient]:
    store = FeatureStore(project)
    with TestClient(create_app(store, poll_seconds=POLL_S)) as test_client:
        yield test_client
    store.close()


def edit(project: Path, old: str, new: str) -> FeatureStore:
    """Edit registry.yaml and apply it (as another process would)."""
    path = project / "registry.yaml"
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    store = FeatureStore(project)
    store.apply()
    return store


def health(client: TestClient) -> dict:
    answer = client.get("/health")
    assert answer.status_code == 200
    return answer.json()


def test_a_rename_is_served_after_its_materialization(client: TestClient, project: Path) -> None:
    assert lookup(client, "user_txn:amount_max_1d")[0] == 200
    store = edit(project, "amount_max_1d:", "amount_top_1d:")
    # Applied but not materialized: the old pair keeps answering, health says why.
    wait_for(lambda: health(client)["applied_version"] == 2)
    answer = health(client)
    assert answer["status"] == "degraded" and answer["served_version"] == 1
    assert answer["pending"] == ("applied version 2 is not materialized (feature views "
                                 "user_txn); serving version 1")
    assert lookup(client, "user_txn:amount_max_1d")[0] == 200
    assert lookup(client, "user_txn:amount_top_1d")[1]["error"]["code"] == "unknown_feature"
    old = lookup(client, "user_txn:amount_max_1d")[1]["features"]["amount_max_1d"]
    store.materialize(end=DEMO_END)
    # A lookup that meets the new states before the poll noticed switches at once.
    status, answer = lookup(client, "user_txn:amount_sum_7d")
    assert status == 200 and health(client)["served_version"] == 2
    status, answer = lookup(client, "user_txn:amount_top_1d")
    assert status == 200 and answer["features"]["amount_top_1d"] == old
    assert lookup(client, "user_txn:amount_max_1d")[1]["error"]["code"] == "unknown_feature"
    assert health(client)["status"] == "ok"
    assert health(client)["served_version"] == 2
    assert client.get("/registry").json()["served_version"] == 2
    store.close()


def test_a_request_view_edit_is_served_without_a_materialization(client: TestClient,
                                                                   project: Path) -> None:
    before = lookup(client, "txn_context:log_amount_now")[1]["features"]["log_amount_now"]
    store = edit(project, 'log_amount_now: "log1p(amount_now)"',
                 'log_amount_now: "log1p(amount_now) * 2"\n      amount_now_twice: '
                 '"amount_now * 2"')
    assert store.plan().stale_views == () and store.plan().is_empty
    wait_for(lambda: health(client)["served_version"] == 2)
    assert health(client)["status"] == "ok"
    status, answer = lookup(client, "txn_context:log_amount_now", "txn_context:amount_now_twice")
    assert status == 200
    assert answer["features"]["log_amount_now"] == [2 * value for value in before]
    assert answer["features"]["amount_now_twice"] == [10.0, 100.0]
    # The states were not touched: the SDK of the new registry reads them as they are.
    assert store.get_online_features(features=["user_txn:txn_count_1h"],
                                     entities={"user_id": [1]}, at=AT)["txn_count_1h"] == [0]
    store.close()


def test_a_new_feature_waits_and_then_appears(client: TestClient, project: Path) -> None:
    store = edit(project, "      last_category:",
                 "      amount_min_7d:    {agg: min, expr: amount, window: 7d}\n"
                 "      last_category:")
    assert store.plan().is_empty
    wait_for(lambda: health(client)["status"] == "degraded")
    assert lookup(client, "user_txn:amount_sum_7d")[0] == 200
    store.materialize(end=DEMO_END + timedelta(hours=1))
    wait_for(lambda: health(client)["status"] == "ok")
    status, answer = lookup(client, "user_txn:amount_min_7d")
    assert status == 200
    expected = store.get_online_features(features=["user_txn:amount_min_7d"],
                                         entities={"user_id": [1, 2]}, at=AT)
    assert answer["features"] == expected
    views = health(client)["views"]
    assert views["user_txn"]["materialized_until"] == (DEMO_END + timedelta(hours=1)).isoformat()
    store.close()
