"""Each column rule under each policy at materialize: warn reports, fail stops the run
and changes nothing, quarantine keeps the breaking rows out and records them."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from featurestore import FeatureStore
from featurestore.validation.errors import ExpectationError
from featurestore.validation.records import QUARANTINE_TABLE, VALIDATIONS_TABLE
from tests.validation.projects import (
    BAD_ROWS,
    END,
    GOOD_ROWS,
    LATER_END,
    RULES,
    rule_expect,
    write_project,
    write_rows,
)

FEATURES = ["user_txn:txn_count_30d", "user_txn:amount_sum_30d", "user_txn:amount_mean_30d",
            "user_txn:last_category", "user_txn:amount_count_30d"]
USERS = [1, 2, 3]


@pytest.fixture(autouse=True)
def _no_store_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)


def applied(directory: Path) -> FeatureStore:
    store = FeatureStore(directory)
    store.apply()
    return store


def online(store: FeatureStore, at: str = END) -> dict[str, list]:
    return store.get_online_features(features=FEATURES, entities={"user_id": USERS}, at=at)


def offline_table(directory: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(directory / "checks.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.mark.parametrize("rule", list(RULES))
def test_warn_reports_the_broken_rule_and_keeps_the_rows(tmp_path: Path, rule: str) -> None:
    project = write_project(tmp_path / "p", [*GOOD_ROWS, BAD_ROWS[rule]],
                            rule_expect(rule, "warn"))
    store = applied(project)
    result = store.materialize(end=END)
    column = RULES[rule][0]
    broken = [line for line in result.expectations if "BROKEN" in line]
    assert len(broken) == 1
    assert f"column '{column}'" in broken[0] and "1 of 6 rows" in broken[0]
    assert "on_fail: warn" in result.render()
    # Every row counts, the breaking one too.
    assert sum(online(store)["txn_count_30d"]) == 6
    recorded = offline_table(project, f"SELECT rule, checked, breaking, broken, policy "
                                      f"FROM {VALIDATIONS_TABLE}")
    assert recorded == [(rule, 6, 1, True, "warn")]


@pytest.mark.parametrize("rule", list(RULES))
def test_fail_stops_the_run_and_leaves_the_previous_state(tmp_path: Path, rule: str) -> None:
    project = write_project(tmp_path / "p", GOOD_ROWS, rule_expect(rule, "fail"))
    store = applied(project)
    store.materialize(end=END)
    before = online(store)
    latest = offline_table(project, "SELECT * FROM features_user_txn ORDER BY user_id")
    runs = offline_table(project, "SELECT view, end_us FROM featurestore_view_runs")
    write_rows(project, [*GOOD_ROWS, BAD_ROWS[rule]])
    with pytest.raises(ExpectationError) as caught:
        store.materialize(end=LATER_END)
    message = str(caught.value)
    column = RULES[rule][0]
    assert f"source 'transactions' column '{column}' breaks {rule}" in message
    assert "1 of 6 rows" in message and "for example {" in message
    assert "nothing was changed" in message
    # States, latest values, watermarks and online values are those of the first run.
    assert online(store) == before
    assert offline_table(project, "SELECT * FROM features_user_txn ORDER BY user_id") == latest
    assert offline_table(project, "SELECT view, end_us FROM featurestore_view_runs") == runs
    # The failed run's verdict is kept, so a failed validation can be shown later.
    recorded = offline_table(project, f"SELECT rule, breaking, broken FROM {VALIDATIONS_TABLE} "
                                      "ORDER BY run_at")
    assert recorded == [(rule, 0, False), (rule, 1, True)]


def test_fail_within_tolerance_does_not_stop(tmp_path: Path) -> None:
    expect = "      amount: {not_null: 0.2, on_fail: fail}\n"
    project = write_project(tmp_path / "p", [*GOOD_ROWS, BAD_ROWS["not_null"]], expect)
    result = applied(project).materialize(end=END)  # 1 null in 6 rows: under 0.2
    assert not any("BROKEN" in line for line in result.expectations)


@pytest.mark.parametrize("rule", list(RULES))
def test_quarantine_keeps_the_rows_out_as_if_never_there(tmp_path: Path, rule: str) -> None:
    bad = BAD_ROWS[rule]
    project = write_project(tmp_path / "q", [*GOOD_ROWS, bad], rule_expect(rule, "quarantine"))
    clean = write_project(tmp_path / "clean", GOOD_ROWS)
    store, reference = applied(project), applied(clean)
    result = store.materialize(end=END)
    reference.materialize(end=END)
    assert "1 row newly quarantined (featurestore quarantine list)" in result.expectations
    assert online(store) == online(reference)
    spine = pd.DataFrame({"user_id": [1, 1, 2, 3, 3],
                          "event_ts": pd.to_datetime(["2024-01-01 04:00", "2024-01-05 00:00",
                                                      "2024-01-01 05:00", "2024-01-01 07:00",
                                                      "2024-01-09 00:00"])})
    pd.testing.assert_frame_equal(store.get_training_set(spine, features=FEATURES),
                                  reference.get_training_set(spine, features=FEATURES))
    pd.testing.assert_frame_equal(store.snapshot(at=END), reference.snapshot(at=END))
    report = store.verify(entities=3, at=END)
    assert report.values == 15 and report.mismatches == []
    groups = store.quarantine()
    assert [(g.source, g.column, g.rule, g.rows) for g in groups] == [
        ("transactions", RULES[rule][0], rule, 1)]
    rows = store.quarantined_rows("transactions")
    assert len(rows) == 1 and rows[0].as_json()["row"]["code"] == bad[4]


def test_quarantined_rows_are_recorded_once_across_runs(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", [*GOOD_ROWS, BAD_ROWS["range"]],
                            rule_expect("range", "quarantine"))
    store = applied(project)
    store.materialize(end=END)
    store.materialize(end=LATER_END)
    store.materialize(end=LATER_END, full=True)
    assert offline_table(project, f"SELECT count(*) FROM {QUARANTINE_TABLE}") == [(1,)]
    # A new breaking row is added by the next run, the old one is not repeated.
    write_rows(project, [*GOOD_ROWS, BAD_ROWS["range"],
                         (*BAD_ROWS["not_null"][:2], -1.0, "travel", "X-1")])
    store.materialize(end=LATER_END, full=True)
    assert offline_table(project, f"SELECT count(*) FROM {QUARANTINE_TABLE}") == [(2,)]


def test_feature_expectation_fail_publishes_nothing(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", GOOD_ROWS,
                            feature_expect="{range: [0, 60], on_fail: fail}")
    store = applied(project)
    store.materialize(end=END)  # sums 35.5, 43 and 7.25: in range
    before = online(store)
    write_rows(project, [*GOOD_ROWS, BAD_ROWS["range"]])  # user 1's sum leaves the range
    with pytest.raises(ExpectationError, match="feature user_txn:amount_sum_30d breaks "
                                               r"range \[0, 60\]: 1 of 3 rows"):
        store.materialize(end=LATER_END)
    assert online(store) == before


def test_feature_expectation_warn_is_reported(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", GOOD_ROWS, feature_expect="{range: [0, 10]}")
    result = applied(project).materialize(end=END)
    assert any("feature user_txn:amount_sum_30d: range [0, 10]: 2 of 3 rows" in line
               for line in result.expectations)


def test_freshness_and_row_count_change(tmp_path: Path) -> None:
    extra = ("    freshness: {max_age: 1d, on_fail: warn}\n"
             "    row_count_change: {max: 0.5, on_fail: fail}\n")
    project = write_project(tmp_path / "p", GOOD_ROWS, source_extra=extra)
    store = applied(project)
    first = store.materialize(end=END)
    # The newest event is from 2024: far older than a day.
    assert any("max_age 1d" in line and "BROKEN" in line for line in first.expectations)
    # 5 rows, then 5 + 3: a change of 0.6 > 0.5 stops the run.
    write_rows(project, [*GOOD_ROWS, *(BAD_ROWS[rule] for rule in ("range", "values", "regex"))])
    with pytest.raises(ExpectationError, match="row_count_change max 0.5: 8 rows, 5 at the "
                                               r"previous run \(change 0.6\)"):
        store.materialize(end=LATER_END)
    write_rows(project, [*GOOD_ROWS, BAD_ROWS["range"]])  # 6 rows: a change of 0.2
    store.materialize(end=LATER_END)


@pytest.mark.parametrize("policy", ["warn", "fail"])
def test_freshness_under_each_policy(tmp_path: Path, policy: str) -> None:
    extra = f"    freshness: {{max_age: 2h, on_fail: {policy}}}\n"
    project = write_project(tmp_path / "p", GOOD_ROWS, source_extra=extra)
    store = applied(project)
    if policy == "fail":
        with pytest.raises(ExpectationError, match="source 'transactions' breaks max_age 2h: "
                                                   "newest event 2024-01-03T00:00:00"):
            store.materialize(end=END)
        assert offline_table(project, "SELECT count(*) FROM featurestore_view_runs") == [(0,)]
        return
    result = store.materialize(end=END)
    assert [line.split(":")[0] for line in result.expectations] == [
        "BROKEN source 'transactions'"]


@pytest.mark.parametrize("policy", ["warn", "fail"])
def test_row_count_change_under_each_policy(tmp_path: Path, policy: str) -> None:
    extra = f"    row_count_change: {{max: 0.1, on_fail: {policy}}}\n"
    project = write_project(tmp_path / "p", GOOD_ROWS, source_extra=extra)
    store = applied(project)
    first = store.materialize(end=END)
    assert not any("BROKEN" in line for line in first.expectations)  # nothing to compare
    write_rows(project, GOOD_ROWS[:3])  # 5 rows, then 3: a change of 0.4
    if policy == "fail":
        with pytest.raises(ExpectationError, match=r"change 0.4"):
            store.materialize(end=LATER_END)
        # The count of the failed run is not kept: the next one still compares with 5.
        write_rows(project, GOOD_ROWS)
        store.materialize(end=LATER_END)
        return
    second = store.materialize(end=LATER_END)
    assert any("row_count_change max 0.1: 3 rows, 5 at the previous run" in line
               for line in second.expectations)
