"""Applied state in the offline DuckDB file: versions, no-ops, locks and concurrency."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from featurestore.errors import StoreLockedError
from featurestore.registry import parse_registry
from featurestore.registry.state import STATE_TABLE, AppliedState, registry_hash
from tests.projects import write_demo_project

REPO = Path(__file__).resolve().parents[2]
DEMO_TEXT = (REPO / "registry.yaml").read_text()
CHANGED_TEXT = DEMO_TEXT.replace("window: 7d}", "window: 10d}", 1)

# Holds a write connection on a DuckDB file (so the file is locked) for argv[2] seconds.
HOLD_LOCK = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.close()
"""

# Loads a registry, waits for the start signal, applies, and prints what happened.
APPLY = """
import json, sys, time
from pathlib import Path
from featurestore import FeatureStore
store = FeatureStore(sys.argv[1])
print("ready", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.002)
result = store.apply()
print(json.dumps({"version": result.version, "applied": result.applied}), flush=True)
"""


def python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def rows(database: Path) -> list[tuple[int, str]]:
    with duckdb.connect(str(database)) as connection:
        query = f"SELECT version, registry_hash FROM {STATE_TABLE} ORDER BY version"
        return connection.execute(query).fetchall()


def test_apply_records_versions_and_skips_unchanged(tmp_path: Path) -> None:
    state = AppliedState(tmp_path / "nested" / "offline.duckdb")
    assert state.latest() is None
    assert not state.database.exists(), "reading the state must not create the file"

    before = datetime.now(UTC)
    first = state.apply(parse_registry(DEMO_TEXT), DEMO_TEXT)
    assert (first.version, first.applied) == (1, True)
    assert len(first.plan.added) == 22

    again = state.apply(parse_registry(DEMO_TEXT), DEMO_TEXT)
    assert (again.version, again.applied) == (1, False)
    assert again.render() == "Nothing to change: version 1 is applied and current."

    changed = state.apply(parse_registry(CHANGED_TEXT), CHANGED_TEXT)
    assert (changed.version, changed.applied) == (2, True)
    assert changed.plan.stale_views == ("user_txn",)
    assert changed.render().endswith("Applied version 2.")
    assert changed.summary() == "Applied version 2: 0 added, 2 changed, 0 removed."

    latest = state.latest()
    assert latest is not None
    assert (latest.version, latest.registry_text) == (2, CHANGED_TEXT)
    assert latest.registry_hash == registry_hash(CHANGED_TEXT)
    assert latest.registry() == parse_registry(CHANGED_TEXT)
    assert latest.applied_at.tzinfo is UTC
    assert before <= latest.applied_at <= datetime.now(UTC)
    assert rows(state.database) == [(1, registry_hash(DEMO_TEXT)), (2, registry_hash(CHANGED_TEXT))]


def test_comment_only_edit_is_recorded_without_changes(tmp_path: Path) -> None:
    state = AppliedState(tmp_path / "offline.duckdb")
    state.apply(parse_registry(DEMO_TEXT), DEMO_TEXT)
    commented = "# fraud features\n" + DEMO_TEXT
    result = state.apply(parse_registry(commented), commented)
    assert (result.version, result.applied, result.plan.is_empty) == (2, True, True)
    assert result.render() == (
        "Applied version 2: no definition changed (the file's text did; it is recorded)."
    )


def test_apply_waits_for_a_lock_held_by_another_process(tmp_path: Path) -> None:
    database = tmp_path / "offline.duckdb"
    holder = python(HOLD_LOCK, str(database), "1.5")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        result = AppliedState(database, lock_timeout=30).apply(parse_registry(DEMO_TEXT), DEMO_TEXT)
        # The apply could only finish once the other process let go of the file.
        assert holder.poll() == 0
        assert (result.version, result.applied) == (1, True)
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_held_too_long_is_a_clear_error(tmp_path: Path) -> None:
    database = tmp_path / "offline.duckdb"
    holder = python(HOLD_LOCK, str(database), "60")
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        state = AppliedState(database, lock_timeout=0.5)
        with pytest.raises(StoreLockedError, match=r"is locked by another process \(waited 0.5s\)"):
            state.apply(parse_registry(DEMO_TEXT), DEMO_TEXT)
        assert 0.5 <= time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()


def race(registries: list[Path], go: Path, env: dict[str, str] | None = None) -> list[dict]:
    """Start one applying process per registry, release them together, collect results."""
    processes = [python(APPLY, str(path), str(go), env=env) for path in registries]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr
        go.touch()
        results = []
        for process in processes:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            results.append(json.loads(out))
        return results
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_processes_applying_at_once_leave_a_consistent_history(tmp_path: Path) -> None:
    # Two processes apply the same registry and a third a different one, all released
    # together onto one offline file. Whatever order the file lock gives them, every
    # apply succeeds, versions run 1..n without gaps, and a version is only recorded
    # when it differs from the one before it.
    texts = {"a": DEMO_TEXT, "b": DEMO_TEXT, "c": CHANGED_TEXT}
    for name, text in texts.items():
        write_demo_project(tmp_path / name, text, events=200, users=5)
    shared = tmp_path / "shared.duckdb"
    results = race(
        [tmp_path / name for name in texts],
        tmp_path / "go",
        env={"FEATURESTORE_OFFLINE": str(shared)},
    )
    recorded = rows(shared)
    applied_versions = sorted(r["version"] for r in results if r["applied"])
    assert [version for version, _ in recorded] == applied_versions
    assert applied_versions == list(range(1, len(applied_versions) + 1))
    assert 2 <= len(applied_versions) <= 3
    digests = [digest for _, digest in recorded]
    assert all(before != after for before, after in itertools.pairwise(digests))
    assert set(digests) == {registry_hash(DEMO_TEXT), registry_hash(CHANGED_TEXT)}
    for (name, text), result in zip(texts.items(), results, strict=True):
        # Each process's reported version holds exactly the text it applied.
        assert dict(recorded)[result["version"]] == registry_hash(text), name


def test_an_empty_registry_can_be_applied(tmp_path: Path) -> None:
    state = AppliedState(tmp_path / "offline.duckdb")
    text = "project: empty\n"
    result = state.apply(parse_registry(text), text)
    assert result.plan.render() == "Nothing applied yet, and the registry defines nothing."
    assert result.render() == "Applied version 1: the registry defines nothing yet."
    assert state.apply(parse_registry(text), text).applied is False
