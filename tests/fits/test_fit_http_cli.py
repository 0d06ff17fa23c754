"""Fitted transforms over HTTP (POST /online-features with "transformed" and "fit") and
on the command line (fit, list fits, pin-fit, training-set --transformed)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.sample_spine import sample_spine
from featurestore.serving.server import create_app
from tests.fits.helpers import SERVICE, TRANSFORMED, training_spine
from tests.projects import write_demo_project
from tests.serving.conftest import DEMO_END

AT = (DEMO_END + timedelta(minutes=10)).isoformat()
LOOKUP = {"service": SERVICE, "entities": {"user_id": [1, 2, 10_000_000]},
          "request": {"amount_now": [10.0, None, 30.0]}, "at": AT, "transformed": True}


def error_of(response: object) -> tuple[int, str, str]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    return response.status_code, body["error"]["code"], body["error"]["message"]  # type: ignore[attr-defined]


def test_transformed_lookups_over_http(demo_store: FeatureStore) -> None:
    with TestClient(create_app(demo_store)) as client:
        status, code, message = error_of(client.post("/online-features", json=LOOKUP))
        assert (status, code) == (409, "not_fitted")
        assert "`featurestore fit --service fraud_v1" in message

        first = demo_store.fit(SERVICE, training_spine(demo_store, seed=1)).artifact
        second = demo_store.fit(SERVICE, training_spine(demo_store, rows=150, seed=3)).artifact
        assert first.id != second.id

        response = client.post("/online-features", json=LOOKUP)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["fit"] == first.id
        expected = demo_store.get_online_features(**LOOKUP)
        assert body["features"] == expected
        assert set(TRANSFORMED) <= set(body["features"])
        assert body["features"]["category_idx"][2] is None

        # A named fit: an id, a prefix of one, "latest".
        for name in (second.id, second.id[:6], "latest"):
            named = client.post("/online-features", json={**LOOKUP, "fit": name})
            assert named.status_code == 200, named.text
            assert named.json()["fit"] == second.id
        assert named.json()["features"] == demo_store.get_online_features(
            **LOOKUP, fit=second.id)
        with_metadata = client.post("/online-features",
                                    json={**LOOKUP, "include_metadata": True}).json()
        assert with_metadata["fit"] == first.id

        # Not transformed: no "fit" in the answer.
        plain = client.post("/online-features", json={**LOOKUP, "transformed": False})
        assert plain.status_code == 200 and "fit" not in plain.json()
        assert not set(TRANSFORMED) & set(plain.json()["features"])

        status, code, message = error_of(
            client.post("/online-features", json={**LOOKUP, "fit": "ffffffffffffffff"}))
        assert (status, code) == (404, "unknown_fit")
        assert "ffffffffffffffff" in message
        assert error_of(client.post("/online-features",
                                    json={**LOOKUP, "transformed": "yes"}))[:2] == (
            400, "invalid_body")
        assert error_of(client.post("/online-features", json={**LOOKUP, "fit": 3}))[0] == 400

        demo_store.pin_fit(SERVICE, second.id)
        assert client.post("/online-features", json=LOOKUP).json()["fit"] == second.id


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    folder = write_demo_project(tmp_path / "project", events=800, users=15)
    events = folder / "data" / "transactions.parquet"
    pq.write_table(sample_spine(events, 120, seed=1), folder / "spine.parquet")
    pq.write_table(sample_spine(events, 80, seed=2), folder / "other.parquet")
    monkeypatch.chdir(folder)
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def fit_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    found = re.match(r"fit ([0-9a-f]{16}) of service fraud_v1: ", result.stdout)
    assert found, result.stdout
    return found.group(1)


def test_fit_list_pin_and_transformed_training_sets(project: Path) -> None:
    assert run("apply").exit_code == 0
    first = fit_id(run("fit", "--service", SERVICE, "--spine", "spine.parquet"))
    assert "pinned" in run("fit", "--service", SERVICE, "--spine", "spine.parquet").stdout
    assert fit_id(run("fit", "--service", SERVICE, "--spine", "spine.parquet")) == first
    second = fit_id(run("fit", "--service", SERVICE, "--spine", "other.parquet", "--no-pin"))
    assert second != first
    store = FeatureStore(project)
    assert [fit.id for fit in store.list_fits(SERVICE)] == [second, first]
    assert store.pinned_fits() == {SERVICE: first}

    listed = run("list", "fits")
    assert listed.exit_code == 0, listed.output
    assert first in listed.stdout and second in listed.stdout

    pinned = run("pin-fit", SERVICE, "latest")
    assert pinned.exit_code == 0, pinned.output
    assert f"service {SERVICE} is now served by fit {second}" in pinned.stdout
    assert FeatureStore(project).pinned_fits() == {SERVICE: second}
    assert run("pin-fit", SERVICE, first[:7]).exit_code == 0
    assert FeatureStore(project).pinned_fits() == {SERVICE: first}
    unknown = run("pin-fit", SERVICE, "0123456789abcdef")
    assert unknown.exit_code != 0 and "featurestore list fits" in unknown.output

    written = run("training-set", "--spine", "spine.parquet", "--service", SERVICE,
                  "--transformed", "--out", "x.parquet")
    assert written.exit_code == 0, written.output
    columns = pq.read_schema(project / "x.parquet").names
    assert set(TRANSFORMED) <= set(columns)
    assert any(name.startswith("category_onehot__") for name in columns)
    expected = FeatureStore(project).get_training_set(
        pq.read_table(project / "spine.parquet"), service=SERVICE, transformed=True,
        output="arrow")
    assert pq.read_table(project / "x.parquet").equals(expected)

    by_second = run("training-set", "--spine", "spine.parquet", "--service", SERVICE,
                    "--transformed", "--fit", second, "--out", "y.parquet")
    assert by_second.exit_code == 0, by_second.output
    assert not pq.read_table(project / "y.parquet").equals(expected)

    saved = run("training-set", "--spine", "spine.parquet", "--service", SERVICE,
                "--transformed", "--name", "fraud_t")
    assert saved.exit_code == 0, saved.output
    # Another pin does not change what the saved set reproduces: it names its fit.
    assert run("pin-fit", SERVICE, second).exit_code == 0
    reproduced = run("training-set", "--reproduce", "fraud_t")
    assert reproduced.exit_code == 0, reproduced.output
    assert "byte for byte the same" in reproduced.stdout
