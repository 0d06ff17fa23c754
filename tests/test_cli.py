"""The command line: plan, apply, generate and demo, and how errors look."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from featurestore.cli import describe_server, main
from tests.projects import write_demo_project

REPO = Path(__file__).resolve().parents[1]
BROKEN = REPO / "tests" / "registry" / "broken"
DEMO_TEXT = (REPO / "registry.yaml").read_text()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    write_demo_project(tmp_path, events=500, users=10)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def test_plan_then_apply_then_nothing_to_change(project: Path) -> None:
    planned = run("plan")
    assert planned.exit_code == 0, planned.output
    assert planned.stdout.startswith("Plan (nothing applied yet):\n  + entity user\n")
    applied = run("apply")
    assert applied.exit_code == 0
    assert applied.stdout.endswith("22 to add, 0 to change, 0 to remove.\nApplied version 1.\n")
    assert run("apply").stdout == "Nothing to change: version 1 is applied and current.\n"
    assert run("plan").stdout == "No changes: the registry matches applied version 1.\n"
    assert (project / "data" / "offline.duckdb").exists()


def test_registry_option_environment_and_folder(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert run("plan").exit_code == 2  # no registry.yaml here
    assert run("plan", "--registry", str(project)).exit_code == 0
    assert run("plan", "--registry", str(project / "registry.yaml")).exit_code == 0
    assert run("plan", env={"FEATURESTORE_REGISTRY": str(project)}).exit_code == 0


def test_missing_registry_is_one_line_and_exit_2(project: Path) -> None:
    result = run("apply", "--registry", "nowhere.yaml")
    assert result.exit_code == 2
    assert result.stderr == "nowhere.yaml: no such file\n"
    assert result.stdout == ""


@pytest.mark.parametrize("name", sorted(path.name for path in BROKEN.glob("*.yaml")))
def test_apply_on_a_broken_registry_prints_the_located_error(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FEATURESTORE_REGISTRY", raising=False)
    monkeypatch.setenv("FEATURESTORE_OFFLINE", str(tmp_path / "offline.duckdb"))
    monkeypatch.chdir(BROKEN)
    result = run("apply", "--registry", name)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{name}:")
    assert "Traceback" not in result.output
    assert not (tmp_path / "offline.duckdb").exists(), "nothing is applied from an invalid file"


def test_several_problems_print_one_line_each(project: Path) -> None:
    text = DEMO_TEXT.replace("agg: mean", "agg: avg").replace("entity: user", "entity: usr")
    (project / "registry.yaml").write_text(text)
    result = run("plan")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "registry.yaml:15:13: feature_views.user_txn.entity: "
        "unknown entity 'usr' (did you mean 'user'?)",
        "registry.yaml:19:31: feature_views.user_txn.features.amount_mean_30d.agg: "
        "unknown aggregation 'avg': expected one of count, sum, mean, min, max, std, "
        "first, last, decayed_sum, decayed_count, last_n, first_n, top_k, "
        "approx_count_distinct, approx_percentile (did you mean 'mean'?)",
    ]


def test_generate_to_a_file_and_to_the_registry_source(project: Path) -> None:
    result = run(
        "generate", "--events", "3000", "--users", "20", "--days", "3", "--out", "x.parquet"
    )
    assert result.exit_code == 0, result.output
    assert "wrote 3,000 events to x.parquet (2024-01-01 to 2024-01-04" in result.stdout
    assert pq.read_metadata(project / "x.parquet").num_rows == 3000
    assert run("generate", "--events", "1000", "--users", "5").exit_code == 0
    assert pq.read_metadata(project / "data" / "transactions.parquet").num_rows == 1000


def test_generate_needs_a_place_to_write(project: Path) -> None:
    (project / "registry.yaml").write_text(
        DEMO_TEXT.replace("path: data/transactions.parquet", "table: txns")
    )
    result = run("generate")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: the registry has no source 'transactions' with a 'path' to write the sample "
        "data to; give --out\n"
    )


def test_bad_option_values_are_usage_errors(project: Path) -> None:
    result = run("generate", "--events", "0")
    assert result.exit_code == 2
    assert "Invalid value for '--events'" in result.stderr


def test_demo_runs_the_whole_path_and_applies_once(project: Path) -> None:
    (project / "data" / "transactions.parquet").unlink()
    first = run("demo", "--events", "4000", "--users", "50")
    assert first.exit_code == 0, first.output
    lines = first.stdout.splitlines()
    assert lines[0] == "[1/9] Sample data: data/transactions.parquet"
    steps = [line.split("]")[0] + "]" for line in lines if line.startswith("[")]
    assert steps == [f"[{step}/9]" for step in range(1, 10)]
    assert "[2/9] Plan for registry.yaml:" in lines
    assert "      Applied version 1: 22 added, 0 changed, 0 removed." in lines
    assert any(line.startswith("      online == offline for all ") for line in lines)
    assert lines[-1].endswith("of the same user and time: equal, value for value")
    assert pq.read_metadata(project / "data" / "transactions.parquet").num_rows == 4000
    second = run("demo")
    assert second.exit_code == 0, second.output
    assert "      already there; delete it to generate it again." in second.stdout
    assert "      Nothing to change: version 1 is applied and current." in second.stdout


def test_times_are_iso_8601_and_anything_else_is_one_line_and_exit_1(project: Path) -> None:
    assert run("apply").exit_code == 0
    expected = ("error: 'end': expected an ISO-8601 timestamp such as '2024-03-31T12:00:00Z' "
                "(naive means UTC) or a datetime, got '05/04/2024'\n")
    refused = run("materialize", "--end", "05/04/2024")  # May 4 or April 5?
    assert (refused.exit_code, refused.stderr) == (1, expected)
    # A date alone is midnight UTC, as in the README.
    assert run("materialize", "--end", "2024-02-01").exit_code == 0
    for command in (("verify", "--at", "today"), ("verify", "--at", "1706745600000000"),
                    ("snapshot", "--at", "05/04/2024", "--out", "scores.parquet")):
        result = run(*command)
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr.startswith("error: 'at': expected an ISO-8601 timestamp"), command
        assert len(result.stderr.splitlines()) == 1
    assert not (project / "scores.parquet").exists()
    verified = run("verify", "--at", "2024-02-01", "--at", "2024-02-01T06:30:00+02:00")
    assert verified.exit_code == 0, verified.output


def test_the_serve_line_names_the_online_store_without_its_password() -> None:
    assert describe_server("fraud_demo", "redis://app:secret@cache:6379/0", "0.0.0.0", 80) == (
        "serving fraud_demo from the redis://app:***@cache:6379/0 online store on "
        "http://0.0.0.0:80 (OpenAPI at /docs)")


def test_python_dash_m_runs_the_same_cli(project: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "featurestore", "apply"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=project,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("Plan (nothing applied yet):")
    assert completed.stdout.endswith("Applied version 1.\n")
    assert (project / "data" / "offline.duckdb").exists()


def readme_block(language: str, index: int = 0) -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = text.split(f"```{language}\n")[1:]
    return blocks[index].split("```")[0].splitlines()


def test_readme_commands_exist_with_their_options() -> None:
    text = (REPO / "README.md").read_text()
    lines = [line for block in text.split("```sh\n")[1:]
             for line in block.split("```")[0].splitlines()]
    commands = [part.split("#")[0].strip() for line in lines for part in line.split("&&")]
    commands = [command for command in commands if command.startswith("featurestore ")]
    assert len(commands) >= 15
    for command in commands:
        # Parsing rejects unknown commands and options; --help stops before any work.
        result = run(*shlex.split(command)[1:], "--help")
        assert result.exit_code == 0, (command, result.output)


def test_readme_error_example_is_what_the_cli_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    command, message = readme_block("text")
    monkeypatch.chdir(REPO)
    result = run(*command.removeprefix("$ featurestore ").split())
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_every_command_and_option_has_help_text() -> None:
    missing = [f"{name} {param.opts[0]}" for name, command in main.commands.items()
               for param in command.params
               if isinstance(param, click.Option) and not param.hidden and not param.help]
    assert missing == []
    assert [name for name, command in main.commands.items() if not command.help] == []
