"""String request fields: online lookups (SDK and HTTP) equal training sets, and values
that are not strings are refused with a coded 4xx."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore, InputError
from featurestore.errors import RegistryError
from featurestore.registry.validation import parse_registry
from featurestore.serving.errors import RequestError
from featurestore.serving.server import create_app
from tests.projects import DEMO_TEXT, write_demo_project
from tests.serving.conftest import DEMO_END

STRING_VIEW = """\
  txn_strings:
    request:
      country: string
      channel: string
      amount_now: float64
    features:
      is_fr: "country == 'FR'"
      eu: "lower(country) in ['fr', 'de', 'es']"
      not_web: "channel not in ['web']"
      country_length: "length(country)"
      app_amount: "where(startswith(lower(channel), 'app'), amount_now, 0.0)"
      scaled: "coalesce(length(channel), 0) * user_txn.amount_mean_30d"
      no_channel: "isnull(channel)"
"""
FEATURES = ["user_txn:amount_mean_30d", *(f"txn_strings:{name}" for name in (
    "is_fr", "eu", "not_web", "country_length", "app_amount", "scaled", "no_channel"))]
USERS = [1, 2, 3, 4, 10_000_000]
COUNTRIES = ["FR", "de", None, "US", "Es"]
CHANNELS = ["App-iOS", None, "web", "WEB", "app"]
AMOUNTS = [10.0, 20.0, None, 40.0, 50.0]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    directory = tmp_path_factory.mktemp("strings")
    text = DEMO_TEXT.replace("request_views:\n", "request_views:\n" + STRING_VIEW, 1)
    write_demo_project(directory, text, events=1_500, users=20, days=30)
    store = FeatureStore(directory)
    store.apply()
    store.materialize(end=DEMO_END)
    return store


def _same(online: object, offline: object) -> bool:
    if offline is None or (isinstance(offline, float) and math.isnan(offline)):
        return online is None
    return online == offline


def test_online_string_features_equal_the_training_set(store: FeatureStore) -> None:
    request = {"country": COUNTRIES, "channel": CHANNELS, "amount_now": AMOUNTS}
    online = store.get_online_features(features=FEATURES, entities={"user_id": USERS},
                                       request=request, at=DEMO_END)
    spine = pd.DataFrame({"user_id": USERS, "event_ts": [DEMO_END] * len(USERS), **request})
    offline = store.get_training_set(spine, features=FEATURES, output="arrow")
    expected = offline.drop_columns(["event_ts", *request]).to_pydict()
    assert list(online) == list(expected)
    for column, values in expected.items():
        for row, (got, want) in enumerate(zip(online[column], values, strict=True)):
            assert _same(got, want), (column, row, got, want)
    assert online["is_fr"] == [1.0, 0.0, None, 0.0, 0.0]
    assert online["eu"] == [1.0, 1.0, None, 0.0, 1.0]
    assert online["not_web"] == [1.0, None, 0.0, 1.0, 1.0]
    assert online["country_length"] == [2.0, 2.0, None, 2.0, 2.0]
    assert online["app_amount"] == [10.0, None, 0.0, 0.0, 50.0]
    assert online["no_channel"] == [0.0, 1.0, 0.0, 0.0, 0.0]


def test_a_spine_gives_string_fields_as_text(store: FeatureStore) -> None:
    spine = pd.DataFrame({"user_id": [1], "event_ts": [DEMO_END], "country": [7],
                          "channel": ["web"]})
    with pytest.raises(InputError, match="spine column 'country' has type int64, but request "
                                         "field 'country' is string: give text"):
        store.get_training_set(spine, features=["txn_strings:is_fr"])


def test_a_value_that_is_not_a_string_is_refused(store: FeatureStore) -> None:
    with pytest.raises(RequestError) as caught:
        store.get_online_features(features=["txn_strings:is_fr"], entities={},
                                  request={"country": ["FR", 3]})
    assert caught.value.code == "wrong_type"
    assert str(caught.value).endswith(
        "request field 'country' row 1: expected a string or null, got 3 (int)")


@pytest.fixture(scope="module")
def client(store: FeatureStore) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as test_client:
        yield test_client


def test_http_string_fields(client: TestClient, store: FeatureStore) -> None:
    body = {"features": ["txn_strings:eu", "txn_strings:is_fr"], "entities": {},
            "request": {"country": ["DE", None]}}
    answer = client.post("/online-features", content=orjson.dumps(body))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"features": {"eu": [1.0, None], "is_fr": [0.0, None]}}
    body["request"] = {"country": ["DE", 12.5]}
    answer = client.post("/online-features", content=orjson.dumps(body))
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "wrong_type"
    assert "request field 'country' row 1: expected a string or null, got 12.5" in \
        error["message"]


def test_string_and_its_synonyms_are_request_types() -> None:
    text = DEMO_TEXT.replace("amount_now: float64", "amount_now: str", 1)
    with pytest.raises(RegistryError) as caught:
        parse_registry(text, "registry.yaml")
    assert str(caught.value).endswith(
        "request_views.txn_context.request.amount_now: unknown type 'str': expected one of "
        "float64, float32, int64, int32, bool, timestamp, string (did you mean 'string'?)")


@pytest.mark.parametrize(("expression", "message"), [
    ("amount_now + country", "'+' needs a number, got string 'country'"),
    ("lower(3) == 'a'", "lower() needs a string, got int '3'"),
    ("lower(country)", "a request feature must be numeric, got string"),
])
def test_string_type_errors_are_located_in_the_registry(
        tmp_path: Path, expression: str, message: str) -> None:
    view = STRING_VIEW.replace('is_fr: "country == \'FR\'"', f'is_fr: "{expression}"')
    text = DEMO_TEXT.replace("request_views:\n", "request_views:\n" + view, 1)
    write_demo_project(tmp_path, text, events=100, users=5, days=3)
    with pytest.raises(RegistryError) as caught:
        FeatureStore(tmp_path).plan()
    assert "request_views.txn_strings.features.is_fr: " in str(caught.value)
    assert message in str(caught.value)


def test_the_openapi_example_of_a_string_service_is_a_valid_lookup(store: FeatureStore) -> None:
    from featurestore.serving.api_schema import lookup_example

    text = store.registry_text.replace(
        "services:\n", "services:\n  strings_v1: [txn_strings:is_fr, txn_strings:eu]\n", 1)
    (store.registry_path).write_text(text)
    edited = FeatureStore(store.registry_path)
    example = lookup_example(edited.registry, edited.kernels())
    assert example["service"] == "strings_v1"
    assert example["request"]["country"] == ["a"]
    answer = edited.get_online_features(**example, at=DEMO_END)
    assert answer["is_fr"] == [False]
