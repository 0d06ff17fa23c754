"""Transform definitions in registry.yaml: mistakes are reported where they are
(file:line:col), and a service's list form stays valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.errors import RegistryError
from featurestore.registry import parse_registry
from tests.projects import DEMO_TEXT, write_demo_project

LAST = "      amount_z_filled: {fn: impute, of: amount_z, strategy: median}\n"
LINE = DEMO_TEXT.splitlines().index(LAST.rstrip("\n")) + 2  # the line added after LAST


def with_transform(line: str) -> str:
    assert LAST in DEMO_TEXT
    return DEMO_TEXT.replace(LAST, LAST + line, 1)


def problems_of(text: str) -> list[str]:
    with pytest.raises(RegistryError) as caught:
        parse_registry(text)
    return caught.value.problems


@pytest.mark.parametrize(("line", "where", "says"), [
    ("      bad: {fn: zscor, of: amount_sum_7d}\n", f"{LINE}:17",
     ["unknown transform function 'zscor'", "did you mean 'zscore'?"]),
    ("      bad: {fn: zscore, of: amount_sum_7d, buckets: 3}\n", f"{LINE}:7",
     ["'buckets' does not apply to zscore"]),
    ("      bad: {fn: quantile_bucket, of: amount_sum_7d}\n", f"{LINE}:7",
     ["quantile_bucket needs 'buckets'"]),
    ("      bad: {fn: zscore, of: amount_mean_30d}\n", f"{LINE}:29",
     ["'amount_mean_30d' is not a feature of service 'fraud_v1'", "did you mean"]),
    ("      txn_count_1h: {fn: zscore, of: amount_sum_7d}\n", f"{LINE}:7",
     ["transform name 'txn_count_1h' is already the name of a feature of service"]),
])
def test_mistakes_are_located(line: str, where: str, says: list[str]) -> None:
    problems = problems_of(with_transform(line))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"registry.yaml:{where}: services.fraud_v1.transforms."), (
        problems[0])
    for words in says:
        assert words in problems[0]


def test_the_list_form_of_a_service_stays_valid() -> None:
    text = DEMO_TEXT.replace("services:\n", "services:\n  plain: [user_txn:txn_count_1h, "
                             "user_txn:amount_sum_7d]\n", 1)
    registry = parse_registry(text)
    assert not registry.services["plain"].transforms
    assert registry.services["fraud_v1"].transforms


def test_apply_refuses_a_transform_of_the_wrong_type(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    text = with_transform("      cat_z: {fn: zscore, of: last_category}\n")
    folder = write_demo_project(tmp_path / "project", text, events=200, users=5)
    with pytest.raises(RegistryError) as caught:
        FeatureStore(folder).apply()
    [problem] = caught.value.problems
    assert f"registry.yaml:{LINE}:" in problem
    assert "zscore takes float or int features; 'user_txn:last_category' is string" in problem
