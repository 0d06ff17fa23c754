"""Behaviour only Redis has: outages and recovery, optimistic retries, bulk loading."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from counter_worker import increment

from featurestore.errors import OnlineStoreUnavailable, RegistryError
from featurestore.online import LocalOnlineStore, RedisOnlineStore, open_online_store

if TYPE_CHECKING:
    from tests.conftest import RedisServer

PROJECT = "test_project"


def test_outage_raises_unavailable_and_the_same_store_recovers(
    clean_redis: RedisServer, tmp_path: Path
) -> None:
    store = open_online_store(clean_redis.url, tmp_path, PROJECT)
    store.write_version("v1", [("a", (1,), b"before")])
    store.publish("v1")
    assert store.read([("a", (1,))]).states == [b"before"]

    clean_redis.stop()
    try:
        started = time.monotonic()
        for call in (lambda: store.read([("a", (1,))]), lambda: store.update("a", (1,), increment),
                     store.ping, store.current_version, lambda: store.write_version("v2", [])):
            with pytest.raises(OnlineStoreUnavailable, match="is unavailable"):
                call()
        # A refused connection fails at once: no retry storm with backoff.
        assert time.monotonic() - started < 3.0
    finally:
        clean_redis.start()

    # Same object, no reconnect by hand. The restarted server is empty (nothing saved).
    assert store.ping() is True
    assert store.read([("a", (1,))]).states == [None]
    assert store.update("a", (1,), increment) is None  # nothing loaded: nothing to update
    store.write_version("v2", [("a", (1,), b"after")])
    store.publish("v2")
    assert store.update("a", (1,), lambda state: state + b"!") == b"after!"
    assert store.read([("a", (1,))]).states == [b"after!"]
    store.close()


def test_an_update_racing_a_publish_is_retried_on_the_new_version(
    clean_redis: RedisServer, tmp_path: Path
) -> None:
    store = open_online_store(clean_redis.url, tmp_path, PROJECT)
    other = open_online_store(clean_redis.url, tmp_path, PROJECT)
    store.write_version("v1", [("a", (1,), b"1")])
    store.publish("v1")
    other.write_version("v2", [("a", (1,), b"2")])
    seen: list[bytes | None] = []

    def append_and_publish_once(state: bytes | None) -> bytes:
        seen.append(state)
        if len(seen) == 1:
            other.publish("v2")  # lands between this update's read and its commit
        return (state or b"") + b"+"

    assert store.update("a", (1,), append_and_publish_once) == b"2+"
    assert seen == [b"1", b"2"]
    assert store.read([("a", (1,))]).states == [b"2+"]
    store.close()
    other.close()


def test_messages_never_show_the_password(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    store = RedisOnlineStore(f"redis://user:s3cret@127.0.0.1:{closed_port}/0", PROJECT)

    with pytest.raises(OnlineStoreUnavailable) as raised:
        store.ping()

    assert "s3cret" not in str(raised.value)
    assert f"redis://user:***@127.0.0.1:{closed_port}/0" in str(raised.value)


def test_factory_picks_the_backend_from_the_setting(tmp_path: Path) -> None:
    local = open_online_store("local", tmp_path, PROJECT)
    assert isinstance(local, LocalOnlineStore)
    assert local.path == tmp_path / "online.sqlite"
    local.close()
    assert isinstance(open_online_store("redis://127.0.0.1:1/0", tmp_path, PROJECT),
                      RedisOnlineStore)
    with pytest.raises(RegistryError, match="expected 'local' or a URL"):
        open_online_store("postgres://user:pw@host/db", tmp_path, PROJECT)
    with pytest.raises(RegistryError, match=r"'postgres://\.\.\.'"):
        open_online_store("postgres://user:pw@host/db", tmp_path, PROJECT)


@pytest.mark.slow
def test_loads_100k_entities_quickly(clean_redis: RedisServer, tmp_path: Path) -> None:
    store = open_online_store(clean_redis.url, tmp_path, PROJECT)
    count = 100_000
    state = bytes(range(256)) * 2
    started = time.monotonic()

    written = store.write_version("v1", (("user_txn", (user,), state) for user in range(count)))
    store.publish("v1")
    elapsed = time.monotonic() - started

    assert written == count
    assert store.read([("user_txn", (user,)) for user in range(0, count, 997)]).states == [
        state] * len(range(0, count, 997))
    # The contract is well under 10 s; this bound only catches a lost pipeline.
    assert elapsed < 10.0
    store.close()
