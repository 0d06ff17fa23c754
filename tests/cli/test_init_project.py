"""`featurestore init`: a new project that apply accepts at once."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.cli.init_project import project_name


def test_init_writes_a_project_that_applies_and_serves(tmp_path: Path) -> None:
    target = tmp_path / "my-features"
    result = CliRunner().invoke(main, ["init", str(target), "--events", "800", "--users", "20"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in target.iterdir()} == {"registry.yaml", "data", "README.md",
                                                 ".gitignore"}
    assert (target / "registry.yaml").read_text().startswith("project: my_features\n")
    readme = (target / "README.md").read_text()
    assert readme.startswith("# my_features\n") and "featurestore apply" in readme
    store = FeatureStore(target)
    applied = store.apply()
    assert applied.version == 1
    assert next(e.name for e in store.list("features", {"team": "risk"})) == (
        "user_txn:txn_count_1h")
    store.materialize(end="2024-02-01")
    answer = store.get_online_features(service="fraud_v1", entities={"user_id": [1]},
                                       request={"amount_now": [10.0]}, at="2024-02-01")
    assert list(answer) == ["user_id", "amount_sum_7d", "txn_count_1h", "amount_vs_mean"]


def test_init_never_overwrites_and_appends_to_an_existing_readme(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Mine\n")
    runner = CliRunner()
    first = runner.invoke(main, ["init", str(tmp_path), "--events", "100", "--users", "5",
                                 "--project", "fraud"])
    assert first.exit_code == 0, first.output
    readme = (tmp_path / "README.md").read_text()
    assert readme.startswith("# Mine\n\n## Features\n")
    again = runner.invoke(main, ["init", str(tmp_path)])
    assert again.exit_code == 1
    assert "registry.yaml already exists" in again.stderr
    assert (tmp_path / "README.md").read_text() == readme
    bad = runner.invoke(main, ["init", str(tmp_path / "x"), "--project", "1abc"])
    assert bad.exit_code == 1
    assert "--project '1abc' is not a valid name" in bad.stderr


def test_project_names_from_folder_names() -> None:
    assert project_name(Path("/a/my-project")) == "my_project"
    assert project_name(Path("/a/2024 models")) == "p_2024_models"
    assert project_name(Path("/a/class")) == "p_class"
