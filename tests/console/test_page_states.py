"""What the console says in the states a project passes through: failed expectations,
stale views, an unreachable online store, statistics not stored."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.console import create_console_app
from tests.projects import DEMO_TEXT, write_demo_project
from tests.serving.conftest import DEMO_END, make_demo_store


def test_failed_expectations_and_a_stale_source_are_warnings(tmp_path: Path) -> None:
    text = DEMO_TEXT.replace(
        "    timestamp: event_ts               # event-time column\n",
        "    timestamp: event_ts               # event-time column\n"
        "    expect:\n      amount: {range: [0, 10], on_fail: warn}\n"
        "    freshness: {max_age: 1h}\n", 1)
    write_demo_project(tmp_path / "demo", text, events=500, users=10, days=5)
    store = FeatureStore(tmp_path / "demo")
    store.apply()
    store.materialize(end=DEMO_END)
    store.close()
    with TestClient(create_console_app(tmp_path / "demo")) as client:
        page = client.get("/").text
    assert re.search(r"expectation range on transactions\.amount failed \([\d,]+ rows, "
                     r"on_fail warn\)", page), page
    assert "feature view user_txn is stale: materialized up to 2024-01-31T00:00:00" in page
    assert "freshness max_age 1h" in page
    assert 'badge bad">stale' in page


def test_a_changed_definition_makes_the_view_stale(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    registry = store.registry_path
    store.close()
    registry.write_text(registry.read_text().replace("window: 1h}", "window: 2h}", 1))
    with TestClient(create_console_app(registry)) as client:
        assert "has changes that are not applied" in client.get("/").text
        FeatureStore(registry).apply()
        page = client.get("/").text
    assert "has changes that are not applied" not in page
    assert ("feature view user_txn is stale: its definition changed since the last "
            "materialization") in page
    assert re.search(r"applied version</dt><dd>2\b", page)
    assert re.search(r"served version</dt><dd>1\b", page)


def test_the_online_password_is_masked_and_an_unreachable_store_is_said(
        tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local", materialize=False)
    registry = store.registry_path
    store.close()
    registry.write_text(registry.read_text().replace(
        "online: local ", "online: redis://:hunter2@127.0.0.1:1/0 ", 1))
    with TestClient(create_console_app(registry)) as client:
        response = client.get("/")
    assert response.status_code == 200
    assert "hunter2" not in response.text
    assert "redis://:***@127.0.0.1:1/0" in response.text
    assert "cannot read the online store" in response.text


def test_a_view_without_stored_statistics_is_profiled_on_demand(tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", "local")
    offline = store.offline_path
    store.close()
    with duckdb.connect(str(offline)) as con:
        con.execute("DELETE FROM featurestore_view_statistics")
    with TestClient(create_console_app(tmp_path / "demo")) as client:
        page = client.get("/features/user_txn/amount_sum_7d").text
    assert "profiled now from the view" in page
    assert "chart-histogram" in page
    assert "over materializations" not in page
