"""FeatureStore facade: locations, environment overrides, plan and apply."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from featurestore import FeatureStore, FeatureStoreError, InputError, RegistryError
from featurestore.registry.plan import Kind
from tests.projects import write_demo_project

REPO = Path(__file__).resolve().parents[1]
DEMO_TEXT = (REPO / "registry.yaml").read_text()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FEATURESTORE_OFFLINE", raising=False)
    monkeypatch.delenv("FEATURESTORE_ONLINE", raising=False)
    return write_demo_project(tmp_path, events=500, users=10)


def test_locations_follow_the_registry_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.parent)
    store = FeatureStore(Path(project.name) / "registry.yaml")
    assert store.registry_path == project / "registry.yaml"
    assert store.base_dir == project
    assert store.offline_path == project / "data" / "offline.duckdb"
    assert store.online == "local"
    assert store.registry.project == "fraud_demo"
    assert store.registry_text == DEMO_TEXT


def test_a_folder_works_and_the_default_offline_file_is_named_by_project(project: Path) -> None:
    store_section = ("store:", "  offline:", "  online:")
    lines = [line for line in DEMO_TEXT.splitlines() if not line.startswith(store_section)]
    text = "\n".join(lines) + "\n"
    (project / "registry.yaml").write_text(text)
    store = FeatureStore(project)
    assert store.registry.store.offline is None
    assert store.offline_path == project / "fraud_demo.duckdb"


def test_environment_overrides_the_store_section(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("FEATURESTORE_OFFLINE", "state.duckdb")
    monkeypatch.setenv("FEATURESTORE_ONLINE", "redis://127.0.0.1:1/0")
    store = FeatureStore(project)
    # A relative path from the environment is relative to where the command runs.
    assert store.offline_path == elsewhere / "state.duckdb"
    assert store.online == "redis://127.0.0.1:1/0"


def test_bad_online_override_is_an_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURESTORE_ONLINE", "memcached://x")
    with pytest.raises(FeatureStoreError, match="FEATURESTORE_ONLINE must be 'local', a redis"):
        FeatureStore(project)


def test_plan_apply_and_no_op(project: Path) -> None:
    store = FeatureStore(project)
    assert store.applied() is None
    assert store.plan().applied_version is None
    first = store.apply()
    assert (first.version, first.applied) == (1, True)
    assert store.plan().is_empty
    assert store.apply().applied is False
    applied = store.applied()
    assert applied is not None and applied.registry_text == DEMO_TEXT


def test_edits_show_in_a_new_store(project: Path) -> None:
    FeatureStore(project).apply()
    path = project / "registry.yaml"
    path.write_text(DEMO_TEXT.replace("features: [user_txn:amount_sum_7d,",
                                     "features: [user_txn:amount_max_1d, user_txn:amount_sum_7d,"))
    plan = FeatureStore(project).plan()
    assert [(c.kind, c.name) for c in plan.changes] == [(Kind.SERVICE, "fraud_v1")]
    assert FeatureStore(project).apply().version == 2


def test_invalid_registry_applies_nothing(project: Path) -> None:
    (project / "registry.yaml").write_text(DEMO_TEXT.replace("agg: mean", "agg: avg"))
    with pytest.raises(RegistryError, match="unknown aggregation 'avg'"):
        FeatureStore(project)
    assert not (project / "data" / "offline.duckdb").exists()


def test_readme_python_example_runs(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (REPO / "README.md").read_text()
    code = readme.split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(project)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("Plan (nothing applied yet):")
    assert "Applied version 1: 22 added, 0 changed, 0 removed.\n" in printed
    assert "online == offline" in printed


def test_relative_paths_in_a_query_source_mean_the_registry_folder(
    project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = "path: data/transactions.parquet"
    assert DEMO_TEXT.count(old) == 1
    (project / "registry.yaml").write_text(DEMO_TEXT.replace(
        old, "query: \"SELECT * FROM read_parquet('data/transactions.parquet')\""))
    # Started from another folder, as a server or a scheduled job may be.
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    store = FeatureStore(project)
    assert store.apply().applied
    end = "2024-01-31"
    users, amounts = [1, 2, 3], [10.0, 250.0, None]
    spine = pd.DataFrame({"user_id": users, "event_ts": pd.to_datetime([end] * 3, utc=True),
                          "amount_now": amounts})
    features = ["user_txn:amount_sum_7d", "user_txn:last_category", "txn_context:amount_z"]
    training = store.get_training_set(spine, features=features, output="arrow")
    assert sum(training.column("amount_sum_7d").to_pylist()) > 0
    store.materialize(end=end)
    online = store.get_online_features(features=features, entities={"user_id": users},
                                       request={"amount_now": amounts}, at=end)
    for name in ("amount_sum_7d", "last_category", "amount_z"):
        for got, want in zip(online[name], training.column(name).to_pylist(), strict=True):
            assert got == want or (got is not None and abs(got - want) <= 1e-9 * abs(want))
    store.close()


def test_every_time_argument_takes_iso_text_or_a_datetime_only(project: Path) -> None:
    store = FeatureStore(project)
    store.apply()
    micros = 1_706_659_200_000_000  # 2024-01-31T00:00:00Z, if it were read as microseconds
    with pytest.raises(InputError, match=r"^'end': expected an ISO-8601 timestamp .* got "
                                         rf"{micros} \(int\)$"):
        store.materialize(end=micros)
    with pytest.raises(InputError, match=r"^'at': .* got '05/04/2024'$"):
        store.snapshot("05/04/2024")
    store.materialize(end=dt.datetime(2024, 1, 31))  # naive: UTC
    for bad in (micros, "today", dt.date(2024, 2, 1)):
        with pytest.raises(InputError, match=r"^'at': expected an ISO-8601 timestamp"):
            store.verify(entities=2, at=[bad])
    assert store.verify(entities=2, at="2024-01-31T00:00:00Z").ok
    store.close()
