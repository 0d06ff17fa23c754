"""Benchmark scale-out: the dask executor against the local one, Redis Cluster against Redis.

Two parts, in one run unless `--part` picks one.

**offline**: the demo registry over events from the sample generator and a spine drawn
by `featurestore/sample_spine.py` (10M events, 10k users, 1M spine rows; `--small` is a
tenth). A Dask `LocalCluster` with 2 worker processes (1 thread each) runs beside this
script. Each contender runs in a child process of its own, alternating local and dask
`--rounds` times:

- **training set**: `get_training_set(spine, features=..., output="arrow", engine=E)`;
- **materialize**: `materialize(end=..., full=True, engine=E)` into a fresh offline file
  (the embedded online store, so the load is the same on both sides).

A first dask run, not counted, lets every worker load the kernels (printed apart as the
first run). Printed: medians of wall time, the speedup local / dask, and the overhead
per partition, `(2 x dask wall - local wall) / partitions`: the worker-seconds the dask
run spends beyond the local run's work, per partition (planning, shipping tasks, Parquet
parts, gathering, and the two workers contending for the same cores), assuming the two
workers would otherwise split the work evenly. `cores` is the local run's CPU time (all
its threads) per wall second: how much of the machine the local executor already uses.
Results are compared: training sets and offline feature tables must be identical.

**online**: a private single redis-server and a private 3-master Redis Cluster (real
`redis-server --cluster-enabled yes` nodes joined by `redis-cli --cluster create`, on free
loopback ports), both loaded with the same materialization of the demo registry (100k
users). Two `featurestore serve` processes, one per store (`FEATURESTORE_ONLINE`), get
the same single-entity lookups in alternating rounds; the verdict is the median over
rounds of the p50 ratio cluster / single (target <= 1.3x). In process, the SDK lookup is
timed against both stores call by call. Then 100-entity lookups go to the cluster
server, and each node's `INFO commandstats` before and after gives the commands each
node ran per lookup: the read scripts are the round trips (target: 1 per node, all
three nodes touched); the GETs a script runs inside Redis are listed apart.

Usage (from the repository root; a quiet machine, nothing else running):

    .venv/bin/python benchmarks/scale_out.py                  # both parts, full size
    .venv/bin/python benchmarks/scale_out.py --small --part offline
    .venv/bin/python benchmarks/scale_out.py --part online --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from harness import in_work_folder, peak_mb, progress

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_SINGLE_RATIO = 1.3
WORKERS = 2
PRESETS = {
    "full": {"events": 10_000_000, "users": 10_000, "spine": 1_000_000},
    "small": {"events": 1_000_000, "users": 10_000, "spine": 100_000},
}
ONLINE_USERS, ONLINE_EVENTS = 100_000, 2_000_000
READ_SCRIPTS = ("evalsha_ro", "eval_ro", "evalsha", "eval")


# ---------------------------------------------------------------------------------------
# Offline: children


def _timed(work: Any) -> tuple[dict[str, float], Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}, result


def child(kind: str, project: Path, engine: str, output: Path) -> None:
    """One contender run: a training set or a full materialization on `engine`."""
    import pyarrow.parquet as pq
    from training_set import REFERENCES

    from featurestore import FeatureStore

    store = FeatureStore(project)
    store.kernels().warm()
    import pandas  # noqa: F401  (pyarrow's first numpy conversion imports it)

    if kind == "training":
        timing, table = _timed(lambda: store.get_training_set(
            project / "spine.parquet", features=list(REFERENCES), output="arrow",
            engine=engine))
        pq.write_table(table, output)
    else:
        end = json.loads((project / "end.json").read_text())["end"]
        timing, _ = _timed(lambda: store.materialize(end=end, full=True, engine=engine))
        store.offline_database().run(lambda con: con.execute(
            f"COPY (SELECT * FROM features_user_txn ORDER BY ALL) TO '{output}' "
            "(FORMAT parquet)"))
    store.close()
    print(json.dumps({**timing, "peak_mb": peak_mb()}))


def _run_child(kind: str, project: Path, engine: str, output: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")])
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind,
               "--project", str(project), "--engine", engine, "--output", str(output)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} on {engine} failed (exit code {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# Offline: the parent


def _fresh_project(source: Path, target: Path) -> Path:
    """A project folder sharing `source`'s registry, data and spine, with no offline file."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in ("registry.yaml", "spine.parquet", "end.json"):
        shutil.copyfile(source / name, target / name)
    (target / "data").symlink_to(source / "data")
    return target


def _same_tables(first: Path, second: Path) -> bool:
    import pyarrow.parquet as pq

    return pq.read_table(first).equals(pq.read_table(second))


def run_offline(args: argparse.Namespace, work: Path) -> None:
    from distributed import LocalCluster
    from training_set import prepare

    from featurestore import FeatureStore
    from featurestore.offline.events import ROWS_PER_PARTITION, suggest_partitions

    size = PRESETS["small" if args.small else "full"]
    data_project = work / "data-project"
    prepare(data_project, size["events"], size["users"], size["spine"], days=90, seed=0)
    import pyarrow.parquet as pq

    end = pq.read_table(data_project / "data" / "transactions.parquet",
                        columns=["event_ts"]).column("event_ts").to_pandas().max()
    (data_project / "end.json").write_text(json.dumps(
        {"end": (end + timedelta(seconds=1)).isoformat()}))
    store = FeatureStore(data_project)
    store.apply()  # compiles the kernels into the shared cache, outside every clock
    store.close()
    partitions = suggest_partitions(size["events"], ROWS_PER_PARTITION)
    progress(f"starting a LocalCluster with {WORKERS} worker processes")
    with LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cluster:
        dask = f"dask://{cluster.scheduler_address.removeprefix('tcp://')}"
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        first: dict[str, dict[str, Any]] = {}
        for kind in ("training", "materialize"):
            project = _fresh_project(data_project, work / f"{kind}-dask")
            progress(f"{kind}: first dask run (workers load the kernels)")
            first[kind] = _run_child(kind, project, dask, work / f"{kind}-dask-first.parquet")
            for round_number in range(args.rounds):
                for engine_name, engine in (("local", "local"), ("dask", dask)):
                    project = _fresh_project(data_project, work / f"{kind}-{engine_name}")
                    progress(f"{kind}: {engine_name} run {round_number + 1}/{args.rounds}")
                    output = work / f"{kind}-{engine_name}.parquet"
                    results.setdefault((kind, engine_name), []).append(
                        _run_child(kind, project, engine, output))
    _report_offline(args, size, partitions, results, first, work)


def _report_offline(args: argparse.Namespace, size: dict[str, int], partitions: int,
                    results: dict[tuple[str, str], list[dict[str, Any]]],
                    first: dict[str, dict[str, Any]], work: Path) -> None:
    lines = [
        f"Offline scale-out: {size['events']:,} events, {size['users']:,} users, "
        f"{size['spine']:,} spine rows; {partitions} partitions; dask LocalCluster with "
        f"{WORKERS} worker processes; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end; {args.rounds} alternating rounds",
        "",
        f"{'':<26} {'local s':>9} {'cores':>6} {'dask s':>9} {'speedup':>8} "
        f"{'overhead/partition':>19} {'dask 1st s':>10} {'same result':>12}",
    ]
    for kind in ("training", "materialize"):
        local = statistics.median(r["wall_s"] for r in results[(kind, "local")])
        # CPU seconds of every thread of the local run per wall second: how many of the
        # machine's cores the local executor already keeps busy.
        cores = statistics.median(r["cpu_s"] / r["wall_s"] for r in results[(kind, "local")])
        dask = statistics.median(r["wall_s"] for r in results[(kind, "dask")])
        overhead = (WORKERS * dask - local) / partitions
        same = (_same_tables(work / f"{kind}-local.parquet", work / f"{kind}-dask.parquet")
                and _same_tables(work / f"{kind}-local.parquet",
                                 work / f"{kind}-dask-first.parquet"))
        label = "training set" if kind == "training" else "materialize (full)"
        lines.append(f"{label:<26} {local:>9.2f} {cores:>6.2f} {dask:>9.2f} {local / dask:>7.2f}x "
                     f"{overhead:>17.2f} s {first[kind]['wall_s']:>10.2f} "
                     f"{'yes' if same else 'NO':>12}")
        runs = " | ".join(f"local {a['wall_s']:.2f} dask {b['wall_s']:.2f}" for a, b in zip(
            results[(kind, "local")], results[(kind, "dask")], strict=True))
        lines.append(f"{'  each round':<26} {runs}")
        peak = max(r["peak_mb"] for r in results[(kind, "local")] + results[(kind, "dask")])
        lines.append(f"{'  driver peak RSS':<26} {peak:,.0f} MB")
    print("\n".join(lines), flush=True)


# ---------------------------------------------------------------------------------------
# Online


@contextmanager
def _servers(folder: Path) -> Iterator[tuple[str, Any]]:
    """A private redis-server and a private 3-master Redis Cluster; stopped by PID."""
    from tests.conftest import RedisServer
    from tests.redis_cluster import RedisClusterNodes

    executable, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if executable is None or cli is None:
        raise SystemExit("redis-server and redis-cli must be on PATH")
    (folder / "single").mkdir()
    single = RedisServer(executable, folder / "single")
    cluster = RedisClusterNodes(executable, folder / "cluster", cli)
    single.start()
    try:
        cluster.start()
        try:
            yield single.url, cluster
        finally:
            cluster.stop()
    finally:
        single.stop()


def _serve(registry: Path, port: int, online: str, what: str
           ) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """`featurestore serve` on `port` with FEATURESTORE_ONLINE set, once it answers."""
    from online import _http_ready, _process

    command = [sys.executable, "-m", "featurestore", "serve", "--registry", str(registry),
               "--port", str(port)]
    return _process(command, _http_ready(port), what, env={"FEATURESTORE_ONLINE": online})


def _node_commands(cluster: Any) -> list[dict[str, int]]:
    """Per node: command name → calls so far (INFO commandstats)."""
    import redis

    counts = []
    for node in cluster.nodes:
        with redis.Redis(port=node.port) as client:
            stats = client.info("commandstats")
        counts.append({name.removeprefix("cmdstat_"): value["calls"]
                       for name, value in stats.items()})
    return counts


def run_online(args: argparse.Namespace, work: Path) -> None:
    from online import WARMUP_REQUESTS, _bodies, _free_port, _run_client, alternating_rounds

    from featurestore import FeatureStore
    from featurestore.offline.materialize import load_online, publication
    from featurestore.sample_data import generate_transactions

    folder = work / "online"
    folder.mkdir()
    with _servers(folder) as (single_url, cluster):
        text = (ROOT / "registry.yaml").read_text()
        (folder / "registry.yaml").write_text(
            text.replace("online: local ", f"online: {single_url} ", 1))
        progress(f"generating {ONLINE_EVENTS:,} events for {ONLINE_USERS:,} users")
        data = generate_transactions(folder / "data" / "transactions.parquet",
                                     events=ONLINE_EVENTS, users=ONLINE_USERS, days=90, seed=0)
        store = FeatureStore(folder)
        store.apply()
        progress("materializing into the single Redis")
        store.materialize(end=data.end)
        os.environ["FEATURESTORE_ONLINE"] = cluster.url
        try:
            on_cluster = FeatureStore(folder)
            progress("loading the same states into the cluster")
            started = time.perf_counter()
            _, states = load_online(on_cluster.context, publication(on_cluster.context))
            cluster_load_s = time.perf_counter() - started
        finally:
            del os.environ["FEATURESTORE_ONLINE"]
        at = (data.end + timedelta(minutes=10)).isoformat()
        views = store.registry.feature_views
        features = [f"{view}:{name}" for view in views for name in views[view].features]
        features.append("txn_context:amount_z")
        single_bodies = _bodies(features, ONLINE_USERS, 2000, 1, at, seed=1)
        batch_bodies = _bodies(features, ONLINE_USERS, 300, 100, at, seed=2)
        sdk = _sdk_lookups(store, on_cluster, single_bodies, args.requests)
        ports = {"single": _free_port(), "cluster": _free_port()}
        registry = folder / "registry.yaml"
        with _serve(registry, ports["single"], single_url, "featurestore serve (single)"), \
                _serve(registry, ports["cluster"], cluster.url, "featurestore serve (cluster)"):
            progress(f"{args.rounds} alternating rounds of single-entity lookups")
            pooled, ratios = alternating_rounds(ports, single_bodies, args.rounds,
                                                args.requests, 0.5)
            batch = {}
            for name in ("single", "cluster"):
                before = _node_commands(cluster)
                batch[name] = _run_client(ports[name], batch_bodies, "sequential",
                                          count=len(batch_bodies))["latencies_us"]
                after = _node_commands(cluster)
                if name == "cluster":
                    per_node = [{command: calls - b.get(command, 0)
                                 for command, calls in a.items() if calls != b.get(command, 0)}
                                for a, b in zip(after, before, strict=True)]
        memory = [_used_memory(f"redis://127.0.0.1:{node.port}") for node in cluster.nodes]
        memory_single = _used_memory(single_url)
        store.close()
        on_cluster.close()
    # The client sends its warm-up requests first; every one is a lookup too.
    lookups = len(batch_bodies) + WARMUP_REQUESTS
    _report_online(args, pooled, ratios, batch, per_node, lookups, sdk, states,
                   cluster_load_s, (memory, memory_single))


def _used_memory(url: str) -> int:
    import redis

    with redis.Redis.from_url(url) as client:
        return int(client.info("memory")["used_memory"])


def _sdk_lookups(single: Any, cluster: Any, bodies: list[str], count: int
                 ) -> dict[str, list[float]]:
    """In-process `get_online_features` on both stores, interleaved call by call."""
    requests = [json.loads(body) for body in bodies]
    order = random.Random(3)
    latencies: dict[str, list[float]] = {"single": [], "cluster": []}
    for step in range(count + 200):
        request = requests[order.randrange(len(requests))]
        for name, store in (("single", single), ("cluster", cluster)):
            started = time.perf_counter()
            store.get_online_features(**request)
            if step >= 200:  # the first calls warm connections and caches
                latencies[name].append((time.perf_counter() - started) * 1e6)
    return latencies


def _report_online(args: argparse.Namespace, pooled: dict[str, list[float]],
                   ratios: list[float], batch: dict[str, list[float]],
                   per_node: list[dict[str, int]], lookups: int,
                   sdk: dict[str, list[float]], states: int, load_s: float,
                   memories: tuple[list[int], int]) -> None:
    from online import _percentile

    def row(name: str, values: list[float], note: str = "") -> str:
        return (f"{name:<40} {_percentile(values, 0.5) / 1000:>9.3f} "
                f"{_percentile(values, 0.99) / 1000:>9.3f}  {note}")

    memory, memory_single = memories
    ratio = statistics.median(ratios)
    sdk_ratio = _percentile(sdk["cluster"], 0.5) / _percentile(sdk["single"], 0.5)
    # Commands a script runs inside Redis (its GETs) count in commandstats too, and so do
    # the server's own checks of the published version: the round trips of lookups are
    # the read scripts, one EVALSHA_RO (EVAL_RO after a restart) per call.
    touched = [sum(calls for command, calls in counts.items() if command in READ_SCRIPTS)
               / lookups for counts in per_node]
    one_each = all(abs(value - 1.0) < 0.05 for value in touched)
    lines = [
        f"Online on Redis Cluster: {ONLINE_USERS:,} users; 3 masters against one "
        f"redis-server; {args.rounds} alternating rounds of {args.requests:,} requests; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
        "",
        f"{f'load {states:,} states into the cluster':<40} {load_s:9.1f} s; used memory per "
        "node " + ", ".join(f"{m / 2**20:.0f} MiB" for m in memory)
        + f" ({sum(memory) / states:.0f} B per user in all; the single Redis "
        f"{memory_single / 2**20:.0f} MiB, {memory_single / states:.0f} B per user)",
        "",
        f"{'':<40} {'p50 ms':>9} {'p99 ms':>9}",
        row("server on single Redis, 1 entity", pooled["single"]),
        row("server on Redis Cluster, 1 entity", pooled["cluster"],
            f"p50 {ratio:.2f}x single, median of rounds (target <= {TARGET_SINGLE_RATIO}x): "
            f"{'ok' if ratio <= TARGET_SINGLE_RATIO else 'MISSED'}"),
        f"{'  p50 ratio per round':<40} " + " ".join(f"{value:.3f}" for value in ratios),
        row("SDK on single Redis, 1 entity", sdk["single"]),
        row("SDK on Redis Cluster, 1 entity", sdk["cluster"], f"p50 {sdk_ratio:.2f}x single"),
        row("server on single Redis, 100 entities", batch["single"]),
        row("server on Redis Cluster, 100 entities", batch["cluster"]),
        f"{'read scripts per 100-entity lookup':<40} "
        + ", ".join(f"node {i}: {value:.2f}" for i, value in enumerate(touched))
        + f" (target: 1 per node): {'ok' if one_each else 'MISSED'}",
        f"{'  all commands per lookup, by node':<40} "
        + "; ".join(f"node {i}: " + ", ".join(f"{command} {calls / lookups:.2f}"
                                              for command, calls in sorted(counts.items()))
                    for i, counts in enumerate(per_node)),
    ]
    print("\n".join(lines), flush=True)


# ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("offline", "online", "both"), default="both")
    parser.add_argument("--small", action="store_true", help="a tenth of the offline size")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--requests", type=int, default=2000,
                        help="single-entity requests per online round")
    parser.add_argument("--work-dir", type=Path, help="keep inputs and outputs here")
    parser.add_argument("--child", choices=("training", "materialize"), help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args.child, args.project, args.engine, args.output)
        return

    def run(work: Path) -> None:
        if args.part in ("offline", "both"):
            run_offline(args, work)
        if args.part in ("online", "both"):
            run_online(args, work)

    in_work_folder(args.work_dir, "featurestore-scale-out-", run)


if __name__ == "__main__":
    main()
