"""Snapshots (batch scoring) and the `training-set` and `snapshot` commands end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.errors import InputError
from tests.offline.training_project import at, make_project, row, spine_frame
from tests.strategies import BASE, HOUR, MINUTE

T0 = BASE + 10 * HOUR
EVENTS = [
    (3, T0 - 50 * MINUTE, row(10.0, category="b")),
    (1, T0 - 20 * MINUTE, row(30.0, category="a")),
    (1, T0 - 5 * MINUTE, row(None)),
    (2, T0 + 10 * MINUTE, row(70.0, category="c")),
]  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    make_project(tmp_path, EVENTS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_snapshot_is_the_training_set_of_every_key_seen_before_t(project: Path) -> None:
    store = FeatureStore(project)
    snapshot = store.snapshot(at(T0), entity="user")
    # User 2's only event is after T0: it has no row.
    assert snapshot["user_id"].tolist() == [1, 3]
    assert list(snapshot.columns[:3]) == ["user_id", "n_1h", "n_amount_1d"]
    features = [f"user_stats:{name}" for name in store.registry.feature_views["user_stats"]
                .features]
    training = store.get_training_set(spine_frame([(1, T0), (3, T0)]), features=features)
    pd.testing.assert_frame_equal(snapshot, training[snapshot.columns])


def test_snapshot_of_a_string_keyed_entity_and_its_options(project: Path) -> None:
    store = FeatureStore(project)
    by_merchant = store.snapshot(f"{pd.Timestamp(at(T0 + HOUR)).isoformat()}Z",
                                 entity="merchant", full_names=True, output="arrow")
    assert by_merchant.column_names == ["merchant", "merchant_stats__n_1h",
                                        "merchant_stats__amount_mean_1d"]
    # Events' merchants follow their times: mb, mc, mb, mb.
    assert by_merchant.column("merchant").to_pylist() == ["mb", "mc"]
    assert by_merchant.column("merchant_stats__n_1h").to_pylist() == [1, 0]
    with pytest.raises(InputError, match="feature views use 2 entities \\(user, merchant\\): "
                                         "choose one with entity="):
        store.snapshot(at(T0))
    with pytest.raises(InputError, match="no feature view uses entity 'card'"):
        store.snapshot(at(T0), entity="card")
    with pytest.raises(InputError, match=r"^'at': expected an ISO-8601 timestamp .* got 'soon'$"):
        store.snapshot("soon", entity="user")
    with pytest.raises(InputError, match=r"got \d+ \(int\)$"):  # microseconds? seconds?
        store.snapshot(T0, entity="user")


def test_training_set_command_parquet_in_and_out(project: Path) -> None:
    spine = spine_frame([(1, T0), (9, T0), (3, T0 - 40 * MINUTE)])
    pq.write_table(pa.Table.from_pandas(spine, preserve_index=False), project / "spine.parquet")
    result = run("training-set", "--spine", "spine.parquet", "--out", "out/training.parquet",
                 "--features", "user_stats:n_1h,user_stats:sum_1h", "--features", "svc",
                 "--full-names")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "wrote 3 rows with 4 feature columns to out/training.parquet (")
    written = pq.read_table(project / "out" / "training.parquet")
    expected = FeatureStore(project).get_training_set(
        spine, features=["user_stats:n_1h", "user_stats:sum_1h", "svc"], full_names=True,
        output="arrow")
    assert written.equals(expected)
    assert written.column("user_stats__n_1h").to_pylist() == [2, 0, 1]


def test_training_set_command_csv_in_and_out(project: Path) -> None:
    spine = pa.table({"user_id": [1, 3], "merchant": ["mc", "zz"],
                      "event_ts": [f"{at(T0).isoformat()}Z"] * 2, "amount_now": [20.0, 5.0]})
    pa_csv.write_csv(spine, project / "spine.csv")
    result = run("training-set", "--spine", "spine.csv", "--out", "training.csv",
                 "--service", "svc")
    assert result.exit_code == 0, result.output
    written = pa_csv.read_csv(project / "training.csv")
    assert written.column_names == ["user_id", "merchant", "event_ts", "amount_now", "sum_1h",
                                    "ratio", "amount_mean_1d"]
    assert written.column("sum_1h").to_pylist() == [30.0, 10.0]
    assert written.column("amount_mean_1d").to_pylist() == [30.0, None]


@pytest.mark.parametrize(("args", "message"), [
    (["--spine", "missing.parquet", "--service", "svc"], "error: file not found: missing.parquet"),
    (["--spine", "spine.parquet", "--service", "svd"],
     "error: unknown service 'svd' (did you mean 'svc'?)"),
    (["--spine", "spine.parquet", "--service", "svc", "--timestamp", "ts"],
     "error: spine has no column 'ts' (timestamp)"),
    (["--spine", "registry.yaml", "--service", "svc"], "error: registry.yaml is not readable"),
])  # fmt: skip
def test_training_set_command_errors_are_one_line(project: Path, args, message) -> None:
    pq.write_table(pa.Table.from_pandas(spine_frame([(1, T0)]), preserve_index=False),
                   project / "spine.parquet")
    result = run("training-set", *args, "--out", "out.parquet")
    assert result.exit_code == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (project / "out.parquet").exists()


def test_snapshot_command(project: Path) -> None:
    result = run("snapshot", "--at", f"{at(T0).isoformat()}Z", "--out", "scores.parquet",
                 "--entity", "user")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote 2 entities to scores.parquet (")
    written = pq.read_table(project / "scores.parquet")
    expected = FeatureStore(project).snapshot(at(T0), entity="user", output="arrow")
    assert written.equals(expected)
    failed = run("snapshot", "--at", "2024-01-01", "--out", "scores.parquet")
    assert failed.exit_code == 1
    assert failed.stderr.startswith("error: feature views use 2 entities")
