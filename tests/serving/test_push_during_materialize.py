"""A server taking pushes while another process materializes: both work, nothing is lost.

DuckDB admits one writing process per file. Pushes never open it (they append Parquet
segments and update the online store), so they keep succeeding while a `featurestore
materialize` process holds the file's write lock.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

from tests.conftest import RedisServer
from tests.serving.conftest import DEMO_END, ServerProcess, cli_environment, make_demo_store
from tests.serving.test_push import pushed_rows

USER = 11
MATERIALIZE_END = DEMO_END + timedelta(hours=1)
MAX_PUSHES = 400
TIME_LIMIT_S = 90.0


def test_pushes_and_a_materialization_in_two_processes(clean_redis: RedisServer,
                                                       tmp_path: Path) -> None:
    store = make_demo_store(tmp_path / "demo", clean_redis.url)
    before = store.get_online_features(features=["user_txn:txn_count_1h"],
                                       entities={"user_id": [USER]}, at=MATERIALIZE_END)
    server = ServerProcess(store.registry_path)
    server.start()
    try:
        materializer = subprocess.Popen(
            [sys.executable, "-m", "featurestore", "materialize", "--registry",
             str(store.registry_path), "--end", MATERIALIZE_END.isoformat(), "--full"],
            env=cli_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pushes, during = _push_until_done(server.url, materializer)
        _, errors = materializer.communicate(timeout=TIME_LIMIT_S)
    finally:
        server.stop()
    assert materializer.returncode == 0, errors.decode()
    assert during > 0  # the pushes really overlapped the materialization
    assert pushed_rows(store) == pushes  # every acknowledged push is on disk
    # Pushes with times before the new watermark that landed after the run read its
    # events are late for incremental runs; a full run folds every one of them.
    store.materialize(end=MATERIALIZE_END, full=True)
    after = store.get_online_features(features=["user_txn:txn_count_1h"],
                                      entities={"user_id": [USER]}, at=MATERIALIZE_END)
    assert after["txn_count_1h"] == [before["txn_count_1h"][0] + pushes]
    store.close()


def _push_until_done(url: str, materializer: subprocess.Popen[bytes]) -> tuple[int, int]:
    """Push one event at a time until the materialization ends, then a few more.

    Returns:
        (pushes acknowledged, how many of them while the materialization ran).
    """
    pushes = during = 0
    extra = 5
    deadline = time.monotonic() + TIME_LIMIT_S
    with httpx.Client(base_url=url, timeout=30.0) as http:
        while pushes < MAX_PUSHES and time.monotonic() < deadline and extra > 0:
            running = materializer.poll() is None
            ts = DEMO_END + timedelta(milliseconds=10 * (pushes + 1))
            response = http.post("/push", json={"source": "transactions", "rows": [
                {"user_id": USER, "event_ts": ts.isoformat(), "amount": 1.0}]})
            assert response.status_code == 200, response.text
            pushes += 1
            if running:
                during += 1
            else:
                extra -= 1
    return pushes, during
