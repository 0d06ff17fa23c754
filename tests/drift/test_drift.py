"""`featurestore drift` and `FeatureStore.drift` end to end on a small demo project: every
kind of baseline and current side, the verdicts, the exit codes and the errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from featurestore import FeatureStore, InputError
from featurestore.cli import main
from featurestore.drift.comparison import DriftReport
from featurestore.fits.artifacts import FITS_TABLE, artifact_id
from featurestore.sample_spine import sample_spine
from featurestore.serving.served_log import SERVED_LOG_ENV
from tests.projects import DEMO_TEXT, write_demo_project

SERVICE = "fraud_v1"
SERVICE_COLUMNS = ["amount_sum_7d", "txn_count_1h", "amount_z", "last_category"]
VIEW_FEATURES = ["user_txn:amount_sum_7d", "user_txn:txn_count_1h", "user_txn:last_category"]
WINDOW = ("2024-01-10", "2024-01-20")


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY",
                 SERVED_LOG_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A demo project, applied, with a saved training set `base` (spine seed 1), the same
    rows as `same.parquet`, another spine's rows as `resample.parquet`, and a fit."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", SERVED_LOG_ENV):
            patch.delenv(name, raising=False)
        folder = write_demo_project(tmp_path_factory.mktemp("drift") / "project",
                                    events=3_000, users=60, days=30)
        store = FeatureStore(folder)
        store.apply()
        events = folder / "data" / "transactions.parquet"
        spine = sample_spine(events, 400, seed=1)
        saved = store.save_training_set("base", spine, service=SERVICE)
        pq.write_table(saved.table, folder / "same.parquet")
        resample = store.get_training_set(sample_spine(events, 400, seed=2), service=SERVICE,
                                          output="arrow")
        pq.write_table(resample, folder / "resample.parquet")
        store.fit(SERVICE, spine)
        store.close()
        yield folder


@pytest.fixture
def store(project: Path) -> Iterator[FeatureStore]:
    opened = FeatureStore(project)
    yield opened
    opened.close()


def run(project: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["drift", "--registry", str(project), *args])


def shifted(table: pa.Table) -> pa.Table:
    """The set with amounts half again as large and most categories turned to 'travel'."""
    amounts = pc.multiply(table.column("amount_sum_7d"), 1.5)
    categories = table.column("last_category").to_pylist()
    moved = [value if index % 4 == 0 or value is None else "travel"
             for index, value in enumerate(categories)]
    table = table.set_column(table.column_names.index("amount_sum_7d"), "amount_sum_7d", amounts)
    return table.set_column(table.column_names.index("last_category"), "last_category",
                            pa.array(moved, pa.string()))


def measures_of(report: DriftReport) -> dict[str, dict[str, float]]:
    return {feature.feature: dict(feature.measures) for feature in report.features}


def all_zero(report: DriftReport) -> bool:
    return all(value == 0.0 for measures in measures_of(report).values()
               for value in measures.values())


def test_the_same_rows_have_no_drift(project: Path, store: FeatureStore) -> None:
    report = store.drift("base", str(project / "same.parquet"))
    assert [feature.feature for feature in report.features] == SERVICE_COLUMNS
    assert [feature.kind for feature in report.features] == [
        "numeric", "numeric", "numeric", "categorical"]
    assert all_zero(report) and report.drifted == ()
    assert report.baseline == "training set 'base' (400 rows)"
    result = run(project, "--baseline", "base", "--current", str(project / "same.parquet"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + len(SERVICE_COLUMNS)
    assert all(line.endswith("  ok") for line in lines[1:-1])
    assert lines[-1] == "0 of 4 features drifted"


def test_a_second_sample_of_the_same_events_has_no_drift(project: Path,
                                                         store: FeatureStore) -> None:
    report = store.drift("base", str(project / "resample.parquet"))
    assert report.drifted == ()
    assert not all_zero(report)


def test_a_shifted_file_drifts_and_the_command_exits_1(project: Path, store: FeatureStore,
                                                      tmp_path: Path) -> None:
    moved = tmp_path / "moved.csv"
    pa.csv.write_csv(shifted(pq.read_table(project / "same.parquet")), moved)
    report = store.drift("base", str(moved))
    assert report.drifted == ("amount_sum_7d", "last_category")
    by_name = {feature.feature: feature for feature in report.features}
    assert by_name["amount_sum_7d"].over == ("psi", "ks")
    assert by_name["last_category"].over == ("linf", "js")

    result = run(project, "--baseline", "base", "--current", str(moved))
    assert result.exit_code == 1
    drifted = [line.split()[0] for line in result.stdout.splitlines() if line.endswith("DRIFT")]
    assert drifted == ["amount_sum_7d", "last_category"]
    assert result.stdout.splitlines()[-1] == (
        "2 of 4 features drifted: amount_sum_7d, last_category")

    as_json = run(project, "--baseline", "base", "--current", str(moved), "--json",
                  "--features", "last_category", "--features", "txn_count_1h")
    assert as_json.exit_code == 1
    parsed = orjson.loads(as_json.stdout)
    assert parsed["drifted"] == ["last_category"]
    assert [feature["feature"] for feature in parsed["features"]] == [
        "txn_count_1h", "last_category"]
    assert parsed["features"][1]["over"] == ["linf", "js"]

    only_ok = run(project, "--baseline", "base", "--current", str(moved),
                  "--features", "txn_count_1h,amount_z")
    assert only_ok.exit_code == 0, only_ok.output


def test_thresholds_come_from_the_registry(project: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved.parquet"
    pq.write_table(shifted(pq.read_table(project / "same.parquet")), moved)
    relaxed = project / "relaxed.yaml"
    relaxed.write_text(DEMO_TEXT + "drift: {psi: 50, ks: 0.9, linf: 0.9}\n")
    store = FeatureStore(relaxed)
    report = store.drift(str(project / "same.parquet"), str(moved))
    assert report.drifted == ("last_category",)  # js keeps its default, 0.1
    by_name = {feature.feature: feature for feature in report.features}
    assert by_name["amount_sum_7d"].thresholds == {"psi": 50.0, "ks": 0.9}
    assert by_name["last_category"].thresholds == {"linf": 0.9, "js": 0.1}


def test_a_fit_keeps_profiles_outside_its_id_and_is_a_baseline(project: Path,
                                                                store: FeatureStore) -> None:
    [fit] = store.list_fits(SERVICE)
    assert list(fit.profiles) == [
        "user_txn:amount_sum_7d", "user_txn:txn_count_1h", "txn_context:amount_z",
        "user_txn:last_category"]
    assert len(fit.profiles["user_txn:amount_sum_7d"]["quantiles"]) == 101  # type: ignore[arg-type]
    assert fit.profiles["user_txn:last_category"]["kind"] == "categorical"
    assert fit.id == artifact_id(fit.definitions, fit.statistics)

    same = str(project / "same.parquet")
    for name in ("latest", fit.id[:6], f"{SERVICE}:latest", f"{SERVICE}:{fit.id}"):
        report = store.drift(f"fit:{name}", same)
        assert report.baseline == f"fit {fit.id} of service {SERVICE} (400 rows)"
        assert report.drifted == ()
        measures = measures_of(report)
        # Against the very rows it was fitted on: exact up to the quantiles' resolution.
        assert all(measures[name]["ks"] <= 0.01 + 1e-9 for name in SERVICE_COLUMNS[:3])
        assert measures["last_category"] == {"linf": 0.0, "js": 0.0}
    result = run(project, "--baseline", f"fit:{fit.id}", "--current", same)
    assert result.exit_code == 0, result.output


def test_a_fit_stored_before_profiles_says_so_and_a_refit_fills_them(tmp_path: Path) -> None:
    folder = write_demo_project(tmp_path / "old", events=600, users=10, days=10)
    store = FeatureStore(folder)
    store.apply()
    spine = sample_spine(folder / "data" / "transactions.parquet", 100, seed=3)
    first = store.fit(SERVICE, spine).artifact
    with duckdb.connect(str(store.offline_path)) as con:
        con.execute(f"ALTER TABLE {FITS_TABLE} DROP COLUMN profiles")
    [old] = store.list_fits()
    assert old.id == first.id and old.profiles == {}
    pq.write_table(store.get_training_set(spine, service=SERVICE, output="arrow"),
                   folder / "set.parquet")
    with pytest.raises(InputError, match=f"fit {first.id} of service 'fraud_v1' was stored "
                                         "before fits kept profiles"):
        store.drift("fit:latest", str(folder / "set.parquet"))
    again = store.fit(SERVICE, spine)
    assert again.artifact.id == first.id and not again.new
    assert store.list_fits()[0].profiles == first.profiles
    assert store.drift("fit:latest", str(folder / "set.parquet")).drifted == ()
    store.close()


def write_segment(directory: Path, logged_at: datetime, rows: list[dict[str, object]],
                  sequence: int) -> None:
    """A served-value segment as the server writes it (one row per entity row)."""
    directory.mkdir(parents=True, exist_ok=True)
    logged_us = int(logged_at.timestamp() * 1_000_000)
    table = pa.table({
        "logged_at_us": pa.array([logged_us] * len(rows), pa.int64()),
        "at_us": pa.array([logged_us] * len(rows), pa.int64()),
        "registry_version": pa.array(["1"] * len(rows), pa.string()),
        "state_version": pa.array([orjson.dumps({"user_txn": "v1"}).decode()] * len(rows)),
        "request": pa.array([orjson.dumps({"service": SERVICE, "transformed": True,
                                           "fit": None}).decode()] * len(rows)),
        "entity": pa.array([orjson.dumps({"user_id": row["user_id"]}).decode()
                            for row in rows]),
        # A transformed column is served too; it names no feature and is not compared.
        "values": pa.array([orjson.dumps({**{name: row[name] for name in SERVICE_COLUMNS},
                                          "amount_sum_7d_z": 0.5}).decode() for row in rows]),
    })
    name = f"served-{logged_at:%Y%m%dT%H%M%S}-{os.getpid()}-{sequence}.parquet"
    temporary = directory / f".{name}.tmp"
    pq.write_table(table, temporary)
    temporary.rename(directory / name)


def test_served_values_of_the_last_duration(project: Path, store: FeatureStore,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    table = pq.read_table(project / "same.parquet")
    rows = table.to_pylist()
    now = datetime.now(UTC)
    log = store.offline_path.parent / "served-log"
    write_segment(log, now - timedelta(minutes=30), rows, 1)
    # Two days old and shifted: inside served:3d, outside served:24h.
    write_segment(log, now - timedelta(days=2), shifted(table).to_pylist(), 2)
    try:
        recent = store.drift("base", "served:24h")
        assert recent.current.startswith(f"values served in the last 24h (400 rows logged in "
                                         f"{log})")
        assert [feature.feature for feature in recent.features] == SERVICE_COLUMNS
        assert all_zero(recent) and recent.drifted == ()
        older = store.drift("base", "served:3d")
        assert older.drifted == ("amount_sum_7d", "last_category")
        assert run(project, "--baseline", "base", "--current", "served:3d").exit_code == 1
        assert run(project, "--baseline", "base", "--current", "served:1h").exit_code == 0
        nothing = run(project, "--baseline", "base", "--current", "served:10m")
        assert nothing.exit_code == 1
        assert "served:10m: no lookups were logged in the last 10m" in nothing.output

        monkeypatch.setenv(SERVED_LOG_ENV, str(tmp_path / "elsewhere"))
        write_segment(tmp_path / "elsewhere", now - timedelta(hours=1),
                      shifted(table).to_pylist(), 1)
        assert store.drift("base", "served:24h").drifted == ("amount_sum_7d", "last_category")
    finally:
        for segment in log.glob("served-*.parquet"):
            segment.unlink()


def test_nothing_served_in_the_duration_says_how_to_log(store: FeatureStore) -> None:
    with pytest.raises(InputError, match=r"^served:1h: no lookups were logged in the last 1h "
                                         r"\(in .*served-log\); turn logging on with "):
        store.drift("base", "served:1h")


def test_a_window_computes_each_event_s_features_point_in_time(project: Path,
                                                               store: FeatureStore,
                                                               tmp_path: Path) -> None:
    events = pq.read_table(project / "data" / "transactions.parquet")
    start, end = (pa.scalar(datetime.fromisoformat(day).replace(tzinfo=UTC)) for day in WINDOW)
    times = events.column("event_ts").cast(pa.timestamp("us", tz="UTC"))
    inside = events.filter(pc.and_(pc.greater_equal(times, start), pc.less(times, end)))
    spine = inside.select(["user_id", "event_ts"])
    expected = store.get_training_set(spine, features=VIEW_FEATURES, output="arrow")
    pq.write_table(expected, tmp_path / "window.parquet")

    report = store.drift(str(tmp_path / "window.parquet"), f"window:{WINDOW[0]}..{WINDOW[1]}")
    assert report.current == (f"window 2024-01-10T00:00:00+00:00..2024-01-20T00:00:00+00:00 "
                              f"({inside.num_rows:,} events)")
    assert [feature.feature for feature in report.features] == [
        "amount_sum_7d", "txn_count_1h", "last_category"]
    assert all_zero(report) and report.drifted == ()

    against_base = store.drift("base", f"window:{WINDOW[0]}T00:00:00Z..{WINDOW[1]}")
    assert against_base.left_out == (
        "amount_z (a request feature: events carry no request fields)",)
    assert "not compared (on one side only): amount_z" in against_base.render()
    with pytest.raises(InputError, match=r"feature 'amount_z' cannot be compared in the "
                                         r"current .*: a request feature"):
        store.drift("base", f"window:{WINDOW[0]}..{WINDOW[1]}", features=["amount_z"])


@pytest.mark.parametrize(("baseline", "current", "message"), [
    ("bsae", "base", "error: no saved training set named 'bsae' (did you mean 'base'?)"),
    ("missing.parquet", "base",
     "error: file not found: missing.parquet (nor a saved training set of that name)"),
    ("fit:0000", "base", "error: no fit has id '0000' (fits, newest first: "),
    ("fit:nosuch:latest", "base", "error: service 'nosuch' has no fitted transforms"),
    ("base", "fit:latest", "error: current fit:latest: a fit keeps only a summary of its "
     "training set (quantiles, frequent values); use it as the baseline"),
    ("base", "served:24hours", "error: served:24hours: invalid duration '24hours': expected a "
     "positive whole number and a unit"),
    ("base", "window:2024-01-10", "error: window:2024-01-10: expected window:START..END"),
    ("base", "window:2024-01-20..2024-01-10",
     "error: window:2024-01-20..2024-01-10: the start is not before the end"),
    ("base", "window:yesterday..2024-01-10", "error: window:yesterday..2024-01-10: the start "
     "'yesterday' is not a time: use an ISO-8601 date or time such as 2024-03-31 or "
     "2024-03-31T12:00:00Z"),
    ("base", "window:2023-01-01..2023-02-01", "error: window:2023-01-01..2023-02-01: source "
     "'transactions' has no events from 2023-01-01T00:00:00+00:00 to "
     "2023-02-01T00:00:00+00:00"),
])
def test_bad_sides_are_one_line_errors(project: Path, monkeypatch: pytest.MonkeyPatch,
                                       baseline: str, current: str, message: str) -> None:
    monkeypatch.chdir(project)
    result = run(project, "--baseline", baseline, "--current", current)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(message), result.stderr


def test_no_common_features_and_unknown_features_are_one_line_errors(
        project: Path, tmp_path: Path) -> None:
    keys_only = tmp_path / "keys.parquet"
    pq.write_table(pq.read_table(project / "same.parquet").select(["user_id", "label"]),
                   keys_only)
    result = run(project, "--baseline", "base", "--current", str(keys_only))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: no feature of the registry is in both the baseline (base: amount_sum_7d, "
        f"txn_count_1h, amount_z, last_category) and the current data ({keys_only}: none)\n")
    unknown = run(project, "--baseline", "base", "--current", "base",
                  "--features", "amount_sum_7", "--json")
    assert unknown.exit_code == 1
    assert unknown.stderr == ("error: unknown feature 'amount_sum_7' (did you mean "
                              "'amount_sum_7d'?) (write a feature's name, 'view:feature' or "
                              "a service)\n")
    missing = run(project, "--baseline", "base", "--current", "base",
                  "--features", "user_txn:amount_max_1d")
    assert missing.stderr == "error: feature 'amount_max_1d' is not in the baseline (base)\n"
