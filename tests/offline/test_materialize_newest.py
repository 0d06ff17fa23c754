"""Newest event times kept with the states: older offline files and online versions
published before them keep working, with the times unknown until refolded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from featurestore import FeatureStore
from featurestore.offline.materialize import RUNS_TABLE, STATES_TABLE
from featurestore.online.entity_keys import decode_entity_key
from featurestore.online.published import (
    REGISTRY,
    STATE_FORMAT,
    dictionary_name,
    end_name,
    state_name,
)
from tests.conftest import OnlineBackend
from tests.serving.conftest import DEMO_END, make_demo_store

AT = DEMO_END + timedelta(days=1)
USERS = [1, 2, 3, 999_999]


@pytest.fixture
def demo_store(online_backend: OnlineBackend, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[FeatureStore]:
    """A materialized demo project on each online store backend."""
    for name in ("FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE", "FEATURESTORE_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    store = make_demo_store(tmp_path / "demo", online_backend.setting)
    yield store
    store.close()


def metadata_of(store: FeatureStore, users: list[int]) -> dict:
    return store.get_online_features(features=["user_txn:txn_count_1h"],
                                     entities={"user_id": users}, at=AT,
                                     include_metadata=True)["metadata"]["views"]["user_txn"]


def test_an_offline_file_without_newest_times_is_upgraded(demo_store: FeatureStore) -> None:
    with duckdb.connect(str(demo_store.offline_path)) as con:
        con.execute(f"ALTER TABLE {STATES_TABLE} DROP COLUMN newest_us")
    demo_store.push("transactions", [{"user_id": 2, "event_ts": DEMO_END + timedelta(hours=1),
                                      "amount": 3.0, "merchant_category": "fuel"}])
    demo_store.materialize(end=DEMO_END + timedelta(hours=2))
    view = metadata_of(demo_store, USERS)
    # The file had no times: only the entity folded again (user 2) has one now.
    assert view["status"] == ["found", "found", "found", "not_found"]
    assert view["newest_event"] == [None, DEMO_END + timedelta(hours=1), None, None]


def test_an_online_version_of_bare_states_reads_unknown_times(demo_store: FeatureStore) -> None:
    online = demo_store.online_store()
    names = [REGISTRY, state_name("user_txn"), end_name("user_txn"),
             dictionary_name("user_txn")]
    metadata = online.read([], names).metadata
    assert online.read([], [STATE_FORMAT]).metadata[STATE_FORMAT] is not None
    with duckdb.connect(str(demo_store.offline_path), read_only=True) as con:
        rows = con.execute(f"SELECT view, entity, state FROM {STATES_TABLE}").fetchall()
        assert con.execute(f"SELECT count(*) FROM {RUNS_TABLE}").fetchone()[0] == 1
    # As a materialization before newest times published it: bare states, no format.
    online.write_version("legacy", [(view, decode_entity_key(entity), bytes(state))
                                    for view, entity, state in rows],
                         {name: value for name, value in metadata.items() if value is not None})
    online.publish("legacy")
    expected = demo_store.get_online_features(features=["user_txn:amount_sum_7d"],
                                              entities={"user_id": USERS}, at=AT)
    view = metadata_of(demo_store, USERS)
    assert view["status"] == ["found", "found", "found", "not_found"]
    assert view["newest_event"] == [None] * 4
    # A push keeps writing bare states there, and values stay right.
    demo_store.push("transactions", [{"user_id": 1, "event_ts": DEMO_END + timedelta(hours=1),
                                      "amount": 5.0, "merchant_category": "fuel"}])
    after = demo_store.get_online_features(features=["user_txn:amount_sum_7d"],
                                           entities={"user_id": USERS}, at=AT)
    assert after["amount_sum_7d"][0] == expected["amount_sum_7d"][0] + 5.0
    assert after["amount_sum_7d"][1:] == expected["amount_sum_7d"][1:]
    assert metadata_of(demo_store, USERS)["newest_event"] == [None] * 4
    # The next materialization publishes states with their times again.
    demo_store.materialize(end=DEMO_END + timedelta(hours=2))
    assert metadata_of(demo_store, [1])["newest_event"] == [DEMO_END + timedelta(hours=1)]
