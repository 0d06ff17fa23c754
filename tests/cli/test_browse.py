"""`featurestore list`, `describe` and `--version` through click and a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from featurestore.cli import main
from tests.projects import DEMO_TEXT, write_demo_project

TAGGED = DEMO_TEXT.replace(
    "      txn_count_1h:     {agg: count, window: 1h}",
    "      txn_count_1h:     {agg: count, window: 1h, tags: {tier: gold}, owner: ana}")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_project(tmp_path_factory.mktemp("browse"), TAGGED, events=300, users=5)


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_list_features_with_a_tag_filter(project: Path) -> None:
    listed = run("list", "features", "--registry", str(project), "--tag", "tier=gold")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "WHAT", "TAGS", "OWNER"]
    assert len(lines) == 2
    assert lines[1].split()[0] == "user_txn:txn_count_1h"
    assert lines[1].endswith("team=risk,tier=gold  ana")
    risk = run("list", "features", "--registry", str(project), "--tag", "team=risk")
    assert len(risk.stdout.splitlines()) == 1 + 15
    none = run("list", "features", "--registry", str(project), "--tag", "team=nobody")
    assert none.stdout == "no features with tags team=nobody\n"


def test_list_json_lines_and_every_kind(project: Path) -> None:
    for kind, first in [("entities", "user"), ("sources", "transactions"),
                        ("views", "user_txn"), ("services", "fraud_v1")]:
        result = run("list", kind, "--registry", str(project), "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.splitlines()[0])["name"] == first
    wrong = run("list", "servics", "--registry", str(project))
    assert wrong.exit_code == 2
    assert "'servics' is not one of" in wrong.stderr


def test_describe_text_json_and_unknown_names(project: Path) -> None:
    text = run("describe", "user_txn:amount_sum_7d", "--registry", str(project))
    assert text.exit_code == 0, text.output
    assert text.stdout.startswith("feature user_txn:amount_sum_7d\n  aggregation")
    assert "window 7d, hop 1h: events in [floor(t, 1h) - 7d, t)" in text.stdout
    as_json = json.loads(run("describe", "fraud_v1", "--registry", str(project),
                             "--json").stdout)
    assert as_json["kind"] == "service"
    assert as_json["fields"]["features"] == "4"
    unknown = run("describe", "amount_sum", "--registry", str(project))
    assert unknown.exit_code == 1
    assert unknown.stderr == ("error: nothing is named 'amount_sum' in the registry "
                              "(did you mean 'amount_sum_7d'?)\n")


def test_version_from_the_command_and_the_module() -> None:
    expected = f"featurestore {version('featurestore')}\n"
    assert run("--version").stdout == expected
    module = subprocess.run([sys.executable, "-m", "featurestore", "--version"],
                            capture_output=True, text=True, check=True)
    assert module.stdout == expected
