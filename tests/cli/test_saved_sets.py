"""`featurestore training-set --name` and `--reproduce`, and `list training-sets`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from featurestore.cli import main
from tests.offline.test_saved_sets import SPINE, rewrite_one_amount
from tests.projects import DEMO_TEXT, write_demo_project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    folder = write_demo_project(tmp_path / "project", events=500, users=10)
    SPINE.to_parquet(folder / "spine.parquet")
    monkeypatch.chdir(folder)
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def save(*extra: str) -> Result:
    return run("training-set", "--spine", "spine.parquet", "--service", "fraud_v1",
               "--name", "fraud_jan", *extra)


def test_save_list_and_reproduce(project: Path) -> None:
    assert run("apply").exit_code == 0
    saved = save("--out", "copy.parquet")
    assert saved.exit_code == 0, saved.output
    stored = project / "data" / "training-sets" / "fraud_jan" / "data.parquet"
    digest = hashlib.sha256(stored.read_bytes()).hexdigest()
    assert saved.stdout.splitlines()[0].startswith(
        f"saved training set fraud_jan (4 rows, registry version 1, sha256 {digest}) in ")
    # A Parquet --out holds the stored bytes.
    assert (project / "copy.parquet").read_bytes() == stored.read_bytes()

    listed = run("list", "training-sets")
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "KIND", "WHAT"]
    assert row.split()[:4] == ["fraud_jan", "training", "set", "4"]
    assert json.loads(run("list", "training-sets", "--json").stdout)["name"] == "fraud_jan"

    reproduced = run("training-set", "--reproduce", "fraud_jan")
    assert reproduced.exit_code == 0, reproduced.output
    assert reproduced.stdout == (f"training set fraud_jan: byte for byte the same "
                                 f"(sha256 {digest})\n")


def test_save_without_out_and_to_csv(project: Path) -> None:
    run("apply")
    assert save().exit_code == 0
    assert not (project / "training.csv").exists()
    again = run("training-set", "--spine", "spine.parquet", "--service", "fraud_v1",
                "--name", "as_csv", "--out", "training.csv")
    assert again.exit_code == 0, again.output
    assert len(pd.read_csv(project / "training.csv")) == 4


def test_reproduce_exits_1_naming_the_rewritten_file(project: Path) -> None:
    run("apply")
    assert save().exit_code == 0
    rewrite_one_amount(project / "data" / "transactions.parquet")
    reproduced = run("training-set", "--reproduce", "fraud_jan")
    assert reproduced.exit_code == 1
    lines = reproduced.stdout.splitlines()
    assert lines[0].startswith("training set fraud_jan: not reproduced: sha256 ")
    assert lines[1].startswith("  source transactions: file changed: data/transactions.parquet")


def test_reproduce_names_a_pushed_segment(project: Path) -> None:
    run("apply")
    assert save().exit_code == 0
    (project / "late.jsonl").write_text(json.dumps({
        "user_id": 1, "event_ts": "2024-01-19T00:00:00Z", "amount": 77.0,
        "merchant_category": "grocery"}) + "\n")
    pushed = run("push", "transactions", "late.jsonl")
    assert pushed.exit_code == 0, pushed.output
    reproduced = run("training-set", "--reproduce", "fraud_jan")
    assert reproduced.exit_code == 1
    [segment] = (project / "data" / "pushed" / "transactions").glob("segment-*.parquet")
    assert (f"  source transactions: pushed segment added: {segment.relative_to(project)}"
            in reproduced.stdout.splitlines())


def test_an_existing_name_is_refused_unless_overwritten(project: Path) -> None:
    run("apply")
    assert save().exit_code == 0
    refused = save()
    assert refused.exit_code == 1
    assert "a training set named 'fraud_jan' already exists" in refused.stderr
    assert "--overwrite" in refused.stderr
    assert save("--overwrite").exit_code == 0


def test_an_unapplied_registry_is_refused(project: Path) -> None:
    refused = save()
    assert refused.exit_code == 1
    assert "run `featurestore apply` first" in refused.stderr
    run("apply")
    (project / "registry.yaml").write_text(DEMO_TEXT + "# edited\n")
    assert "run `featurestore apply` first" in save().stderr


def test_argument_mistakes(project: Path) -> None:
    missing_out = run("training-set", "--spine", "spine.parquet", "--service", "fraud_v1")
    assert missing_out.exit_code == 2
    assert "Missing option '--out' (optional only with --name)" in missing_out.stderr
    both = run("training-set", "--reproduce", "x", "--spine", "spine.parquet")
    assert both.exit_code == 2
    assert "--reproduce takes no --spine" in both.stderr
    unknown = run("training-set", "--reproduce", "nothing")
    assert unknown.exit_code == 1
    assert "no saved training set named 'nothing'" in unknown.stderr
