"""The project write lock of the Redis Cluster store.

Updates, publishes and discards of one project take turns: ``SET <lock> <token> NX PX
10000`` in the project's slot, spun with jitter while another writer holds it, released
by a script that deletes the key only if it still holds this writer's token. A writer
that dies frees the lock when the 10 s lease runs out, and cannot release a lock another
writer took after that.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from featurestore.errors import OnlineStoreUnavailable
from featurestore.online.cluster_nodes import ClusterNodes, checked
from featurestore.online.cluster_scripts import RELEASE_LOCK

LEASE_MS = 10_000
WAIT_S = 30.0


@contextmanager
def project_lock(nodes: ClusterNodes, lock_node: Callable[[], str], key: bytes,
                 display_url: str) -> Iterator[None]:
    """Hold the project write lock for the duration of the block.

    Args:
        nodes: the cluster's masters.
        lock_node: gives the address of the master owning the lock key's slot now.
        key: the lock key.
        display_url: the redacted URL, for messages.

    Raises:
        OnlineStoreUnavailable: the lock stayed taken for 30 s.
        redis.ConnectionError: the lock's master cannot be reached.
    """
    token = secrets.token_hex(16).encode()
    deadline = time.monotonic() + WAIT_S
    waits = 0
    while True:
        node = lock_node()
        command = ("SET", key, token, "NX", "PX", LEASE_MS)
        if checked(nodes.run({node: [command]}))[node][0] is not None:
            break
        if time.monotonic() > deadline:
            raise OnlineStoreUnavailable(f"online store {display_url}: the project write lock "
                                         f"stayed taken for {WAIT_S:.0f} s")
        waits += 1
        # Jitter so that waiting writers do not retry in lockstep.
        time.sleep(random.uniform(0, min(0.0002 * waits, 0.01)))
    try:
        yield
    finally:
        # If the release cannot reach the master, the lease frees the lock within 10 s.
        with suppress(RedisConnectionError, RedisTimeoutError):
            nodes.run_scripts({node: [(RELEASE_LOCK, [key, token])]})
