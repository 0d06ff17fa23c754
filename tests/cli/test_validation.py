"""`featurestore validate` (exit codes for CI) and `featurestore quarantine list|show`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.validation.records import VALIDATIONS_TABLE
from tests.validation.projects import BAD_ROWS, END, GOOD_ROWS, write_project

EXPECT = ("      amount: {range: [0, 100000], on_fail: quarantine}\n"
          "      merchant_category: {values: [grocery, travel, electronics]}\n")


@pytest.fixture(autouse=True)
def _no_store_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)


def run(project: Path, *args: str) -> tuple[int, str]:
    done = CliRunner().invoke(main, [*args, "--registry", str(project)])
    return done.exit_code, done.output


def project_with(tmp_path: Path, rows: list) -> Path:
    project = write_project(tmp_path / "p", rows, EXPECT)
    FeatureStore(project).apply()
    return project


def test_validate_passes_on_clean_data(tmp_path: Path) -> None:
    code, output = run(project_with(tmp_path, GOOD_ROWS), "validate")
    assert code == 0
    assert output.splitlines() == [
        "ok     source 'transactions' column 'amount': range [0, 100000]: 0 of 5 rows break "
        "it (on_fail: quarantine)",
        "ok     source 'transactions' column 'merchant_category': values [grocery, travel, "
        "electronics]: 0 of 5 rows break it (on_fail: warn)",
    ]


def test_a_broken_warn_rule_exits_0_unless_strict(tmp_path: Path) -> None:
    project = project_with(tmp_path, [*GOOD_ROWS, BAD_ROWS["values"]])
    code, output = run(project, "validate")
    assert code == 0
    assert ("BROKEN source 'transactions' column 'merchant_category': values [grocery, "
            "travel, electronics]: 1 of 6 rows break it (on_fail: warn)") in output
    assert run(project, "validate", "--strict")[0] == 1


def test_a_broken_quarantine_rule_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    project = project_with(tmp_path, [*GOOD_ROWS, BAD_ROWS["range"]])
    FeatureStore(project).materialize(end=END)
    database = project / "checks.duckdb"
    with duckdb.connect(str(database), read_only=True) as con:
        recorded = con.execute(f"SELECT count(*) FROM {VALIDATIONS_TABLE}").fetchall()
    code, output = run(project, "validate", "--json")
    assert code == 1
    verdicts = [json.loads(line) for line in output.splitlines()]
    assert [(v["column"], v["rule"], v["checked"], v["breaking"], v["broken"])
            for v in verdicts] == [("amount", "range", 6, 1, True),
                                   ("merchant_category", "values", 6, 0, False)]
    with duckdb.connect(str(database), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {VALIDATIONS_TABLE}").fetchall() == recorded


def test_validate_one_source_and_an_unknown_one(tmp_path: Path) -> None:
    project = project_with(tmp_path, GOOD_ROWS)
    assert run(project, "validate", "--source", "transactions")[0] == 0
    code, output = run(project, "validate", "--source", "transaction")
    assert code == 1
    assert output == "error: unknown source 'transaction' (did you mean 'transactions'?)\n"


def test_quarantine_list_and_show(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", [*GOOD_ROWS, BAD_ROWS["range"], BAD_ROWS["values"]],
                            EXPECT.replace("electronics]}", "electronics], on_fail: quarantine}"))
    assert run(project, "quarantine", "list") == (0, "no quarantined rows\n")
    store = FeatureStore(project)
    store.apply()
    store.materialize(end=END)
    code, output = run(project, "quarantine", "list")
    assert code == 0
    lines = output.splitlines()
    assert lines[0].split() == ["source", "column", "rule", "rows", "newest", "run"]
    assert lines[1].split()[:6] == ["transactions", "amount", "range", "[0,", "100000]", "1"]
    assert lines[2].split()[:3] == ["transactions", "merchant_category", "values"]
    listed = [json.loads(line) for line in run(project, "quarantine", "list", "--json")[1]
              .splitlines()]
    assert [(g["column"], g["rule"], g["rows"]) for g in listed] == [
        ("amount", "range", 1), ("merchant_category", "values", 1)]
    shown = [json.loads(line) for line in
             run(project, "quarantine", "show", "transactions", "--json")[1].splitlines()]
    assert [(row["column"], row["value"], row["row"]["code"]) for row in shown] == [
        ("amount", "250000.0", "A-3"), ("merchant_category", "toys", "C-2")]
    only = run(project, "quarantine", "show", "transactions", "--rule", "values", "--json")[1]
    assert [json.loads(line)["rule"] for line in only.splitlines()] == ["values"]
    column = run(project, "quarantine", "show", "transactions", "--column", "amount")[1]
    assert "250000.0" in column and "toys" not in column
    assert len(run(project, "quarantine", "show", "transactions", "--limit", "1",
                   "--json")[1].splitlines()) == 1


def test_quarantine_of_an_unknown_source_is_an_error(tmp_path: Path) -> None:
    project = project_with(tmp_path, GOOD_ROWS)
    assert run(project, "quarantine", "show", "transaction") == (
        1, "error: unknown source 'transaction' (did you mean 'transactions'?)\n")
    assert run(project, "quarantine", "list", "--source", "nope") == (
        1, "error: unknown source 'nope'\n")
    assert run(project, "quarantine", "show", "transactions") == (
        0, "no quarantined rows of 'transactions'\n")
