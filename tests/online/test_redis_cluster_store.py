"""Behaviour only the Redis Cluster store has: slots, round trips per master, publishes
that span masters, a master going down and coming back. Runs on a real 3-master cluster."""

from __future__ import annotations

import socket
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
from counter_worker import increment

from featurestore.errors import OnlineStoreUnavailable, RegistryError
from featurestore.online import ReadResult, RedisClusterOnlineStore, open_online_store
from featurestore.online.cluster_keys import entity_tag
from featurestore.online.cluster_nodes import SlotMap
from featurestore.online.cluster_pointers import Pointer
from featurestore.online.entity_keys import encode_entity_key
from featurestore.online.redis_cluster_store import Layout

if TYPE_CHECKING:
    from tests.redis_cluster import RedisClusterNodes

PROJECT = "test_project"
VIEWS = ["a", "b{x}", "c"]  # a '{' in a view name must not move the hash tag


def owners(cluster: RedisClusterNodes, entities: list[tuple]) -> dict[tuple, int]:
    """The index of the master each entity's states live on."""
    return {entity: cluster.owner_of(entity_tag(encode_entity_key(entity)))
            for entity in entities}


def stage(store: RedisClusterOnlineStore, version: str, entities: list[tuple]) -> None:
    """Stage a version whose every state and its metadata name the version."""
    items = ((view, entity, version.encode()) for view in VIEWS for entity in entities)
    store.write_version(version, items, {"watermark": version.encode()})


def open_store(cluster: RedisClusterNodes, tmp_path: Path) -> RedisClusterOnlineStore:
    store = open_online_store(cluster.url, tmp_path, PROJECT)
    assert isinstance(store, RedisClusterOnlineStore)
    return store


def test_one_entity_keeps_every_view_in_one_slot(clean_redis_cluster: RedisClusterNodes,
                                                 tmp_path: Path) -> None:
    entities = [(number,) for number in range(40)] + [("acme", 7)]
    with open_store(clean_redis_cluster, tmp_path) as store:
        stage(store, "v1", entities)
    slots: dict[bytes, set[int]] = defaultdict(set)
    views: dict[bytes, set[bytes]] = defaultdict(set)
    masters: dict[bytes, set[int]] = defaultdict(set)
    marker = f"fs:{PROJECT}:v:v1:s:".encode()
    for index, node in enumerate(clean_redis_cluster.nodes):
        with redis.Redis(port=node.port) as client:
            for key in client.scan_iter(match=b"*" + marker + b"*", count=1000):
                view, _, entity = key.partition(marker)[2].partition(b":")
                slots[entity].add(client.execute_command("CLUSTER", "KEYSLOT", key))
                views[entity].add(view)
                masters[entity].add(index)

    assert len(slots) == len(entities)
    assert all(len(entity_slots) == 1 for entity_slots in slots.values())
    assert all(entity_views == {v.encode() for v in VIEWS} for entity_views in views.values())
    # The entities spread over every master, each entity on exactly one.
    assert set().union(*masters.values()) == {0, 1, 2}
    assert all(len(entity_masters) == 1 for entity_masters in masters.values())


def test_a_read_costs_one_round_trip_per_master(clean_redis_cluster: RedisClusterNodes,
                                                tmp_path: Path) -> None:
    entities = [(number,) for number in range(100)]
    spread = owners(clean_redis_cluster, entities)
    assert set(spread.values()) == {0, 1, 2}
    requests = [(VIEWS[number % 3], entity) for number, entity in enumerate(entities)]
    with open_store(clean_redis_cluster, tmp_path) as store:
        stage(store, "v1", entities)
        store.publish("v1")
        store.read(requests, ["watermark"])  # the hint and the script cache are warm now
        clients = [redis.Redis(port=node.port) for node in clean_redis_cluster.nodes]
        for client in clients:
            client.config_resetstat()

        result = store.read(requests, ["watermark"])

        stats = [client.info("commandstats") for client in clients]
        for client in clients:
            client.close()
    assert result.version == "v1"
    assert result.states == [b"v1"] * 100
    assert result.metadata == {"watermark": b"v1"}
    for index, node_stats in enumerate(stats):
        top_level = {name.removeprefix("cmdstat_"): value["calls"]
                     for name, value in node_stats.items()
                     if name not in ("cmdstat_get", "cmdstat_config|resetstat", "cmdstat_info")}
        # One script call is the node's only command; the GETs ran inside it: the
        # pointer, the sealed marker, the metadata sequence and copy, and the states.
        assert top_level == {"evalsha_ro": 1}, index
        states_here = sum(1 for owner in spread.values() if owner == index)
        assert node_stats["cmdstat_get"]["calls"] == 4 + states_here


class CrashingPublisher(RedisClusterOnlineStore):
    """A publisher whose process dies right after switching the first master's pointer."""

    def _switch_pointers(self, layout: Layout, pointer: Pointer) -> None:
        first = layout.slots.primaries[0]
        super()._switch_pointers(Layout(layout.slots, {first: layout.homes[first]},
                                        layout.project_node), pointer)
        raise SystemExit("publisher died")


def pointed_versions(cluster: RedisClusterNodes) -> dict[int, bytes]:
    """The version each master's copy of the pointer names, by master index."""
    pointed = {}
    for index, node in enumerate(cluster.nodes):
        with redis.Redis(port=node.port) as client:
            for key in client.scan_iter(match=f"*fs:{PROJECT}:current".encode()):
                pointed[index] = client.get(key).split(b":")[1]
    return pointed


def test_a_publish_interrupted_after_one_pointer_is_rolled_forward(
        clean_redis_cluster: RedisClusterNodes, tmp_path: Path) -> None:
    entities = [(number,) for number in range(30)]
    spread = owners(clean_redis_cluster, entities)
    requests = [(view, entity) for view in VIEWS for entity in entities]
    crashing = CrashingPublisher(clean_redis_cluster.url, PROJECT)
    reader, fresh, narrow = (open_store(clean_redis_cluster, tmp_path) for _ in range(3))
    stage(fresh, "v1", entities)
    fresh.publish("v1")
    for store in (reader, narrow):
        assert store.read(requests, ["watermark"]).version == "v1"  # their hint: v1
    stage(fresh, "v2", entities)

    with pytest.raises(SystemExit, match="publisher died"):
        crashing.publish("v2")

    pointed = pointed_versions(clean_redis_cluster)
    assert sorted(pointed.values()) == [b"v1", b"v1", b"v2"]
    lagging = next(index for index, version in pointed.items() if version == b"v1")
    on_lagging = next(entity for entity, owner in spread.items() if owner == lagging)
    fresh.close()
    fresh = open_store(clean_redis_cluster, tmp_path)  # no hint yet
    for store in (reader, fresh):
        result = store.read(requests, ["watermark"])
        assert (result.version, set(result.states), result.metadata) == (
            "v2", {b"v2"}, {"watermark": b"v2"})
        # Reads of one entity at a time (one master each) roll forward too.
        for request in requests[:9]:
            assert store.read([request]).states == [b"v2"]
    # A reader still hinting v1 that asks only a master pointing at v1 reads v1, whole.
    assert narrow.read([("a", on_lagging)], ["watermark"]) == uniform_result(b"v1")
    # current_version finishes the interrupted publish: every master points at v2.
    assert fresh.current_version() == "v2"
    assert set(pointed_versions(clean_redis_cluster).values()) == {b"v2"}
    assert narrow.read([("a", on_lagging)], ["watermark"]) == uniform_result(b"v2")
    assert fresh.update("a", (1,), lambda state: state + b"+") == b"v2+"
    # The next complete publish leaves one version, pointed at by every master.
    stage(fresh, "v3", entities)
    fresh.publish("v3")
    assert reader.read(requests).states == [b"v3"] * len(requests)
    for store in (crashing, reader, fresh, narrow):
        store.close()


def uniform_result(version: bytes) -> ReadResult:
    """What a read of one staged state and the watermark gives under `version`."""
    return ReadResult(version.decode(), [version], {"watermark": version})


def test_readers_on_three_masters_never_see_a_mix_across_publishes(
        clean_redis_cluster: RedisClusterNodes, tmp_path: Path) -> None:
    entities = [(number,) for number in range(45)]
    assert set(owners(clean_redis_cluster, entities).values()) == {0, 1, 2}
    requests = [(view, entity) for view in VIEWS for entity in entities]
    writer, reader = open_store(clean_redis_cluster, tmp_path), open_store(clean_redis_cluster,
                                                                          tmp_path)
    stage(writer, "v0", entities)
    writer.publish("v0")
    published = threading.Event()
    failures: list[BaseException] = []

    def publish_versions() -> None:
        try:
            for number in range(1, 13):
                stage(writer, f"v{number}", entities)
                writer.publish(f"v{number}")
                time.sleep(0.01)  # let the reader in between publishes
        except BaseException as error:  # reported by the main thread
            failures.append(error)
        finally:
            published.set()

    thread = threading.Thread(target=publish_versions)
    thread.start()
    mixes, seen = [], set()
    try:
        while not published.is_set():
            result = reader.read(requests, ["watermark"])
            values = {*result.states, result.metadata["watermark"]}
            if values != {(result.version or "").encode()}:
                mixes.append(values)
            seen.add(result.version)
    finally:
        thread.join()
        writer.close()
        reader.close()

    assert failures == [] and mixes == []
    assert len(seen) >= 3


def test_a_stopped_master_makes_calls_unavailable_and_the_same_store_recovers(
        clean_redis_cluster: RedisClusterNodes, tmp_path: Path) -> None:
    entities = [(number,) for number in range(30)]
    spread = owners(clean_redis_cluster, entities)
    on_stopped = next(entity for entity, owner in spread.items() if owner == 1)
    requests = [("a", entity) for entity in entities]
    store = open_store(clean_redis_cluster, tmp_path)
    stage(store, "v1", entities)
    store.publish("v1")
    assert store.update("a", on_stopped, lambda state: state + b"!") == b"v1!"
    expected = store.read(requests, ["watermark"])

    clean_redis_cluster.stop_node(1)
    try:
        started = time.monotonic()
        for call in (lambda: store.read(requests), lambda: store.read([("a", on_stopped)]),
                     lambda: store.update("a", on_stopped, increment), store.ping):
            with pytest.raises(OnlineStoreUnavailable, match="is unavailable") as raised:
                call()
            assert clean_redis_cluster.url.removeprefix("redis+cluster://") in str(raised.value)
        # A refused connection fails at once: no retry storm.
        assert time.monotonic() - started < 3.0
    finally:
        clean_redis_cluster.start_node(1)

    # The same object, no reconnect by hand; the master kept its data (durable).
    assert store.ping() is True
    result = store.read(requests, ["watermark"])
    assert (result.version, result.states, result.metadata) == (
        expected.version, expected.states, expected.metadata)
    assert store.update("a", on_stopped, lambda state: state + b"?") == b"v1!?"
    store.close()


@pytest.mark.parametrize("url", [
    "redis+cluster://",
    "redis+cluster://:pw-secret@",
    "redis+cluster://:pw-secret@127.0.0.1",
    "redis+cluster://:pw-secret@127.0.0.1:7000,127.0.0.1:notaport",
    "redis+cluster://:pw-secret@127.0.0.1:70000",
    "redis+cluster://:pw-secret@127.0.0.1:7000/3",
    "redis+cluster://:pw-secret@127.0.0.1:7000?socket_timeout=soon",
    "redis+cluster://:pw-secret@127.0.0.1:7000?db=2",
])
def test_bad_urls_are_registry_errors_without_the_password(url: str, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"store\.online: invalid Redis Cluster URL") as raised:
        open_online_store(url, tmp_path, PROJECT)

    assert "pw-secret" not in str(raised.value)


def test_an_unreachable_cluster_is_unavailable_and_the_password_never_shows(
        tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"redis+cluster://:s3cret@127.0.0.1:{closed_port}?socket_connect_timeout=0.5"
    store = open_online_store(url, tmp_path, PROJECT)

    with pytest.raises(OnlineStoreUnavailable) as raised:
        store.read([("a", (1,))])

    assert "s3cret" not in str(raised.value)
    assert f"redis+cluster://:***@127.0.0.1:{closed_port}" in str(raised.value)


def test_a_stale_slot_map_is_refreshed_from_the_cluster_answer(
        clean_redis_cluster: RedisClusterNodes, tmp_path: Path) -> None:
    entities = [(number,) for number in range(30)]
    requests = [("a", entity) for entity in entities]
    store = open_store(clean_redis_cluster, tmp_path)
    stage(store, "v1", entities)
    store.publish("v1")
    real = store._nodes.slot_map()
    # As after a reshard the store has not heard of: every slot "moved" to the next master.
    shifted = {owner: real.primaries[(real.primaries.index(owner) + 1) % 3]
               for owner in real.primaries}
    store._nodes._slot_map = SlotMap(tuple(shifted[owner] for owner in real.owners),
                                     real.primaries)

    # The masters refuse keys they do not own; the read asks for the map and goes on.
    assert store.read(requests).states == [b"v1"] * len(requests)
    assert store._nodes.slot_map().owners == real.owners
    store.close()
