"""A deployment that lives: online == offline through edits, late data, rewrites and
restarts, with a real `featurestore serve` answering throughout.

While a thread sends lookups to the server without pause, the test (from other
processes, through the command line and HTTP) adds a feature, renames it, edits a
request view, materializes incrementally, pushes late events, rewrites the source file
and, on Redis, restarts it. Every lookup must get a 200, or a 503 while Redis is down;
after every step `featurestore verify --entities all` must find no difference.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.conftest import RedisServer
from tests.projects import write_demo_project
from tests.serving.conftest import DEMO_END, ServerProcess, cli_environment, demo_text

pytestmark = pytest.mark.slow

AT = "2024-06-01T00:00:00Z"  # after every materialization end of the scenario
LOOKUP = {"features": ["user_txn:txn_count_1h", "user_txn:amount_sum_7d",
                       "txn_context:log_amount_now"],
          "entities": {"user_id": [1, 2, 3, 999]}, "request": {"amount_now": [1.0, 2.0, 3.0, 4.0]},
          "at": AT}
SWITCH_TIMEOUT_S = 10.0


@dataclass
class Traffic:
    """Lookups sent without pause from a thread; each answer kept with its times."""

    url: str
    answers: list[tuple[float, float, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.post("/online-features", json=LOOKUP)
                    status = response.status_code
                    code = response.json().get("error", {}).get("code", "") if status != 200 \
                        else ""
                except httpx.TransportError as error:
                    status, code = 0, type(error).__name__
                self.answers.append((started, time.monotonic(), status, code))
                time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Scenario:
    """The project, its server and helpers to act on them from other processes."""

    project: Path
    server: ServerProcess
    switch_delays: list[float] = field(default_factory=list)

    def cli(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "featurestore", *arguments, "--registry",
             str(self.project / "registry.yaml")],
            env=cli_environment(), capture_output=True, text=True, timeout=240)

    def verify(self) -> str:
        """`verify --entities all` must exit 0 and find no difference."""
        result = self.cli("verify", "--entities", "all")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "values differ" not in result.stdout
        return result.stdout

    def edit_and_apply(self, old: str, new: str) -> None:
        path = self.project / "registry.yaml"
        text = path.read_text()
        assert text.count(old) == 1, old
        path.write_text(text.replace(old, new))
        result = self.cli("apply")
        assert result.returncode == 0, result.stdout + result.stderr

    def materialize(self, hours: int) -> str:
        """An incremental materialization; waits until the server serves what it published."""
        result = self.cli("materialize", "--end", (DEMO_END + timedelta(hours=hours)).isoformat())
        assert result.returncode == 0, result.stdout + result.stderr
        done = time.monotonic()
        self.wait_until(lambda health: health["status"] == "ok"
                        and health["served_version"] == health["applied_version"])
        self.switch_delays.append(time.monotonic() - done)
        return result.stdout

    def health(self) -> dict:
        return httpx.get(f"{self.server.url}/health", timeout=10.0).json()

    def wait_until(self, condition: Callable[[dict], bool]) -> dict:
        deadline = time.monotonic() + SWITCH_TIMEOUT_S
        while True:
            health = self.health()
            if condition(health):
                return health
            assert time.monotonic() < deadline, f"server did not get there: {health}"
            time.sleep(0.05)

    def lookup(self, body: dict) -> httpx.Response:
        return httpx.post(f"{self.server.url}/online-features", json=body, timeout=10.0)


@pytest.fixture(params=["redis", "local"])
def scenario(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scenario]:
    redis = None
    setting = "local"
    if request.param == "redis":
        executable = shutil.which("redis-server")
        assert executable is not None
        (tmp_path / "redis").mkdir()
        redis = RedisServer(executable, tmp_path / "redis", durable=True)
        redis.start()
        setting = redis.url
    project = write_demo_project(tmp_path / "demo", demo_text(setting), events=3_000, users=60,
                                 days=30)
    server = ServerProcess(project / "registry.yaml", output=tmp_path / "server.log")
    scenario = Scenario(project, server)
    for step in (("apply",), ("materialize", "--end", DEMO_END.isoformat())):
        result = scenario.cli(*step)
        assert result.returncode == 0, result.stdout + result.stderr
    server.start()
    try:
        yield scenario
    finally:
        server.stop()
        if redis is not None:
            redis.stop()
    scenario.redis = redis  # type: ignore[attr-defined]


def test_online_equals_offline_through_a_living_deployment(scenario: Scenario,
                                                           tmp_path: Path) -> None:
    traffic = Traffic(scenario.server.url)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    outages: list[tuple[float, float]] = []
    try:
        scenario.verify()
        # 1. A new feature: applied, the server keeps the last consistent pair.
        scenario.edit_and_apply("      last_category:", "      amount_min_7d:    "
                                "{agg: min, expr: amount, window: 7d}\n      last_category:")
        health = scenario.wait_until(lambda health: health["applied_version"] == 2)
        assert health["status"] == "degraded" and health["served_version"] == 1
        scenario.verify()
        assert "1 entities" not in scenario.materialize(hours=1)
        scenario.verify()
        assert scenario.lookup({**LOOKUP, "features": ["user_txn:amount_min_7d"]}).status_code \
            == 200
        # 2. A rename.
        scenario.edit_and_apply("amount_min_7d:", "amount_low_7d:")
        scenario.verify()
        scenario.materialize(hours=2)
        scenario.verify()
        renamed = scenario.lookup({**LOOKUP, "features": ["user_txn:amount_low_7d"]})
        assert renamed.status_code == 200
        assert scenario.lookup({**LOOKUP, "features": ["user_txn:amount_min_7d"]}).json()[
            "error"]["code"] == "unknown_feature"
        # 3. A request-view edit: served as soon as it is applied.
        scenario.edit_and_apply('log_amount_now: "log1p(amount_now)"',
                                'log_amount_now: "log1p(amount_now) + 1"')
        scenario.wait_until(lambda health: health["served_version"] == 4
                            and health["status"] == "ok")
        scenario.verify()
        # 4. Late events, pushed over HTTP with times before the watermark.
        late = {"source": "transactions", "rows": [
            {"user_id": user, "event_ts": (DEMO_END - timedelta(days=2, hours=user)).isoformat(),
             "amount": 321.0 * user, "merchant_category": "late"} for user in (1, 2)]}
        assert httpx.post(f"{scenario.server.url}/push", json=late, timeout=30).status_code == 200
        assert "2 with events not yet materialized left out" in scenario.verify()
        report = scenario.materialize(hours=3)
        assert "2 entities recomputed from their history" in report
        scenario.verify()
        # 5. The source file rewritten in place (a corrected day).
        path = scenario.project / "data" / "transactions.parquet"
        table = pq.read_table(path)
        day = pc.equal(pc.day(table.column("event_ts")), 15)
        corrected = pc.if_else(day, pc.multiply(table.column("amount"), 2),
                               table.column("amount"))
        pq.write_table(table.set_column(table.schema.get_field_index("amount"), "amount",
                                        corrected), path)
        stale = scenario.cli("verify", "--entities", "all")
        assert stale.returncode == 1 and "stale: source 'transactions': 1 file(s) rewritten" \
            in stale.stdout and "values differ" not in stale.stdout
        assert "full rebuild: source 'transactions'" in scenario.materialize(hours=4)
        scenario.verify()
        # 6. Redis restarts (its data is durable, as in production).
        redis: RedisServer | None = getattr(scenario, "redis", None)
        if redis is not None:
            down = time.monotonic()
            redis.stop()
            assert scenario.lookup(LOOKUP).status_code == 503
            redis.start()
            outages.append((down, time.monotonic()))
            scenario.wait_until(lambda health: health["status"] == "ok")
            assert scenario.lookup(LOOKUP).status_code == 200
            scenario.verify()
    finally:
        traffic.stop()
        thread.join(timeout=30)
    assert traffic.answers, "no lookup was answered"
    unexpected = [answer for answer in traffic.answers if answer[2] != 200 and not (
        answer[2] == 503 and any(start <= answer[1] and answer[0] <= end
                                 for start, end in outages))]
    assert not unexpected, unexpected[:5]
    assert max(scenario.switch_delays) < SWITCH_TIMEOUT_S
    print(f"\n{len(traffic.answers)} lookups; switch delays after materialize (s): "
          f"{', '.join(f'{delay:.2f}' for delay in scenario.switch_delays)}")
