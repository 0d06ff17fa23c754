"""The registry's `drift:` section: defaults, partial settings, and located errors (one
mistake per file in tests/registry/broken_drift/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.errors import RegistryError
from featurestore.registry import load_registry, parse_registry
from featurestore.registry.drift_settings import DriftSettings
from tests.projects import DEMO_TEXT

BROKEN = Path(__file__).parent / "broken_drift"

EXPECTED = {
    "threshold_zero.yaml": "31:7: drift.ks: Input should be greater than 0",
    "unknown_key.yaml": "30:3: drift.pis: unknown key 'pis' (did you mean 'psi'?)",
    "not_a_number.yaml": "30:7: drift.js: Input should be a valid number, unable to parse "
    "string as a number",
}


def test_without_the_section_the_defaults_apply() -> None:
    drift = parse_registry(DEMO_TEXT).drift
    assert drift == DriftSettings()
    assert (drift.psi, drift.ks, drift.linf, drift.js) == (0.2, 0.1, 0.1, 0.1)


def test_keys_left_out_keep_their_defaults() -> None:
    drift = parse_registry(DEMO_TEXT + "drift:\n  psi: 0.3\n  js: 0.05\n").drift
    assert (drift.psi, drift.ks, drift.linf, drift.js) == (0.3, 0.1, 0.1, 0.05)
    assert drift.threshold("js") == 0.05


def test_every_broken_file_has_an_expected_message() -> None:
    assert sorted(path.name for path in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_broken_drift_section_gives_its_located_message(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    with pytest.raises(RegistryError) as caught:
        load_registry(name)
    assert caught.value.problems == [f"{name}:{EXPECTED[name]}"]
