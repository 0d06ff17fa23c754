"""`training-set --out` and `snapshot --out` in every format, and the refusal of an
unknown extension before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from featurestore import FeatureStore
from featurestore.cli import main
from tests.offline.training_project import at, make_project, row, spine_frame
from tests.strategies import BASE, HOUR, MINUTE

T0 = BASE + 10 * HOUR
EVENTS = [
    (3, T0 - 50 * MINUTE, row(10.0, category="b", flag=True)),
    (1, T0 - 20 * MINUTE, row(30.0, category="a")),
    (2, T0 + 10 * MINUTE, row(70.0, category="c")),
]  # fmt: skip
FEATURES = "user_stats:sum_1h,user_stats:flag_last_1h,user_stats:latest_ts_1d"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    make_project(tmp_path, EVENTS)
    monkeypatch.chdir(tmp_path)
    spine = spine_frame([(1, T0), (3, T0), (9, T0)])
    pq.write_table(pa.Table.from_pandas(spine, preserve_index=False), tmp_path / "spine.parquet")
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def expected(project: Path) -> pa.Table:
    spine = pq.read_table(project / "spine.parquet")
    return FeatureStore(project).get_training_set(spine, features=FEATURES.split(","),
                                                  output="arrow")


@pytest.mark.parametrize("name", ["training.arrow", "training.feather"])
def test_training_set_as_arrow_ipc(project: Path, name: str) -> None:
    result = run("training-set", "--spine", "spine.parquet", "--out", name,
                 "--features", FEATURES)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"wrote 3 rows with 3 feature columns to {name} (")
    assert feather.read_table(project / name).equals(expected(project))


@pytest.mark.parametrize("name", ["training.json", "training.jsonl"])
def test_training_set_as_json_lines(project: Path, name: str) -> None:
    result = run("training-set", "--spine", "spine.parquet", "--out", name,
                 "--features", FEATURES)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (project / name).read_text().splitlines()]
    assert len(rows) == 3
    assert rows[0]["event_ts"] == f"{at(T0).isoformat()}.000000+00:00"
    assert rows[0]["sum_1h"] == 30.0 and rows[2]["sum_1h"] == 0.0
    assert [r["flag_last_1h"] for r in rows] == [False, True, None]
    assert rows[1]["latest_ts_1d"] == f"{at(T0 - 50 * MINUTE).isoformat()}.000000+00:00"


def test_training_set_csv_keeps_the_utc_offset(project: Path) -> None:
    result = run("training-set", "--spine", "spine.parquet", "--out", "training.csv",
                 "--features", FEATURES)
    assert result.exit_code == 0, result.output
    text = (project / "training.csv").read_text()
    assert f'"{at(T0).isoformat()}.000000+00:00"' in text
    back = pa_csv.read_csv(project / "training.csv")
    assert back.schema.field("event_ts").type.tz == "UTC"
    assert back.column("flag_last_1h").to_pylist() == [False, True, None]


def test_a_json_lines_spine_is_read(project: Path) -> None:
    assert run("training-set", "--spine", "spine.parquet", "--out", "spine.jsonl",
               "--features", "user_stats:sum_1h").exit_code == 0
    (project / "spine.jsonl").write_text("\n".join(
        json.dumps({key: value for key, value in json.loads(line).items() if key != "sum_1h"})
        for line in (project / "spine.jsonl").read_text().splitlines()) + "\n")
    result = run("training-set", "--spine", "spine.jsonl", "--out", "again.parquet",
                 "--features", FEATURES)
    assert result.exit_code == 0, result.output
    written = pq.read_table(project / "again.parquet")
    assert written.column("sum_1h").to_pylist() == expected(project).column("sum_1h").to_pylist()


@pytest.mark.parametrize("command", [
    ["training-set", "--spine", "missing.parquet", "--service", "nope"],
    ["snapshot", "--at", "not a time"],
])  # fmt: skip
def test_an_unknown_extension_is_refused_before_any_work(project: Path,
                                                         command: list[str]) -> None:
    (project / "registry.yaml").write_text("not: [a registry")  # loading it would fail
    result = run(*command, "--out", "training.txt")
    assert result.exit_code == 1
    assert result.stderr == ("error: training.txt has extension '.txt'; use one of .parquet, "
                             ".pq, .csv, .json, .jsonl, .arrow, .feather\n")
    assert not (project / "training.txt").exists()


def test_snapshot_as_json_lines(project: Path) -> None:
    result = run("snapshot", "--at", f"{at(T0).isoformat()}Z", "--out", "scores.jsonl",
                 "--entity", "user")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (project / "scores.jsonl").read_text().splitlines()]
    assert [r["user_id"] for r in rows] == [1, 3]
    assert rows[0]["flag_last_1h"] is False and rows[1]["flag_last_1h"] is True


def test_training_set_and_snapshot_take_an_engine(project: Path, dask_cluster: str) -> None:
    engine = dask_cluster.replace("tcp://", "dask://")
    for out, extra in (("local.parquet", ()), ("dask.parquet", ("--engine", engine))):
        assert run("training-set", "--spine", "spine.parquet", "--features", FEATURES,
                   "--out", out, *extra).exit_code == 0
        assert run("snapshot", "--at", at(T0).isoformat(), "--entity", "user",
                   "--out", f"snapshot-{out}", *extra).exit_code == 0
    assert pq.read_table(project / "dask.parquet").equals(pq.read_table(project / "local.parquet"))
    assert pq.read_table(project / "snapshot-dask.parquet").equals(
        pq.read_table(project / "snapshot-local.parquet"))


def test_materialize_and_verify_take_an_engine(project: Path, dask_cluster: str) -> None:
    engine = dask_cluster.replace("tcp://", "dask://")
    FeatureStore(project).apply()
    materialized = run("materialize", "--end", at(T0 + HOUR).isoformat(), "--engine", engine)
    assert materialized.exit_code == 0, materialized.output
    verified = run("verify", "--entities", "all", "--engine", engine)
    assert verified.exit_code == 0, verified.output
    assert "online == offline" in verified.output


def test_a_bad_engine_names_the_option(project: Path) -> None:
    result = run("training-set", "--spine", "spine.parquet", "--features", FEATURES,
                 "--out", "x.parquet", "--engine", "dask://nowhere")
    assert result.exit_code != 0
    assert "the engine argument" in result.output and "no port" in result.output
    refused = run("training-set", "--spine", "spine.parquet", "--features", FEATURES,
                  "--name", "saved", "--engine", "local")
    assert refused.exit_code != 0 and "--engine does not apply with --name" in refused.output
