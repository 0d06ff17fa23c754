"""Every registry in tests/registry/broken_sources/ is valid on its own but does not
match its data: one mistake each (one file has three), each reported by `plan` and
`apply` as exact located lines, exit status 2, and nothing applied."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.errors import RegistryError

BROKEN = Path(__file__).parent / "broken_sources"

_PATH = "registry.yaml:10:11: sources.transactions.path: "
_TABLE = "registry.yaml:10:12: sources.transactions.table: "
_QUERY = "registry.yaml:10:12: sources.transactions.query: query cannot run: "
_TIMESTAMP = "registry.yaml:11:16: sources.transactions.timestamp: "
_ENTITY = "registry.yaml:15:13: feature_views.user_txn.entity: "

EXPECTED: dict[str, list[str]] = {
    "missing_file.yaml": [_PATH + "file not found: data/refunds.parquet"],
    "path_typo.yaml": [
        _PATH + "file not found: data/transactons.parquet "
        "(did you mean 'data/transactions.parquet'?)"
    ],
    "unknown_extension.yaml": [
        _PATH + "cannot tell the format of 'data/transactions.json': expected a file name "
        "ending in .parquet, .pq, .parq, .csv, .tsv, .csv.gz, .tsv.gz, .csv.zst, .tsv.zst"
    ],
    "glob_no_match.yaml": [_PATH + "no file matches 'data/2024-*.parquet'"],
    "missing_table.yaml": [
        _TABLE + "no table 'txn' in the offline store data/offline.duckdb (did you mean 'txns'?)"
    ],
    "table_before_offline_store.yaml": [
        _TABLE + "no table 'txns': the offline store data/new.duckdb does not exist yet, so "
        "it holds no tables (create the table in it, or read a file with 'path:')"
    ],
    "bad_sql.yaml": [_QUERY + 'Parser Error: syntax error at or near ","'],
    "query_unknown_column.yaml": [
        _QUERY + 'Binder Error: Referenced column "amout" not found in FROM clause!'
    ],
    "timestamp_typo.yaml": [
        _TIMESTAMP + "no timestamp column 'event_time' (did you mean 'event_ts'?); "
        "its columns: user_id, amount, merchant_category, tags, event_ts"
    ],
    "timestamp_is_text.yaml": [
        _TIMESTAMP + "timestamp column 'event_time' has type VARCHAR; expected TIMESTAMP "
        "(naive = UTC) or TIMESTAMPTZ (DuckDB read it from CSV as text: use a `query:` "
        "source that casts it)"
    ],
    "expr_column_typo.yaml": [
        "registry.yaml:19:40: feature_views.user_txn.features.big_txn_7d.expr: "
        "source 'transactions' has no column 'amout' (did you mean 'amount'?)"
    ],
    "expr_column_unusable.yaml": [
        "registry.yaml:18:41: feature_views.user_txn.features.tagged_7d.expr: column 'tags' "
        "of source 'transactions' has type VARCHAR[], which features cannot use (they read "
        "int, float, bool, string or timestamp columns)"
    ],
    "expr_wrong_type.yaml": [
        "registry.yaml:18:28: feature_views.user_txn.features.category_sum.agg: "
        "'sum' needs a numeric expression, got string"
    ],
    "entity_key_missing.yaml": [
        _ENTITY + "source 'transactions' has no column 'userid', the key of entity 'user' "
        "(did you mean 'user_id'?)"
    ],
    "key_float.yaml": [
        "registry.yaml:15:13: feature_views.user_scores.entity: key column 'user_id' of "
        "entity 'user' has type DOUBLE in source 'scores'; keys must be integers or strings"
    ],
    "key_types_disagree.yaml": [
        "registry.yaml:23:13: feature_views.user_clicks.entity: key 'user_id' of entity "
        "'user' is a string (VARCHAR) in source 'clicks' but an integer (BIGINT) in source "
        "'transactions' (read by feature view 'user_txn'); an entity's key must have one "
        "type in every source"
    ],
    "three_mistakes.yaml": [
        _PATH + "file not found: data/transactons.parquet "
        "(did you mean 'data/transactions.parquet'?)",
        "registry.yaml:14:16: sources.clicks.timestamp: no timestamp column 'event_time' "
        "(did you mean 'event_ts'?); its columns: user_id, page, event_ts",
        "registry.yaml:25:41: feature_views.user_clicks.features.home_clicks_1d.expr: "
        "source 'clicks' has no column 'pge' (did you mean 'page'?)",
    ],
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the data every case reads; each case adds its registry.yaml."""
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    # A kernel cache of its own shows whether anything was compiled.
    monkeypatch.setenv("FEATURESTORE_CACHE_DIR", str(tmp_path / "cache"))
    write_data(tmp_path / "data")
    return tmp_path


def write_data(data: Path) -> None:
    """Small sources: Parquet files, a CSV file with text times, and a DuckDB table."""
    data.mkdir()
    times = pa.array([datetime(2024, 1, 1, 10), datetime(2024, 1, 2, 11)], pa.timestamp("us"))
    pq.write_table(
        pa.table({
            "user_id": pa.array([1, 2], pa.int64()),
            "amount": [10.0, 600.0],
            "merchant_category": ["food", "travel"],
            "tags": [["a"], []],
            "event_ts": times,
        }),
        data / "transactions.parquet",
    )  # fmt: skip
    pq.write_table(
        pa.table({"user_id": ["u1", "u2"], "page": ["home", "cart"], "event_ts": times}),
        data / "clicks.parquet",
    )
    pq.write_table(
        pa.table({"user_id": [1.0, 2.0], "score": [0.5, 0.7], "event_ts": times}),
        data / "scores.parquet",
    )
    (data / "events.csv").write_text(
        "user_id,amount,event_time\n1,10.0,Jan 1 2024 10am\n2,600.0,Jan 2 2024 11am\n"
    )
    with duckdb.connect(str(data / "offline.duckdb")) as con:
        con.execute(
            "CREATE TABLE txns AS SELECT user_id::INTEGER AS user_id, amount, event_ts "
            f"FROM read_parquet('{data / 'transactions.parquet'}')"
        )


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def use_case(project: Path, name: str) -> Path:
    registry = project / "registry.yaml"
    shutil.copyfile(BROKEN / name, registry)
    return registry


def test_every_case_has_its_expected_lines() -> None:
    assert sorted(path.name for path in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_plan_reports_every_problem_located(name: str, project: Path) -> None:
    registry = use_case(project, name)
    with pytest.raises(RegistryError) as caught:
        FeatureStore(registry).plan()
    assert caught.value.problems == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_plan_and_apply_exit_2_and_apply_nothing(name: str, project: Path) -> None:
    registry = use_case(project, name)
    for command in ("plan", "apply"):
        result = run(command, "--registry", str(registry))
        assert result.exit_code == 2, result.output
        assert result.stderr.splitlines() == EXPECTED[name]
        assert result.stdout == ""
    assert not (project / "data" / "new.duckdb").exists()
    assert not (project / "cache").exists(), "nothing was compiled"
    with duckdb.connect(str(project / "data" / "offline.duckdb"), read_only=True) as con:
        tables = {row[0] for row in con.sql("SELECT table_name FROM information_schema.tables")
                  .fetchall()}  # fmt: skip
    assert tables == {"txns"}, "no applied version was recorded"


def test_plan_of_sound_sources_passes_without_compiling(project: Path) -> None:
    # The key is INTEGER in the table and BIGINT in the file: one kind, so they agree.
    (project / "registry.yaml").write_text(
        (BROKEN / "key_types_disagree.yaml").read_text()
        .replace("path: data/clicks.parquet", "table: txns")
        .replace("clicks_1d: {agg: count, window: 1d}",
                 "amount_max_1d: {agg: max, expr: amount, window: 1d}")
    )  # fmt: skip
    planned = run("plan", "--registry", str(project))
    assert planned.exit_code == 0, planned.output
    assert planned.stdout.startswith("Plan (nothing applied yet):")
    assert not (project / "cache").exists(), "plan types expressions but compiles nothing"
