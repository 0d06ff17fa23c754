"""Skew verification: online and offline agree after a materialize, and drift is caught."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.errors import InputError
from featurestore.registry import parse_registry
from featurestore.serving.errors import NotMaterializedError, RequestError
from featurestore.serving.verify import DEFAULT_OFFSETS_US
from tests.projects import DEMO_TEXT
from tests.serving.conftest import DEMO_END, DEMO_USERS, make_demo_store

# user_txn's features in the demo registry (15)
FEATURE_COUNT = len(parse_registry(DEMO_TEXT).feature_views["user_txn"].features)


def test_online_equals_offline_after_materialize(demo_store: FeatureStore) -> None:
    report = demo_store.verify(entities=25)
    assert report.ok, report.render()
    assert report.entities == {"user_txn": 25}
    assert report.values == 25 * len(DEFAULT_OFFSETS_US) * FEATURE_COUNT
    assert report.render().endswith(f"online == offline for all {report.values:,} values")


def test_given_times_and_a_sample_larger_than_the_entities(demo_store: FeatureStore) -> None:
    times = [DEMO_END, (DEMO_END + timedelta(days=2, minutes=11)).isoformat()]
    report = demo_store.verify(entities=10_000, at=times)
    assert report.ok, report.render()
    entities = report.entities["user_txn"]
    assert 0 < entities <= DEMO_USERS
    assert report.values == entities * 2 * FEATURE_COUNT
    with pytest.raises(RequestError, match="before the materialization end"):
        demo_store.verify(at=[DEMO_END - timedelta(seconds=1)])


def test_a_drifted_state_is_reported(demo_store: FeatureStore) -> None:
    online = demo_store.online_store()
    # Give user 1 the state of user 2: the kind of skew verify exists to catch.
    states = online.read([("user_txn", (1,)), ("user_txn", (2,))]).states
    online.update("user_txn", (1,), lambda _: states[1])
    report = demo_store.verify(entities=DEMO_USERS)
    assert not report.ok
    assert {mismatch.entity for mismatch in report.mismatches} == {(1,)}
    lines = report.render().splitlines()
    assert lines[0] == "online states of registry version 1"
    line = lines[2]
    assert line.startswith(f"{len(report.mismatches)} of {report.values:,} values differ:")


def test_entities_pushed_after_the_end_are_left_out(demo_store: FeatureStore) -> None:
    demo_store.push("transactions", [{"user_id": 1, "event_ts": DEMO_END + timedelta(minutes=1),
                                      "amount": 5.0}])
    report = demo_store.verify(entities=DEMO_USERS)
    assert report.ok, report.render()
    assert report.skipped == {"user_txn": 1}
    assert "1 with events not yet materialized left out" in report.render()


def test_verify_needs_a_materialization(online_backend: object, tmp_path: Path) -> None:
    setting = online_backend.setting  # type: ignore[attr-defined]
    store = make_demo_store(tmp_path / "demo", setting, materialize=False)
    with pytest.raises(NotMaterializedError):
        store.verify()


def test_the_command_exits_non_zero_on_a_mismatch(demo_store: FeatureStore) -> None:
    registry = str(demo_store.registry_path)
    runner = CliRunner()
    passed = runner.invoke(main, ["verify", "--registry", registry, "--entities", "20",
                                  "--at", DEMO_END.isoformat(), "--at", "2024-02-03T00:00:00Z"])
    assert passed.exit_code == 0, passed.output
    assert passed.stdout == ("online states of registry version 1\n"
                             "user_txn: 20 entities at 2 times\n"
                             f"online == offline for all {20 * 2 * FEATURE_COUNT} values\n")
    online = demo_store.online_store()
    states = online.read([("user_txn", (3,)), ("user_txn", (4,))]).states
    online.update("user_txn", (3,), lambda _: states[1])
    failed = runner.invoke(main, ["verify", "--registry", registry, "--entities",
                                  str(DEMO_USERS)])
    assert failed.exit_code == 1
    assert "values differ:" in failed.stdout and "entity (3,)" in failed.stdout


def test_all_entities_are_checked_and_bad_counts_refused(demo_store: FeatureStore) -> None:
    report = demo_store.verify(entities="all")
    assert report.ok, report.render()
    assert report.entities == {"user_txn": DEMO_USERS}
    for wrong in (0, -3, "some", 2.5, True):
        with pytest.raises(InputError, match="expected a positive number or 'all'"):
            demo_store.verify(entities=wrong)  # type: ignore[arg-type]
    runner = CliRunner()
    registry = str(demo_store.registry_path)
    passed = runner.invoke(main, ["verify", "--registry", registry, "--entities", "all"])
    assert passed.exit_code == 0, passed.output
    assert f"user_txn: {DEMO_USERS} entities at {len(DEFAULT_OFFSETS_US)} times" in passed.stdout
    refused = runner.invoke(main, ["verify", "--registry", registry, "--entities", "none"])
    assert refused.exit_code == 2
    assert "expected a positive number or 'all', got 'none'" in refused.output
