"""Page load times of the web console on the demo project, through a real server.

Builds the demo project in a work folder (`featurestore demo`: sample data, apply,
training set, materialize, push, verify), materializes it once more so the history has
two runs, starts `featurestore ui` on a free port, then fetches every page over HTTP,
round-robin, `--repeat` times each. The baseline, in the same run and process, is the
same server answering a static asset (`/assets/console.css`): the floor of one HTTP
round trip through uvicorn, so the ratio is what a page's reads and rendering add.

The target (issue: web console) is every page under 300 ms on the demo project; the
report gives each page's median and 90th percentile.

    .venv/bin/python benchmarks/console.py [--repeat 30] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import harness
import httpx

PAGES = ("/", "/registry", "/lineage", "/runs", "/features/user_txn/amount_sum_7d",
         "/features/user_txn/last_category", "/features/txn_context/amount_z")
BASELINE = "/assets/console.css"
TARGET_MS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="fetches of each page")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="build the project here and keep it (default: a temp folder)")
    arguments = parser.parse_args()
    harness.in_work_folder(arguments.work_dir, "console-bench-",
                           lambda work: _run(work, arguments.repeat))


def _run(work: Path, repeat: int) -> None:
    registry = work / "registry.yaml"
    if not registry.exists():
        shutil.copy(harness.ROOT / "registry.yaml", registry)
        harness.progress("building the demo project (featurestore demo)")
        _featurestore("demo", "--registry", str(registry))
        _featurestore("materialize", "--registry", str(registry))
    port = _free_port()
    harness.progress(f"starting featurestore ui on port {port}")
    server = subprocess.Popen([sys.executable, "-m", "featurestore", "ui", "--registry",
                               str(registry), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=_environment())
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base)
        times = _measure(base, repeat)
    finally:
        server.terminate()
        server.wait(timeout=20)
    _report(times, repeat)


def _measure(base: str, repeat: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {path: [] for path in (*PAGES, BASELINE)}
    with httpx.Client(base_url=base, timeout=30) as http:
        for path in times:  # one warm-up fetch each: the first read of each table
            http.get(path).raise_for_status()
        for _ in range(repeat):
            for path in times:
                started = time.perf_counter()
                http.get(path).raise_for_status()
                times[path].append((time.perf_counter() - started) * 1000)
    return times


def _report(times: dict[str, list[float]], repeat: int) -> None:
    floor = statistics.median(times[BASELINE])
    print(f"console page loads, {repeat} fetches each (ms; baseline: {BASELINE} "
          f"on the same server, median {floor:.1f} ms)")
    print(f"{'page':<36} {'median':>8} {'p90':>8} {'vs asset':>9}  target {TARGET_MS:.0f}")
    worst = 0.0
    for path in PAGES:
        values = sorted(times[path])
        median = statistics.median(values)
        p90 = values[int(0.9 * (len(values) - 1))]
        worst = max(worst, p90)
        print(f"{path:<36} {median:8.1f} {p90:8.1f} {median / floor:8.1f}x  "
              f"{'met' if p90 < TARGET_MS else 'MISSED'}")
    print(f"slowest page p90 {worst:.1f} ms: target "
          f"{'met' if worst < TARGET_MS else 'missed'}")


def _featurestore(*arguments: str) -> None:
    subprocess.run([sys.executable, "-m", "featurestore", *arguments], check=True,
                   stdout=subprocess.DEVNULL, env=_environment())


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("FEATURESTORE_")}
    env["PYTHONPATH"] = str(harness.ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(base: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(base + BASELINE, timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("featurestore ui did not answer within 120 s")


if __name__ == "__main__":
    main()
