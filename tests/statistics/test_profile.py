"""The statistics pass against pandas on a realistic frame, and its one scan."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.statistics import profile as profile_module
from featurestore.statistics.model import QUANTILE_LEVELS, DatasetStatistics
from featurestore.statistics.profile import ProfiledColumn, statistics_sql
from tests.projects import write_demo_project

ROWS = 5_000


def realistic_frame(rows: int = ROWS, seed: int = 7) -> pd.DataFrame:
    """Floats with NaN and None, ints, bools, strings with nulls, timestamps."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0, 1.2, rows)
    amount[rng.random(rows) < 0.05] = np.nan
    score = rng.normal(0.0, 1.0, rows)
    weights = np.linspace(2, 0.2, 12)
    category = rng.choice(["grocery", "fuel", "travel", "apparel", "pharmacy", "online",
                           "restaurants", "utilities", "electronics", "books", "toys",
                           "garden"], rows, p=weights / weights.sum())
    categories = pd.Series(category, dtype=object)
    categories[rng.random(rows) < 0.08] = None
    flags = pd.Series(rng.random(rows) < 0.3, dtype="boolean")
    flags[rng.random(rows) < 0.02] = pd.NA
    counts = pd.Series(rng.integers(0, 40, rows), dtype="Int64")
    counts[rng.random(rows) < 0.1] = pd.NA
    times = pd.Series(pd.Timestamp("2024-01-01", tz="UTC")
                      + pd.to_timedelta(rng.integers(0, 90 * 86_400, rows), unit="s"))
    times[rng.random(rows) < 0.03] = pd.NaT
    return pd.DataFrame({"user_id": rng.integers(1, 500, rows), "amount": amount,
                         "score": score, "count": counts, "category": categories,
                         "flag": flags, "ts": times})


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    return FeatureStore(write_demo_project(tmp_path / "demo", events=300, users=10, days=3))


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # A real NaN in the file, beside the nulls pandas' NaN became: both count as null.
    amount = table.column("amount").to_pylist()
    amount[1] = float("nan")
    table = table.set_column(table.schema.get_field_index("amount"), "amount",
                             pa.array(amount, pa.float64(), from_pandas=False))
    pq.write_table(table, path)
    return path


def test_numeric_statistics_equal_pandas(store: FeatureStore, tmp_path: Path) -> None:
    frame = realistic_frame()
    frame.loc[1, "amount"] = np.nan
    result = store.stats(training_set=write_frame(frame, tmp_path / "set.parquet"))
    assert result.rows == ROWS and result.quantile_method == "exact"
    assert result.std_ddof == 0
    for name in ("user_id", "amount", "score", "count"):
        series = frame[name].astype("float64")
        column = result.column(name)
        assert column.kind == "numeric"
        assert column.count == series.count()
        assert column.nulls == series.isna().sum()
        assert column.null_fraction == pytest.approx(series.isna().mean(), rel=1e-12)
        assert column.min == series.min() and column.max == series.max()
        assert column.mean == pytest.approx(series.mean(), rel=1e-12)
        assert column.std == pytest.approx(series.std(ddof=0), rel=1e-9)
        expected = series.dropna().quantile([level for _, level in QUANTILE_LEVELS])
        assert list(column.quantiles.values()) == pytest.approx(list(expected), rel=1e-12)
        counts, edges = np.histogram(series.dropna(), bins=result.histogram_bins)
        assert [b.count for b in column.histogram] == counts.tolist()
        assert [b.low for b in column.histogram] == edges[:-1].tolist()
        assert column.histogram[-1].high == edges[-1]
        assert column.distinct == pytest.approx(series.nunique(), rel=0.1)


def test_strings_booleans_and_times_equal_pandas(store: FeatureStore, tmp_path: Path) -> None:
    frame = realistic_frame()
    result = store.stats(training_set=write_frame(frame, tmp_path / "set.parquet"))
    category = result.column("category")
    values = frame["category"]
    assert (category.kind, category.count, category.nulls) == (
        "string", values.count(), values.isna().sum())
    assert (category.min, category.max) == (values.dropna().min(), values.dropna().max())
    counts = values.value_counts()
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:10]
    assert [(t.value, t.count) for t in category.top] == top
    assert category.top[0].fraction == pytest.approx(top[0][1] / values.count())
    assert category.distinct == values.nunique() and category.distinct_exact
    assert category.quantiles is None and category.histogram == ()

    flag = result.column("flag")
    assert (flag.kind, flag.count, flag.nulls) == ("boolean", frame["flag"].count(),
                                                   frame["flag"].isna().sum())
    assert flag.mean == pytest.approx(frame["flag"].dropna().astype(float).mean(), rel=1e-12)
    assert {t.value: t.count for t in flag.top} == frame["flag"].value_counts().to_dict()

    ts = result.column("ts")
    assert (ts.kind, ts.count, ts.nulls) == ("timestamp", frame["ts"].count(),
                                             frame["ts"].isna().sum())
    assert pd.Timestamp(ts.min) == frame["ts"].min()
    assert pd.Timestamp(ts.max) == frame["ts"].max()
    median = frame["ts"].dropna().quantile(0.5)
    assert abs(pd.Timestamp(ts.quantiles["p50"]) - median) <= pd.Timedelta(microseconds=1)
    assert sum(b.count for b in ts.histogram) == ts.count


def test_one_statement_scans_the_input_once(tmp_path: Path) -> None:
    path = write_frame(realistic_frame(200), tmp_path / "set.parquet")
    con = duckdb.connect()
    relation = f"read_parquet('{path}')"
    columns = [ProfiledColumn(str(name), str(kind)) for name, kind, *_
               in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    plan = con.execute("EXPLAIN " + statistics_sql(relation, columns, "exact")).fetchall()
    text = "\n".join(str(row[1]) for row in plan)
    # One reader of the file; every other operator reads the materialized CTE.
    assert re.findall(r"Function: (\w+)", text) == ["READ_PARQUET"]
    assert text.count("CTE Scan") >= 2


def test_large_inputs_switch_to_approximate_quantiles(store: FeatureStore, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    frame = realistic_frame()
    path = write_frame(frame, tmp_path / "set.parquet")
    monkeypatch.setattr(profile_module, "EXACT_QUANTILE_VALUES", ROWS - 1)
    result = store.stats(training_set=path, columns=["score"])
    assert result.quantile_method == "approximate"
    assert "quantiles approximate" in result.render()
    # t-digest: the rank error stays well under 1% of the rows here.
    values = np.sort(frame["score"].to_numpy())
    for (_, level), value in zip(QUANTILE_LEVELS, result.column("score").quantiles.values(),
                                 strict=True):
        rank = np.searchsorted(values, value) / len(values)
        assert abs(rank - level) < 0.01


def test_result_round_trips_through_its_json_form(store: FeatureStore, tmp_path: Path) -> None:
    result = store.stats(training_set=write_frame(realistic_frame(300), tmp_path / "s.parquet"))
    assert DatasetStatistics.from_dict(result.to_dict()) == result
    with pytest.raises(AttributeError):
        result.rows = 1  # type: ignore[misc]


def test_kinds_of_every_type_and_an_empty_input() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT 1.5::DOUBLE AS a, 'x' AS s, true AS b, "
                "TIMESTAMP_NS '2024-01-01' AS t, DATE '2024-01-02' AS d, [1, 2] AS l, "
                "10::DECIMAL(10, 2) AS m, 1::FLOAT AS f, 'a'::ENUM('a', 'b') AS e, "
                "2::UBIGINT AS u WHERE false")
    columns = [ProfiledColumn(str(name), str(kind)) for name, kind, *_
               in con.execute("DESCRIBE t").fetchall()]
    assert [column.kind for column in columns] == [
        "numeric", "string", "boolean", "timestamp", "timestamp", "other", "numeric",
        "numeric", "string", "numeric"]
    empty = profile_module.profile(con, "t", columns, 0, "t")
    assert empty.rows == 0
    assert all(c.count == 0 and c.null_fraction == 0.0 and c.histogram == () and c.top == ()
               for c in empty.columns)
    con.execute("INSERT INTO t VALUES (1.5, 'x', true, '2024-01-01 00:00:00.5', '2024-01-02', "
                "[1], 3.25, 'nan', 'b', 7), ('nan', NULL, NULL, NULL, NULL, NULL, NULL, 2, "
                "NULL, NULL)")
    two = profile_module.profile(con, "t", columns, 2, "t")
    assert [(c.count, c.nulls) for c in two.columns] == [(1, 1)] * 10
    assert two.column("t").min == "2024-01-01T00:00:00.500000+00:00"
    assert two.column("d").max == "2024-01-02T00:00:00+00:00"
    # One value: one closed bin holding it.
    assert [(b.low, b.high, b.count) for b in two.column("m").histogram] == [(3.25, 3.25, 1)]
    assert "[3.25, 3.25] 1" in two.render()
