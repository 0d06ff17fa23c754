"""`stats` on each kind of input, the stored history, and the errors, via the SDK and
the command line, on the demo project with real DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.errors import InputError, NotMaterializedError, SourceError
from featurestore.statistics.history import STATISTICS_TABLE
from featurestore.table_files import write_table_file
from tests.projects import write_demo_project

START = "2024-01-01T00:00:00"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    directory = write_demo_project(tmp_path / "demo", events=400, users=12, days=6)
    monkeypatch.chdir(directory)
    return directory


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def events(project: Path) -> pd.DataFrame:
    return pq.read_table(project / "data" / "transactions.parquet").to_pandas()


def test_source_statistics_equal_pandas(project: Path) -> None:
    result = FeatureStore(project).stats(source="transactions")
    frame = events(project)
    assert result.target == "source 'transactions'" and result.rows == len(frame)
    assert [c.name for c in result.columns] == list(frame.columns)
    amount = result.column("amount")
    assert (amount.count, amount.nulls) == (frame["amount"].count(), frame["amount"].isna().sum())
    assert amount.mean == pytest.approx(frame["amount"].mean(), rel=1e-12)
    assert amount.std == pytest.approx(frame["amount"].std(ddof=0), rel=1e-9)
    assert amount.quantiles["p50"] == pytest.approx(frame["amount"].median(), rel=1e-12)
    counts = frame["merchant_category"].value_counts()
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert [(t.value, t.count) for t in result.column("merchant_category").top] == top


@pytest.mark.parametrize("name", ["set.parquet", "set.csv", "set.json", "set.arrow",
                                  "set.feather"])
def test_training_set_in_every_format(project: Path, name: str) -> None:
    table = pa.table({"amount": [1.5, None, 3.0, 10.0], "category": ["a", "b", None, "a"],
                      "count": [1, 2, 3, None]})
    write_table_file(table, project / name)
    result = FeatureStore(project).stats(training_set=project / name,
                                         columns=["amount", "category"])
    assert result.rows == 4 and result.quantile_method == "exact"
    amount = result.column("amount")
    assert (amount.count, amount.nulls, amount.min, amount.max) == (3, 1, 1.5, 10.0)
    assert amount.mean == pytest.approx(14.5 / 3)
    assert amount.quantiles["p50"] == 3.0
    assert [(t.value, t.count) for t in result.column("category").top] == [("a", 2), ("b", 1)]
    assert [c.name for c in result.columns] == ["amount", "category"]


def test_view_statistics_and_history_of_two_materializations(project: Path) -> None:
    store = FeatureStore(project)
    store.apply()
    with pytest.raises(NotMaterializedError, match="'user_txn' was never materialized"):
        store.stats(view="user_txn")
    store.materialize(end="2024-01-04T00:00:00")
    first = store.stats(view="user_txn")
    con = duckdb.connect(str(store.offline_path), read_only=True)
    try:
        latest = con.execute("SELECT * FROM features_user_txn").df()
        stored = con.execute(f"SELECT count(*) FROM {STATISTICS_TABLE}").fetchone()[0]
    finally:
        con.close()
    features = list(store.registry.feature_views["user_txn"].features)
    assert [c.name for c in first.columns] == features
    assert first.rows == len(latest) and stored == 1
    sums = latest["amount_sum_7d"].astype("float64")
    assert first.column("amount_sum_7d").mean == pytest.approx(sums.mean(), rel=1e-12)
    assert first.column("amount_sum_7d").nulls == sums.isna().sum()

    store.materialize(end="2024-01-06T00:00:00")
    history = store.view_statistics_history("user_txn")
    assert [run.end_us for run in history] == sorted(run.end_us for run in history)
    assert len(history) == 2
    assert history[0].statistics == first
    assert history[1].statistics == store.stats(view="user_txn")

    output = run("stats", "--view", "user_txn", "--history", "--columns", "amount_sum_7d")
    assert output.exit_code == 0, output.output
    lines = output.stdout.splitlines()
    assert lines[0].startswith("statistics of view 'user_txn' over 2 materializations")
    assert lines[1].startswith("  2024-01-04T00:00:00+00:00  amount_sum_7d count ")
    assert lines[2].startswith("  2024-01-06T00:00:00+00:00  amount_sum_7d count ")
    assert "mean" in lines[2] and len(lines) == 3


def test_json_output_parses(project: Path) -> None:
    output = run("stats", "--source", "transactions", "--json", "--columns", "amount,user_id")
    assert output.exit_code == 0, output.output
    data = json.loads(output.stdout)
    assert data["rows"] == len(events(project)) and data["std_ddof"] == 0
    assert [c["name"] for c in data["columns"]] == ["amount", "user_id"]
    assert set(data["columns"][0]["quantiles"]) == {"p1", "p5", "p10", "p25", "p50", "p75",
                                                    "p90", "p95", "p99"}
    text = run("stats", "--source", "transactions")
    assert text.exit_code == 0 and "merchant_category top: " in text.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--source", "transaction"],
     "error: unknown source 'transaction' (did you mean 'transactions'?)"),
    (["--view", "user_tx"], "error: unknown feature view 'user_tx' (did you mean 'user_txn'?)"),
    (["--view", "user_txn"], "error: feature view 'user_txn' was never materialized"),
    (["--training-set", "missing.parquet"], "error: file not found: missing.parquet"),
    (["--training-set", "bad.parquet"], "error: bad.parquet is not readable Parquet: "),
    (["--source", "transactions", "--columns", "amout"],
     "error: source 'transactions' has no column 'amout' (did you mean 'amount'?)"),
    (["--source", "transactions", "--view", "user_txn"],
     "error: give exactly one of --source, --training-set or --view (got --source, --view)"),
    ([], "error: give exactly one of --source, --training-set or --view (got none)"),
    (["--source", "transactions", "--history"], "error: --history shows a view's stored"),
])
def test_errors_are_one_line(project: Path, args: list[str], message: str) -> None:
    (project / "bad.parquet").write_text("not parquet")
    output = run("stats", *args)
    assert output.exit_code == 1
    assert output.stderr.startswith(message), output.stderr
    assert output.stderr.count("\n") == 1


def test_unreadable_source_names_it(project: Path) -> None:
    (project / "data" / "transactions.parquet").write_text("not parquet")
    with pytest.raises(SourceError, match=r"^source 'transactions' .* cannot be read"):
        FeatureStore(project).stats(source="transactions")
    with pytest.raises(InputError, match="unknown feature view 'nope'"):
        FeatureStore(project).view_statistics_history("nope")
    with pytest.raises(InputError, match=r"exactly one of source, training_set or view \(got "
                       r"source, training_set\)"):
        FeatureStore(project).stats(source="transactions", training_set="x.parquet")


def test_arrow_training_set_is_scanned_not_loaded(project: Path) -> None:
    path = project / "wide.arrow"
    feather.write_feather(pa.table({"x": list(range(1000))}), path, compression="lz4")
    result = FeatureStore(project).stats(training_set=path)
    assert result.column("x").quantiles["p50"] == 499.5 and result.rows == 1000


def test_source_statistics_include_pushed_events(project: Path) -> None:
    store = FeatureStore(project)
    store.apply()
    store.materialize(end="2024-01-04T00:00:00")
    before = store.stats(source="transactions", columns=["amount"])
    store.push("transactions", [
        {"user_id": 1, "event_ts": "2024-01-07T00:00:00Z", "amount": 123456.0,
         "merchant_category": "grocery"},
        {"user_id": 2, "event_ts": "2024-01-07T00:00:01Z", "amount": None,
         "merchant_category": None},
    ])
    after = FeatureStore(project).stats(source="transactions", columns=["amount"])
    assert after.rows == before.rows + 2
    assert after.column("amount").nulls == before.column("amount").nulls + 1
    assert after.column("amount").max == 123456.0


def test_query_source_has_no_row_bound_so_approximate_quantiles(project: Path) -> None:
    registry = project / "registry.yaml"
    registry.write_text(registry.read_text().replace(
        "path: data/transactions.parquet",
        "query: \"SELECT * FROM read_parquet('data/transactions.parquet')\""))
    result = FeatureStore(project).stats(source="transactions", columns=["amount"])
    frame = events(project)
    assert result.quantile_method == "approximate" and result.rows == len(frame)
    assert result.column("amount").mean == pytest.approx(frame["amount"].mean(), rel=1e-12)
    assert result.column("amount").quantiles["p50"] == pytest.approx(
        frame["amount"].median(), rel=0.05)
