"""Bearer tokens in the offline DuckDB file: create, list, revoke, last use (SDK)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from featurestore import FeatureStore
from featurestore.errors import InputError
from featurestore.tokens import TOKENS_TABLE, active_tokens, used_folder, write_last_use
from tests.projects import write_demo_project


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FeatureStore:
    """A demo project that was never applied: its offline file does not exist yet."""
    for name in ("FEATURESTORE_REGISTRY", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE"):
        monkeypatch.delenv(name, raising=False)
    return FeatureStore(write_demo_project(tmp_path / "demo", events=100, users=5, days=2))


def stored_rows(store: FeatureStore) -> list[tuple]:
    with duckdb.connect(str(store.offline_path), read_only=True) as connection:
        return connection.execute(f"SELECT * FROM {TOKENS_TABLE}").fetchall()


def test_only_the_hash_is_stored_and_the_file_is_created(store: FeatureStore) -> None:
    assert not store.offline_path.exists()
    token = store.create_token("reader", ["read"])
    assert token.startswith("fst_") and len(token) == 4 + 43
    [row] = stored_rows(store)
    assert hashlib.sha256(token.encode()).hexdigest() in row
    assert not any(token in str(value) for value in row)
    # The file is still an offline store that apply accepts.
    assert store.apply().applied


def test_list_shows_names_scopes_and_status_never_the_token(store: FeatureStore) -> None:
    before = datetime.now(UTC)
    reader = store.create_token("reader", ["read"])
    store.create_token("pusher", ["push", "read", "push"])  # order and repeats do not matter
    [first, second] = store.list_tokens()
    assert (first.name, first.scopes, first.active, first.last_used) == (
        "reader", ("read",), True, None)
    assert (second.name, second.scopes) == ("pusher", ("read", "push"))
    assert before - timedelta(seconds=1) <= first.created_at <= datetime.now(UTC)
    assert reader not in repr(store.list_tokens())
    assert all(not hasattr(info, "token_hash") for info in store.list_tokens())


@pytest.mark.parametrize(("name", "scopes", "message"), [
    ("reader", ["raed"],
     "unknown scope 'raed' (did you mean 'read'?); scopes: read, push, metrics"),
    ("reader", [], "a token needs at least one scope: read, push, metrics"),
    ("my-token", ["read"], "'my-token' is not a valid token name: use letters, digits and "
                           "underscores, not starting with a digit (at most 64)"),
    ("1st", ["read"], "'1st' is not a valid token name"),
    ("x" * 65, ["read"], f"'{'x' * 65}' is not a valid token name"),
])
def test_invalid_names_and_scopes(store: FeatureStore, name: str, scopes: list[str],
                                  message: str) -> None:
    with pytest.raises(InputError) as caught:
        store.create_token(name, scopes)
    assert str(caught.value).startswith(message)
    assert store.list_tokens() == []


def test_one_scope_may_be_a_plain_string(store: FeatureStore) -> None:
    store.create_token("reader", "read")
    assert store.list_tokens()[0].scopes == ("read",)


def test_an_active_name_is_taken_until_revoked(store: FeatureStore) -> None:
    old = store.create_token("reader", ["read"])
    with pytest.raises(InputError, match="an active token named 'reader' exists: revoke it"):
        store.create_token("reader", ["read"])
    store.revoke_token("reader")
    new = store.create_token("reader", ["read", "push"])
    assert new != old
    infos = store.list_tokens()
    assert [(info.name, info.active) for info in infos] == [("reader", False),
                                                            ("reader", True)]
    assert infos[0].revoked_at is not None and infos[1].scopes == ("read", "push")
    [active] = active_tokens(store.offline_database())
    assert active.token_hash == hashlib.sha256(new.encode()).hexdigest()


def test_revoking_an_unknown_or_revoked_name_says_so(store: FeatureStore) -> None:
    with pytest.raises(InputError, match="no token named 'reader': none was ever created"):
        store.revoke_token("reader")
    store.create_token("reader", ["read"])
    with pytest.raises(InputError, match=r"^no active token named 'raeder' \(did you mean "
                                         r"'reader'\?\)$"):
        store.revoke_token("raeder")
    store.revoke_token("reader")
    with pytest.raises(InputError, match=r"^the token 'reader' is already revoked$"):
        store.revoke_token("reader")


def test_last_use_is_the_newest_written_and_not_inherited(store: FeatureStore) -> None:
    store.create_token("reader", ["read"])
    [token] = active_tokens(store.offline_database())
    folder = used_folder(store.offline_path)
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    write_last_use(folder, token, moment)
    write_last_use(folder, token, moment - timedelta(seconds=3))  # another process, older
    assert store.list_tokens()[0].last_used == moment
    assert [path.name for path in folder.iterdir()] == [f"reader.{token.token_id}"]
    # A new token of the same name starts without a last use.
    store.revoke_token("reader")
    store.create_token("reader", ["read"])
    assert [info.last_used for info in store.list_tokens()] == [moment, None]


def test_a_missing_offline_file_lists_nothing(store: FeatureStore) -> None:
    assert store.list_tokens() == []
    assert not store.offline_path.exists()
