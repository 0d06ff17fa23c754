"""`featurestore audit`: pushes over HTTP (a real server), from the CLI and from the SDK,
each listed with how it came."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from click.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli import main
from tests.serving.conftest import ServerProcess
from tests.serving.test_limits import applied_project, push_rows


def audit(registry: Path, *options: str) -> tuple[int, str]:
    done = CliRunner().invoke(main, ["audit", "--registry", str(registry), *options])
    return done.exit_code, done.output


def test_pushes_by_http_cli_and_sdk_are_listed(tmp_path: Path) -> None:
    registry = applied_project(tmp_path / "demo")
    store = FeatureStore(registry)
    token = store.create_token("ingest", ["push"])
    assert audit(registry) == (0, "no pushes stored\n")
    server = ServerProcess(registry, args=["--auth"])
    server.start()
    try:
        pushed = httpx.post(f"{server.url}/push", json=push_rows(2), timeout=10.0,
                            headers={"Authorization": f"Bearer {token}"})
        refused = httpx.post(f"{server.url}/push", json=push_rows(1), timeout=10.0)
    finally:
        server.stop()
    assert pushed.status_code == 200 and refused.status_code == 401
    time.sleep(0.01)
    after_http = datetime.now(UTC)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps(row) for row in push_rows(3)["rows"]) + "\n")
    cli_push = CliRunner().invoke(main, ["push", "--registry", str(registry), "transactions",
                                         str(rows)])
    assert cli_push.exit_code == 0, cli_push.output
    store.push("transactions", push_rows(1)["rows"])
    store.close()

    status, listed = audit(registry, "--json")
    assert status == 0
    records = [json.loads(line) for line in listed.splitlines()]
    assert [(r["via"], r["rows"], r["source"], r["token"]) for r in records] == [
        ("http", 2, "transactions", "ingest"), ("cli", 3, "transactions", None),
        ("sdk", 1, "transactions", None)]
    assert records[0]["client"].startswith("127.0.0.1:")
    assert records[1]["client"] is None and records[2]["client"] is None
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)

    status, text = audit(registry)
    header, *lines = text.splitlines()
    assert status == 0 and header.split() == ["time", "source", "rows", "via", "token", "client"]
    assert [line.split()[1:5] for line in lines] == [
        ["transactions", "2", "http", "ingest"], ["transactions", "3", "cli", "-"],
        ["transactions", "1", "sdk", "-"]]

    status, since = audit(registry, "--since", after_http.isoformat(), "--json")
    assert status == 0 and [json.loads(line)["via"] for line in since.splitlines()] == [
        "cli", "sdk"]
    status, one_source = audit(registry, "--source", "transactions", "--json")
    assert status == 0 and one_source == listed


def test_bad_options_are_one_line(tmp_path: Path) -> None:
    registry = applied_project(tmp_path / "demo")
    status, output = audit(registry, "--source", "transaction")
    assert status == 1
    assert output == "error: unknown source 'transaction' (did you mean 'transactions'?)\n"
    status, output = audit(registry, "--since", "yesterday")
    assert status == 1 and output.startswith("error: 'since': expected an ISO-8601 timestamp")
