"""The online store contract, run against every backend (Redis and the local file)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from counter_worker import COUNTER_KEY, COUNTER_VIEW, increment

from featurestore.errors import InputError
from featurestore.online import OnlineStore

if TYPE_CHECKING:
    from tests.conftest import OnlineBackend

REPOSITORY = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("counter_worker.py")


def stage(store: OnlineStore, version: str, views: list[str], entities: list[tuple]) -> None:
    """Stage a version whose every blob and its metadata name the version."""
    items = ((view, entity, version.encode()) for view in views for entity in entities)
    store.write_version(version, items, {"watermark": version.encode()})


def test_round_trip_with_missing_keys(online_store: OnlineStore) -> None:
    items = [("user_txn", (1,), b"\x00state-1"), ("user_txn", (2,), b""),
             ("merchant", ("acme", 7), b"m" * 3000)]
    assert online_store.write_version("v1", items, {"dictionary": b"a\x00b"}) == 3
    online_store.publish("v1")

    result = online_store.read(
        [("user_txn", (2,)), ("merchant", ("acme", 7)), ("user_txn", (3,)),
         ("merchant", ("acme", 8)), ("other_view", (1,)), ("user_txn", (1,))],
        metadata_names=["dictionary", "absent"],
    )

    assert result.version == "v1"
    assert result.states == [b"", b"m" * 3000, None, None, None, b"\x00state-1"]
    assert result.metadata == {"dictionary": b"a\x00b", "absent": None}
    assert online_store.read([]).states == []
    assert online_store.current_version() == "v1"


def test_nothing_published_reads_none_and_updates_nothing(online_store: OnlineStore) -> None:
    stage(online_store, "staged", ["a"], [(1,)])

    result = online_store.read([("a", (1,))], ["watermark"])

    assert (result.version, result.states, result.metadata) == (None, [None], {"watermark": None})
    assert online_store.current_version() is None
    assert online_store.update("a", (1,), increment) is None
    assert online_store.write_metadata("watermark", b"x") is False
    online_store.publish("staged")
    assert online_store.read([("a", (1,))]).states == [b"staged"]


def test_staged_version_stays_invisible_until_published(online_store: OnlineStore) -> None:
    stage(online_store, "v1", ["a", "b"], [(1,), (2,)])
    online_store.publish("v1")
    stage(online_store, "v2", ["a", "b"], [(1,), (2,)])

    assert online_store.read([("a", (1,)), ("b", (2,))]).states == [b"v1", b"v1"]
    assert online_store.read_metadata("watermark") == b"v1"
    online_store.publish("v2")
    assert online_store.read([("a", (1,)), ("b", (2,))]).states == [b"v2", b"v2"]
    assert online_store.read_metadata("watermark") == b"v2"


def test_readers_never_see_a_mix_of_versions(online_backend: OnlineBackend) -> None:
    views = ["a", "b", "c"]
    entities = [(entity,) for entity in range(60)]
    requests = [(view, entity) for view in views for entity in entities]
    writer, reader = online_backend.open(), online_backend.open()
    stage(writer, "v0", views, entities)
    writer.publish("v0")
    stop = threading.Event()
    mixes: list[set] = []
    seen: set[bytes] = set()

    def read_continuously() -> None:
        while not stop.is_set():
            result = reader.read(requests, ["watermark"])
            values = {*result.states, result.metadata["watermark"]}
            if values != {(result.version or "").encode()}:
                mixes.append(values)
                return
            seen.update(values)

    thread = threading.Thread(target=read_continuously)
    thread.start()
    try:
        for number in range(1, 16):
            stage(writer, f"v{number}", views, entities)
            writer.publish(f"v{number}")
            # On a loaded machine the reader thread may get little time: let it see each
            # version before the next publish, so reads really do cross publishes.
            deadline = time.monotonic() + 5.0
            while f"v{number}".encode() not in seen and not mixes and time.monotonic() < deadline:
                time.sleep(0.001)
    finally:
        stop.set()
        thread.join()
        writer.close()
        reader.close()

    assert mixes == []
    # The check means something only if the reader really crossed publishes.
    assert len(seen) >= 3


def test_publish_drops_every_other_version(online_backend: OnlineBackend) -> None:
    with online_backend.open() as store:
        stage(store, "v1", ["a"], [(1,), (2,)])
        store.publish("v1")
        stage(store, "abandoned", ["a"], [(3,)])
        stage(store, "v2", ["a"], [(1,)])
        assert online_backend.stored_versions() == {"v1", "abandoned", "v2"}

        store.publish("v2")

        assert online_backend.stored_versions() == {"v2"}
        assert store.read([("a", (1,)), ("a", (2,))]).states == [b"v2", None]


def test_discard_drops_a_staged_version(online_backend: OnlineBackend) -> None:
    with online_backend.open() as store:
        stage(store, "v1", ["a"], [(1,)])
        store.publish("v1")
        stage(store, "failed", ["a"], [(1,), (2,)])

        store.discard("failed")

        assert online_backend.stored_versions() == {"v1"}
        with pytest.raises(ValueError, match="not staged"):
            store.publish("failed")
        with pytest.raises(ValueError, match="published one"):
            store.discard("v1")


def test_write_version_streams_large_generators(online_store: OnlineStore) -> None:
    count = 12_345
    items = (("a", (entity,), entity.to_bytes(4, "big")) for entity in range(count))

    assert online_store.write_version("v1", items) == count
    online_store.publish("v1")

    states = online_store.read([("a", (entity,)) for entity in range(count)]).states
    assert states == [entity.to_bytes(4, "big") for entity in range(count)]


def test_updates_modify_the_published_version(online_store: OnlineStore) -> None:
    online_store.write_version("v1", [(COUNTER_VIEW, COUNTER_KEY, increment(None))])
    online_store.publish("v1")

    assert online_store.update(COUNTER_VIEW, COUNTER_KEY, increment) == increment(increment(None))
    online_store.write_version("v2", [(COUNTER_VIEW, COUNTER_KEY, (40).to_bytes(8, "big"))])
    online_store.publish("v2")
    online_store.update(COUNTER_VIEW, COUNTER_KEY, increment)
    online_store.update(COUNTER_VIEW, (2,), increment)

    states = online_store.read([(COUNTER_VIEW, COUNTER_KEY), (COUNTER_VIEW, (2,))]).states
    assert states == [(41).to_bytes(8, "big"), (1).to_bytes(8, "big")]


def test_concurrent_thread_updates_lose_nothing(online_store: OnlineStore) -> None:
    online_store.write_version("v1", [])
    online_store.publish("v1")
    threads, per_thread = 4, 60

    def work() -> None:
        for _ in range(per_thread):
            online_store.update(COUNTER_VIEW, COUNTER_KEY, increment)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    state = online_store.read([(COUNTER_VIEW, COUNTER_KEY)]).states[0]
    assert int.from_bytes(state, "big") == threads * per_thread


def test_concurrent_process_updates_lose_nothing(online_backend: OnlineBackend) -> None:
    with online_backend.open() as store:
        store.write_version("v1", [])
        store.publish("v1")
        processes, per_process = 2, 150
        environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
        command = [sys.executable, str(WORKER), online_backend.setting,
                   str(online_backend.base_dir), online_backend.project, str(per_process)]
        workers = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True, env=environment) for _ in range(processes)]
        try:
            for worker in workers:
                assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
            # Release the workers together so that their updates really overlap.
            for worker in workers:
                assert worker.stdin is not None
                worker.stdin.write("go\n")
                worker.stdin.close()
            assert [worker.wait(timeout=60) for worker in workers] == [0] * processes
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.wait()

        state = store.read([(COUNTER_VIEW, COUNTER_KEY)]).states[0]
        assert int.from_bytes(state, "big") == processes * per_process


def test_metadata_round_trip(online_store: OnlineStore) -> None:
    online_store.write_version("v1", [], {"dictionary:merchant": b"grocery\x00travel"})
    online_store.publish("v1")

    assert online_store.read_metadata("dictionary:merchant") == b"grocery\x00travel"
    assert online_store.write_metadata("watermark", b"\x01\x02") is True
    assert online_store.read_metadata("watermark") == b"\x01\x02"
    assert online_store.read_metadata("absent") is None
    # Metadata belongs to its version: a new version starts from its own.
    online_store.write_version("v2", [], {"dictionary:merchant": b"grocery"})
    online_store.publish("v2")
    assert online_store.read([], ["dictionary:merchant", "watermark"]).metadata == {
        "dictionary:merchant": b"grocery", "watermark": None}


def test_update_many_changes_states_and_metadata_together(online_store: OnlineStore) -> None:
    online_store.write_version("v1", [("a", (1,), b"1")], {"dictionary": b"x"})
    online_store.publish("v1")
    requests = [("a", (1,)), ("a", (2,)), ("b", ("k", 3))]

    def grow(states: list[bytes | None], metadata: dict[str, bytes | None]) -> tuple:
        assert states == [b"1", None, None]
        assert metadata == {"dictionary": b"x", "watermark": None}
        return [b"1+", None, b"new"], {"dictionary": b"x,y"}

    assert online_store.update_many(requests, grow, ["dictionary", "watermark"]) is True

    result = online_store.read(requests, ["dictionary", "watermark"])
    assert result.states == [b"1+", None, b"new"]
    assert result.metadata == {"dictionary": b"x,y", "watermark": None}


def test_failed_update_function_writes_nothing(online_store: OnlineStore) -> None:
    online_store.write_version("v1", [("a", (1,), b"1")])
    online_store.publish("v1")

    def fail(_state: bytes | None) -> bytes:
        raise RuntimeError("kernel failed")

    with pytest.raises(RuntimeError, match="kernel failed"):
        online_store.update("a", (1,), fail)
    with pytest.raises(ValueError, match="not listed in metadata_names"):
        online_store.update_many([("a", (1,))], lambda _s, _m: ([b"2"], {"other": b""}))
    with pytest.raises(ValueError, match="returned 0 states for 1 requests"):
        online_store.update_many([("a", (1,))], lambda _s, _m: ([], {}))
    with pytest.raises(ValueError, match="distinct"):
        online_store.update_many([("a", (1,)), ("a", (1,))], lambda s, _m: (s, {}))
    assert online_store.read([("a", (1,))]).states == [b"1"]
    # The store still works after the failures (no transaction left open).
    assert online_store.update("a", (1,), lambda state: state + b"!") == b"1!"


def test_invalid_arguments_are_rejected(online_store: OnlineStore) -> None:
    stage(online_store, "v1", ["a"], [(1,)])
    online_store.publish("v1")

    with pytest.raises(ValueError, match="published one"):
        stage(online_store, "v1", ["a"], [(1,)])
    with pytest.raises(ValueError, match="was not staged"):
        online_store.publish("never-staged")
    with pytest.raises(ValueError, match="expected 1 to 64 characters"):
        online_store.write_version("bad:name", [])
    with pytest.raises(ValueError, match="without ':'"):
        online_store.read([("view:x", (1,))])
    with pytest.raises(InputError, match="has type float"):
        online_store.read([("a", (1.5,))])
    with pytest.raises(InputError, match="non-empty tuple"):
        online_store.update("a", 1, increment)  # type: ignore[arg-type]
    assert online_store.read([("a", (1,))]).states == [b"v1"]


def test_memory_usage_is_reported_per_entity(online_store: OnlineStore) -> None:
    online_store.write_version("v1", [("a", (1,), b"s" * 700), ("a", (2,), b"s" * 20)])
    online_store.publish("v1")

    large = online_store.memory_usage("a", (1,))
    small = online_store.memory_usage("a", (2,))

    assert large is not None and small is not None
    assert large >= 700 > small >= 20
    assert online_store.memory_usage("a", (3,)) is None


def test_ping_answers_true(online_store: OnlineStore) -> None:
    assert online_store.ping() is True
