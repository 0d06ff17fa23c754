"""Increments one counter state many times; run as a separate process by the tests.

Usage: python counter_worker.py SETTING BASE_DIR PROJECT COUNT

Prints "ready" once the store is open, then waits for a line on stdin before starting,
so that the test can release several workers at the same moment.
"""

from __future__ import annotations

import sys
from pathlib import Path

from featurestore.online import open_online_store

COUNTER_VIEW = "counters"
COUNTER_KEY = (1,)


def increment(state: bytes | None) -> bytes:
    """The counter is an 8-byte big-endian integer; absent means 0."""
    return (int.from_bytes(state or bytes(8), "big") + 1).to_bytes(8, "big")


def main(setting: str, base_dir: str, project: str, count: int) -> None:
    """Open the store, signal readiness, wait for the go line, then increment."""
    with open_online_store(setting, Path(base_dir), project) as store:
        store.ping()
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(count):
            store.update(COUNTER_VIEW, COUNTER_KEY, increment)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
