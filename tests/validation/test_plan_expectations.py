"""What an expectation change makes stale: only quarantine rules change which rows
features read; warn and fail rules, freshness and feature rules change no state."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore import FeatureStore
from tests.validation.projects import END, GOOD_ROWS, LATER_END, registry_text, write_project

EXPECT = ("      amount: {range: [0, 100000], on_fail: quarantine}\n"
          "      code: {regex: '[A-Z]-[0-9]+', on_fail: warn}\n")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    directory = write_project(tmp_path / "p", GOOD_ROWS, EXPECT)
    store = FeatureStore(directory)
    store.apply()
    store.materialize(end=END)
    return directory


def edit(project: Path, expect: str, source_extra: str = "", feature_expect: str = "") -> None:
    (project / "registry.yaml").write_text(registry_text(expect, source_extra, feature_expect))


def test_warn_fail_freshness_and_feature_rules_make_nothing_stale(project: Path) -> None:
    edit(project, EXPECT.replace("on_fail: warn", "on_fail: fail"),
         "    freshness: {max_age: 3d}\n", "{range: [0, 100]}")
    plan = FeatureStore(project).plan()
    assert plan.stale_views == ()
    text = plan.render()
    assert "code: {regex: [A-Z]-[0-9]+, on_fail: fail}}" in text
    assert "freshness (none) → {max_age: 3d, on_fail: warn}" in text
    assert "expect (none) → {range: [0, 100], on_fail: warn}" in text
    store = FeatureStore(project)
    store.apply()
    run = store.materialize(end=LATER_END).views[0]
    assert run.incremental


def test_a_quarantine_rule_change_rebuilds_the_views_over_the_source(project: Path) -> None:
    edit(project, EXPECT.replace("[0, 100000]", "[0, 30]"))
    assert FeatureStore(project).plan().offline_stale_views == ("user_txn",)
    store = FeatureStore(project)
    store.apply()
    run = store.materialize(end=LATER_END).views[0]
    assert not run.incremental and run.rebuild == "its definitions changed"
    assert run.events == 4  # the 40.0 event is now quarantined
