"""Expectations in registry.yaml: every mistake is reported where it is, saying what
was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.errors import RegistryError
from featurestore.registry import parse_registry
from tests.validation.projects import GOOD_ROWS, registry_text, write_project


def problems(expect: str = "", source_extra: str = "", feature_expect: str = "") -> list[str]:
    with pytest.raises(RegistryError) as caught:
        parse_registry(registry_text(expect, source_extra, feature_expect))
    return caught.value.problems


# Line 10 of the file holds `expect:`, line 11 its first column.
@pytest.mark.parametrize(("line", "message"), [
    ("amount: {rnage: [0, 1]}",
     "registry.yaml:11:16: sources.transactions.expect.amount.rnage: unknown key 'rnage' "
     "(did you mean 'range'?)"),
    ("amount: {range: [5, 1]}",
     "registry.yaml:11:23: sources.transactions.expect.amount.range: range [5, 1] is empty: "
     "the lowest value is above the highest"),
    ("amount: {range: [0]}",
     "registry.yaml:11:23: sources.transactions.expect.amount.range: range is [lowest, "
     "highest], two numbers, got [the number 0]"),
    ("amount: {range: [0, high]}",
     "registry.yaml:11:23: sources.transactions.expect.amount.range: range is [lowest, "
     "highest], two numbers, got [the number 0, 'high']"),
    ("amount: {not_null: 1.5}",
     "registry.yaml:11:26: sources.transactions.expect.amount.not_null: not_null is the "
     "largest fraction of nulls allowed, a number from 0 to 1 (0: no nulls), got the "
     "number 1.5"),
    ("code: {regex: 'A-[0-9'}",
     "registry.yaml:11:21: sources.transactions.expect.code.regex: invalid regex 'A-[0-9': "
     "unterminated character set at position 2"),
    ("merchant_category: {values: []}",
     "registry.yaml:11:35: sources.transactions.expect.merchant_category.values: values is "
     "a non-empty list of the values allowed, got an empty list"),
    ("amount: {range: [0, 1], on_fail: drop}",
     "registry.yaml:11:40: sources.transactions.expect.amount.on_fail: unknown on_fail "
     "'drop': expected warn, fail or quarantine"),
    ("amount: {range: [0, 1], on_fail: quarantin}",
     "registry.yaml:11:40: sources.transactions.expect.amount.on_fail: unknown on_fail "
     "'quarantin': expected warn, fail or quarantine (did you mean 'quarantine'?)"),
    ("amount: {on_fail: fail}",
     "registry.yaml:11:7: sources.transactions.expect.amount: give at least one rule: "
     "not_null, range, values, regex, unique"),
])
def test_column_rule_mistakes_are_located(line: str, message: str) -> None:
    assert problems(f"      {line}\n") == [message]


def test_quarantine_is_refused_where_no_row_can_be_kept_out() -> None:
    extra = "    freshness: {max_age: 2h, on_fail: quarantine}\n"
    assert problems(source_extra=extra) == [
        "registry.yaml:10:39: sources.transactions.freshness.on_fail: quarantine applies to "
        "source columns (sources.<name>.expect), where rows can be kept out; freshness can "
        "warn or fail"]
    assert problems(feature_expect="{range: [0, 1], on_fail: quarantine}") == [
        "registry.yaml:16:94: feature_views.user_txn.features.amount_sum_30d.expect.on_fail: "
        "quarantine applies to source columns (sources.<name>.expect), where rows can be kept "
        "out; a feature's expectations can warn or fail"]
    extra = "    row_count_change: {max: -1}\n"
    assert problems(source_extra=extra) == [
        "registry.yaml:10:29: sources.transactions.row_count_change.max: max is the largest "
        "relative change allowed, a number of at least 0 (0.5: half), got the number -1"]


def test_columns_are_checked_against_the_source_at_plan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    expect = ("      amout: {not_null: 0}\n"
              "      merchant_category: {range: [0, 1]}\n")
    project = write_project(tmp_path / "p", GOOD_ROWS, expect)
    with pytest.raises(RegistryError) as caught:
        FeatureStore(project).plan()
    assert caught.value.problems == [
        "registry.yaml:11:7: sources.transactions.expect.amout: source 'transactions' has no "
        "column 'amout' (did you mean 'amount'?)",
        "registry.yaml:12:34: sources.transactions.expect.merchant_category.range: range "
        "applies to number columns; column 'merchant_category' of source 'transactions' is "
        "VARCHAR",
    ]


def test_row_count_change_cannot_quarantine() -> None:
    extra = "    row_count_change: {max: 0.5, on_fail: quarantine}\n"
    assert problems(source_extra=extra) == [
        "registry.yaml:10:43: sources.transactions.row_count_change.on_fail: quarantine "
        "applies to source columns (sources.<name>.expect), where rows can be kept out; "
        "row_count_change can warn or fail"]
