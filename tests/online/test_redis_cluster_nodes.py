"""The test Redis Cluster itself: three masters own every slot, keys spread over all of
them, and a stopped master takes its slots away until it is started again."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.redis_cluster import CLUSTER_SLOTS, RedisClusterNodes


def client_of(cluster: RedisClusterNodes) -> RedisCluster:
    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", node.port)
                                       for node in cluster.nodes],
                        socket_connect_timeout=1.0, socket_timeout=2.0)


def test_three_masters_own_every_slot_and_share_the_keys(
        redis_cluster: RedisClusterNodes) -> None:
    redis_cluster.flush()
    client = client_of(redis_cluster)
    try:
        slots = client.cluster_slots()
        owned = sum(high - low + 1 for low, high in slots)
        assert owned == CLUSTER_SLOTS
        assert len({tuple(info["primary"]) for info in slots.values()}) == 3
        for index in range(300):
            client.set(f"key:{index}", index)
        assert [int(client.get(f"key:{index}")) for index in range(300)] == list(range(300))
        for node in redis_cluster.nodes:
            with redis.Redis(port=node.port) as direct:
                assert direct.dbsize() > 50
    finally:
        client.close()


def test_a_stopped_master_takes_its_slots_away_until_it_is_back(
        redis_cluster: RedisClusterNodes) -> None:
    redis_cluster.flush()
    stopped = redis_cluster.nodes[1]
    key = next(f"k{index}" for index in range(10_000)
               if _owner(redis_cluster, f"k{index}") == stopped.port)
    redis_cluster.stop_node(1)
    try:
        client = client_of(redis_cluster)
        with pytest.raises(redis.RedisError):
            client.set(key, "x")
        client.close()
    finally:
        redis_cluster.start_node(1)
    client = client_of(redis_cluster)
    try:
        client.set(key, "back")
        assert client.get(key) == b"back"
    finally:
        client.close()


def _owner(cluster: RedisClusterNodes, key: str) -> int:
    with redis.Redis(port=cluster.nodes[0].port) as direct:
        slot = direct.cluster("KEYSLOT", key)
        for low, high, primary, *_ in direct.execute_command("CLUSTER", "SLOTS"):
            if low <= slot <= high:
                return int(primary[1])
    raise AssertionError(f"no node owns the slot of {key}")
