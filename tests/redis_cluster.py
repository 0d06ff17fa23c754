"""A real Redis Cluster for tests: three `redis-server --cluster-enabled yes` masters on
free loopback ports, joined by `redis-cli --cluster create`, stopped by their PIDs.

Each node is a `RedisServer` with cluster options and a folder of its own (where it keeps
its `nodes.conf`), so a node stopped with `stop_node` and started again with
`start_node` rejoins the cluster on the same port with the same slots. Nodes are durable
(an append-only file, written out whole when a node stops), so a restarted node keeps
its data.
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.conftest import RedisServer

CLUSTER_SLOTS = 16384
_BUS_PORT_OFFSET = 10000  # Redis Cluster's bus listens on the port + 10000
_JOIN_TIMEOUT_S = 30.0
_NODE_TIMEOUT_MS = 2000


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (+10000) is free too and not in `taken`."""
    for _ in range(1000):
        port = random.randint(20_000, 55_000)
        if (not {port, port + _BUS_PORT_OFFSET} & taken and _bindable(port)
                and _bindable(port + _BUS_PORT_OFFSET)):
            return port
    raise RuntimeError("no free pair of ports for a cluster node")


class RedisClusterNodes:
    """Three (or `masters`) cluster masters with every slot assigned.

    Args:
        executable: path of redis-server (redis-cli is looked up beside it, then on PATH).
        directory: a folder for the nodes' folders.
        cli: path of redis-cli.
        masters: how many master nodes (no replicas).
    """

    def __init__(self, executable: str, directory: Path, cli: str, masters: int = 3) -> None:
        self.cli = cli
        taken: set[int] = set()
        self.nodes: list[RedisServer] = []
        for index in range(masters):
            folder = directory / f"node{index}"
            folder.mkdir(parents=True, exist_ok=True)
            # Durable, but fsynced once a second rather than on every write (the tests
            # write a lot): `stop_node` stops a node with SIGTERM, and Redis writes
            # and fsyncs its whole append-only file before it exits on that signal.
            node = RedisServer(executable, folder, durable=True, extra_args=(
                "--appendfsync", "everysec",
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(_NODE_TIMEOUT_MS)))
            node.port = cluster_port(taken)
            taken |= {node.port, node.port + _BUS_PORT_OFFSET}
            self.nodes.append(node)

    @property
    def url(self) -> str:
        """The `redis+cluster://host:port,host:port,...` setting naming every node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        """Start every node, join them (first start only) and wait for state ok."""
        for node in self.nodes:
            node.start()
        if not self._joined():
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run([self.cli, "--cluster", "create", *addresses, "--cluster-replicas",
                            "0", "--cluster-yes"], check=True, capture_output=True,
                           text=True, timeout=_JOIN_TIMEOUT_S)
        self.wait_ok()

    def stop(self) -> None:
        """Stop every node by its PID."""
        for node in self.nodes:
            node.stop()

    def stop_node(self, index: int) -> None:
        """Stop one master: its slots cannot be served until it is back."""
        self.nodes[index].stop()

    def start_node(self, index: int) -> None:
        """Start a stopped master again (same port and nodes.conf) and wait for state ok."""
        self.nodes[index].start()
        self.wait_ok()

    def wait_ok(self) -> None:
        """Wait until every node reports cluster_state:ok with every slot served."""
        deadline = time.monotonic() + _JOIN_TIMEOUT_S
        while time.monotonic() < deadline:
            if all(self._info(node).get("cluster_state") == "ok"
                   and self._info(node).get("cluster_slots_ok") == str(CLUSTER_SLOTS)
                   for node in self.nodes):
                return
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster did not reach cluster_state:ok: "
                           + "; ".join(str(self._info(node)) for node in self.nodes))

    def flush(self) -> None:
        """FLUSHALL on every master."""
        for node in self.nodes:
            with redis.Redis(port=node.port, socket_connect_timeout=1.0) as client:
                client.flushall()

    def owner_of(self, key: bytes) -> int:
        """The index of the node whose slots include `key`'s (asked of a running node)."""
        for node in self.nodes:
            if not node.running:
                continue
            with redis.Redis(port=node.port, socket_connect_timeout=1.0) as client:
                slot = client.execute_command("CLUSTER", "KEYSLOT", key)
                for low, high, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                    if low <= slot <= high:
                        return next(index for index, candidate in enumerate(self.nodes)
                                    if candidate.port == int(primary[1]))
        raise RuntimeError(f"no running node knows the owner of {key!r}")

    def _joined(self) -> bool:
        return all(self._info(node).get("cluster_slots_assigned") == str(CLUSTER_SLOTS)
                   for node in self.nodes)

    def _info(self, node: RedisServer) -> dict[str, str]:
        try:
            with redis.Redis(port=node.port, socket_connect_timeout=1.0) as client:
                text = client.execute_command("CLUSTER", "INFO")
        except redis.ConnectionError:
            return {}
        text = text.decode() if isinstance(text, bytes) else str(text)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)
