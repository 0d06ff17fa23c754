"""Benchmark the online path against the floors of its own stack.

Setup (only the load is timed): a private redis-server on a free port of 127.0.0.1, the
demo registry in a temporary folder with sample data for --users users, apply and
materialize at the end of the sample timeline.

Measured:

1. load: `load_online` alone, every user's state from the offline file into a new Redis
   version, then published (the online half of a materialization);
2. floors: a raw redis-py GET of one state (in this process), and a bare FastAPI
   endpoint on uvicorn (its own process) that parses the same JSON body as a lookup and
   does one Redis GET;
3. the server (`featurestore serve`, its own process; it answers lookups with a plain
   ASGI handler in front of its FastAPI routes, see `featurestore/serving/server.py`):
   single-entity requests for every demo feature plus a request feature, sequentially;
   100-entity requests, sequentially; and throughput with 16 concurrent clients. The
   bare endpoint gets the same single-entity requests and the same 16 clients,
   alternating with the server;
4. the in-process SDK lookup (`get_online_features`, same request) against the raw GET.

With --served-log, only the cost of the served-value log is measured instead: two
`featurestore serve` processes on the same Redis, one logging every lookup
(`--log-sample-rate 1`), one not (`0`), get the same single-entity requests in
alternating rounds; the table gives both p99s and their ratio (target <= 1.1x), and how
many rows the logging server wrote.

HTTP requests come from a separate client process (`--client`, internal) with one
keep-alive connection per client thread (the standard library's http.client, the
lightest client at hand, so the client's own cost stays small). Both servers run
uvicorn with the same settings. The machine may be shared: the header prints the load
average, and every contender runs --rounds times, alternating, with latencies pooled.

Usage (from the repository root):

    .venv/bin/python benchmarks/online.py                     # 100k users
    .venv/bin/python benchmarks/online.py --users 20000 --events 400000 --requests 1000
    .venv/bin/python benchmarks/online.py --served-log --rounds 6  # logging on vs off
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

# Module level: FastAPI resolves the endpoint's annotations in this module's globals.
from fastapi import FastAPI, Request, Response

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"single": 1.5, "sdk": 5.0, "batch_ms": 5.0, "throughput": 0.7, "load_s": 10.0,
           "served_log_p99": 1.1}
LOOKUP_PATH = "/online-features"
READY_TIMEOUT_S = 120.0


# ---------------------------------------------------------------------------------------
# Processes started here, always stopped by their PID


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@contextmanager
def _process(command: list[str], ready: Callable[[], bool], what: str,
             env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process until the block ends; wait until `ready()` before entering it.
    `env` is added to the children's environment (which has no FEATURESTORE_ settings)."""
    process = subprocess.Popen(command, env={**_child_env(), **(env or {})},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not ready():
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"{what} exited:\n{error}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not ready after {READY_TIMEOUT_S:.0f}s")
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _redis_ready(port: int) -> Callable[[], bool]:
    import redis

    def ready() -> bool:
        try:
            with redis.Redis(port=port, socket_connect_timeout=0.5) as client:
                return bool(client.ping())
        except redis.ConnectionError:
            return False
    return ready


def _http_ready(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        try:
            connection.request("GET", "/health")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()
    return ready


# ---------------------------------------------------------------------------------------
# The bare endpoint (a floor): parse the same body, one Redis GET, answer JSON


def bare_server(port: int, redis_url: str, prefix: bytes) -> None:
    """Serve POST /online-features: orjson-parse the body, GET the first user's state."""
    import orjson
    import redis
    import uvicorn

    from featurestore.online import encode_entity_key

    client = redis.Redis.from_url(redis_url)
    app = FastAPI()

    @app.post(LOOKUP_PATH)
    async def lookup(request: Request) -> Response:
        body = orjson.loads(await request.body())
        user = body["entities"]["user_id"][0]
        state = client.get(prefix + encode_entity_key((user,)))
        answer = {"features": {"user_id": [user], "state_bytes": [len(state or b"")]}}
        return Response(orjson.dumps(answer), media_type="application/json")

    @app.get("/health")
    async def health() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


# ---------------------------------------------------------------------------------------
# The client process: keep-alive HTTP, sequential or concurrent

WARMUP_REQUESTS = 200


def _send(port: int, bodies: Sequence[bytes], seed: int, count: int | None = None,
          deadline: float | None = None) -> list[float]:
    """Send random bodies on one keep-alive connection; latencies in seconds."""
    headers = {"content-type": "application/json"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30.0)
    order = random.Random(seed)
    latencies: list[float] = []
    try:
        while (count is None or len(latencies) < count) and (
                deadline is None or time.perf_counter() < deadline):
            body = bodies[order.randrange(len(bodies))]
            started = time.perf_counter()
            connection.request("POST", LOOKUP_PATH, body, headers)
            response = connection.getresponse()
            payload = response.read()
            latencies.append(time.perf_counter() - started)
            if response.status != 200:
                raise RuntimeError(f"status {response.status}: {payload[:300]!r}")
    finally:
        connection.close()
    return latencies


def client(port: int, bodies_file: Path, mode: str, count: int, clients: int,
           duration: float) -> dict[str, Any]:
    """What the client process measures (internal, --client): latencies in µs, req/s."""
    bodies = [body.encode() for body in json.loads(bodies_file.read_text())]
    if mode == "sequential":
        _send(port, bodies, seed=0, count=WARMUP_REQUESTS)
        latencies = _send(port, bodies, seed=1, count=count)
        return {"latencies_us": [x * 1e6 for x in latencies]}
    results: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    start = threading.Barrier(clients + 1)

    def run(index: int) -> None:
        try:
            _send(port, bodies, seed=100 + index, count=WARMUP_REQUESTS // 10)
            start.wait()
            results[index] = _send(port, bodies, seed=200 + index,
                                   deadline=time.perf_counter() + duration)
        except BaseException as error:  # reported after join
            errors.append(error)
            start.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    pooled = [x * 1e6 for latencies in results for x in latencies]
    return {"latencies_us": pooled, "requests": len(pooled), "seconds": elapsed}


def _run_client(port: int, bodies: list[str], mode: str, count: int = 0, clients: int = 1,
                duration: float = 0.0) -> dict[str, Any]:
    """Run the client process against a server and return what it measured."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(bodies, handle)
    try:
        command = [sys.executable, str(Path(__file__).resolve()), "--client", str(port),
                   handle.name, mode, str(count), str(clients), str(duration)]
        done = subprocess.run(command, env=_child_env(), capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"client failed:\n{done.stderr.decode()}")
        return json.loads(done.stdout)
    finally:
        os.unlink(handle.name)


# ---------------------------------------------------------------------------------------
# Statistics and the table


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _summary(latencies_us: Sequence[float], per_second: float | None = None) -> dict[str, float]:
    return {"p50": _percentile(latencies_us, 0.5), "p99": _percentile(latencies_us, 0.99),
            "rps": per_second if per_second is not None else 1e6 / (
                sum(latencies_us) / len(latencies_us))}


def _row(name: str, stats: dict[str, float], note: str = "") -> str:
    return (f"{name:<44} {stats['p50'] / 1000:>9.3f} {stats['p99'] / 1000:>9.3f} "
            f"{stats['rps']:>10,.0f}  {note}")


def _verdict(value: float, target: float, lower_is_better: bool = True) -> str:
    good = value <= target if lower_is_better else value >= target
    return "ok" if good else "MISSED"


# ---------------------------------------------------------------------------------------
# Orchestration


def _bodies(features: list[str], users: int, count: int, batch: int, at: str,
            seed: int) -> list[str]:
    """Lookup bodies for random users (ids 1..users), each with a request field."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        ids = [rng.randint(1, users) for _ in range(batch)]
        amounts = [round(rng.uniform(1.0, 500.0), 2) for _ in ids]
        bodies.append(json.dumps({"features": features, "entities": {"user_id": ids},
                                  "request": {"amount_now": amounts}, "at": at}))
    return bodies


def _prepare(folder: Path, redis_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Write the project, generate events, apply and materialize; time the online load."""
    from featurestore import FeatureStore
    from featurestore.offline.materialize import STATES_TABLE, load_online, publication
    from featurestore.sample_data import generate_transactions

    text = (ROOT / "registry.yaml").read_text()
    online = text.replace("online: local ", f"online: {redis_url} ", 1)
    (folder / "registry.yaml").write_text(online)
    data = generate_transactions(folder / "data" / "transactions.parquet", events=args.events,
                                 users=args.users, days=args.days, seed=0)
    store = FeatureStore(folder)
    store.apply()
    started = time.perf_counter()
    store.materialize(end=data.end)
    materialize_s = time.perf_counter() - started
    started = time.perf_counter()
    _, states = load_online(store.context, publication(store.context))
    load_s = time.perf_counter() - started
    state_bytes = store.offline_database().run(lambda con: con.execute(
        f"SELECT avg(octet_length(state)) FROM {STATES_TABLE}").fetchone()[0])
    return {"store": store, "end": data.end, "materialize_s": materialize_s,
            "load_s": load_s, "states": states, "state_bytes": float(state_bytes)}


def _measure(args: argparse.Namespace, folder: Path) -> None:
    import redis

    redis_port, server_port, bare_port = _free_port(), _free_port(), _free_port()
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    redis_command = [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", str(folder)]
    with _process(redis_command, _redis_ready(redis_port), "redis-server"):
        setup = _prepare(folder, redis_url, args)
        store = setup["store"]
        at = (setup["end"] + timedelta(minutes=10)).isoformat()
        views = store.registry.feature_views
        features = [f"{view}:{name}" for view in views for name in views[view].features]
        features.append("txn_context:amount_z")
        single = _bodies(features, args.users, 2000, 1, at, seed=1)
        batch = _bodies(features, args.users, 300, 100, at, seed=2)
        if args.served_log:
            _served_log_cost(args, folder, store, single)
            return
        with redis.Redis.from_url(redis_url) as raw:
            project = store.registry.project
            version = raw.get(f"fs:{project}:current".encode())
            prefix = f"fs:{project}:v:{version.decode()}:s:user_txn:".encode()
            memory = raw.info("memory")["used_memory"]
            results = _in_process(store, raw, prefix, single, args.requests)
        serve = [sys.executable, "-m", "featurestore", "serve", "--registry",
                 str(folder / "registry.yaml"), "--port", str(server_port)]
        bare = [sys.executable, str(Path(__file__).resolve()), "--bare-server", str(bare_port),
                redis_url, prefix.decode()]
        with _process(serve, _http_ready(server_port), "featurestore serve"), \
                _process(bare, _http_ready(bare_port), "bare endpoint"):
            results.update(_over_http(args, server_port, bare_port, single, batch))
    _report(args, setup, results, memory)


def alternating_rounds(ports: dict[str, int], bodies: list[str], rounds: int, count: int,
                       fraction: float) -> tuple[dict[str, list[float]], list[float]]:
    """`rounds` rounds of `count` sequential requests to two servers in turn.

    Returns:
        The latencies (µs) pooled per server, and per round the ratio of the second
        server's `fraction` percentile to the first's (`ports` gives the order).
    """
    first, second = ports
    pooled: dict[str, list[float]] = {name: [] for name in ports}
    ratios: list[float] = []
    for _ in range(rounds):
        seen = {}
        for name, port in ports.items():
            latencies = _run_client(port, bodies, "sequential", count=count)["latencies_us"]
            pooled[name] += latencies
            seen[name] = _percentile(latencies, fraction)
        ratios.append(seen[second] / seen[first])
    return pooled, ratios


def _served_log_cost(args: argparse.Namespace, folder: Path, store: Any,
                     single: list[str]) -> None:
    """Single-entity p99 of a server logging every lookup against one logging none,
    in alternating rounds of the same requests."""
    from featurestore.serving.served_log import read_served_log, served_log_dir

    ports = {"off": _free_port(), "on": _free_port()}
    serve = [sys.executable, "-m", "featurestore", "serve", "--registry",
             str(folder / "registry.yaml")]
    with _process([*serve, "--port", str(ports["off"]), "--log-sample-rate", "0"],
                  _http_ready(ports["off"]), "featurestore serve (log off)"), \
            _process([*serve, "--port", str(ports["on"]), "--log-sample-rate", "1"],
                     _http_ready(ports["on"]), "featurestore serve (log on)"):
        pooled, round_ratios = alternating_rounds(ports, single, args.rounds, args.requests,
                                                  0.99)
    # Both servers have stopped: the logging one wrote what it logged on its way out.
    logged = read_served_log(served_log_dir(store.offline_path)).num_rows
    off, on = _summary(pooled["off"]), _summary(pooled["on"])
    # The verdict is the median of the rounds' ratios: a round that a neighbour's burst
    # of load hits skews the pooled p99 of one contender, not the median.
    ratio = statistics.median(round_ratios)
    target = TARGETS["served_log_p99"]
    print("\n".join([
        f"Served-value log: {args.users:,} users, {args.rounds} alternating rounds of "
        f"{args.requests:,} single-entity requests; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end",
        "",
        f"{'':<44} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>10}",
        _row("server, log off (--log-sample-rate 0)", off),
        _row("server, log on (--log-sample-rate 1)", on,
             f"pooled p99 {on['p99'] / off['p99']:.3f}x off"),
        f"{'p99 on/off per round':<44} "
        + " ".join(f"{value:.3f}" for value in round_ratios)
        + f"; median {ratio:.3f}x (target <= {target}x): {_verdict(ratio, target)}",
        f"{'rows the logging server wrote':<44} {logged:>9,}",
    ]))


def _in_process(store: Any, raw: Any, prefix: bytes, bodies: list[str],
                count: int) -> dict[str, dict[str, float]]:
    """Raw GET and SDK lookup p50, interleaved call by call so load changes hit both."""
    from featurestore.online import encode_entity_key

    requests = [json.loads(body) for body in bodies]
    keys = [prefix + encode_entity_key((r["entities"]["user_id"][0],)) for r in requests]
    order = random.Random(3)
    latencies: dict[str, list[float]] = {"get": [], "sdk": []}
    for step in range(count + WARMUP_REQUESTS):
        index = order.randrange(len(requests))
        started = time.perf_counter()
        raw.get(keys[index])
        middle = time.perf_counter()
        store.get_online_features(**requests[index])
        ended = time.perf_counter()
        if step >= WARMUP_REQUESTS:
            latencies["get"].append((middle - started) * 1e6)
            latencies["sdk"].append((ended - middle) * 1e6)
    return {name: _summary(values) for name, values in latencies.items()}


def _over_http(args: argparse.Namespace, server_port: int, bare_port: int,
               single: list[str], batch: list[str]) -> dict[str, dict[str, float]]:
    pooled: dict[str, list[float]] = {"bare": [], "single": [], "bare16": [], "server16": []}
    rates: dict[str, list[float]] = {"bare16": [], "server16": []}
    for _ in range(args.rounds):
        for name, port in (("bare", bare_port), ("single", server_port)):
            pooled[name] += _run_client(port, single, "sequential",
                                        count=args.requests)["latencies_us"]
    for _ in range(args.rounds):
        for name, port in (("bare16", bare_port), ("server16", server_port)):
            measured = _run_client(port, single, "concurrent", clients=args.clients,
                                   duration=args.duration)
            pooled[name] += measured["latencies_us"]
            rates[name].append(measured["requests"] / measured["seconds"])
    batched = _run_client(server_port, batch, "sequential",
                          count=max(args.requests // 10, 100))["latencies_us"]
    out = {name: _summary(values) for name, values in pooled.items() if name not in rates}
    out.update({name: _summary(pooled[name], sorted(r)[len(r) // 2])
                for name, r in rates.items()})
    out["batch"] = _summary(batched)
    return out


def _report(args: argparse.Namespace, setup: dict[str, Any], r: dict[str, dict[str, float]],
            memory: int) -> None:
    states = setup["states"]
    single, bare = r["single"], r["bare"]
    p50_ratio, p99_ratio = single["p50"] / bare["p50"], single["p99"] / bare["p99"]
    sdk_ratio = r["sdk"]["p50"] / r["get"]["p50"]
    rate_ratio = r["server16"]["rps"] / r["bare16"]["rps"]
    lines = [
        f"Online path: {args.users:,} users, {args.events:,} events over {args.days} days; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end",
        "",
        f"{'materialize (offline states + online load)':<44} {setup['materialize_s']:9.1f} s",
        f"{f'load {states:,} states into Redis':<44} {setup['load_s']:9.1f} s   "
        f"target < {TARGETS['load_s']:.0f} s: {_verdict(setup['load_s'], TARGETS['load_s'])}",
        f"{'state size':<44} {setup['state_bytes']:9.0f} B per user; Redis used memory "
        f"{memory / 2**20:.0f} MiB ({memory / states:.0f} B per user)",
        "",
        f"{'':<44} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>10}",
        _row("raw redis-py GET (in process)", r["get"]),
        _row("SDK lookup, 1 entity (in process)", r["sdk"],
             f"p50 {sdk_ratio:.1f}x raw GET (target <= {TARGETS['sdk']:.0f}x): "
             f"{_verdict(sdk_ratio, TARGETS['sdk'])}"),
        _row("bare FastAPI + 1 GET, 1 entity", bare),
        _row("server, 1 entity (9 features + request)", single,
             f"p50 {p50_ratio:.2f}x, p99 {p99_ratio:.2f}x bare (target <= "
             f"{TARGETS['single']}x): {_verdict(max(p50_ratio, p99_ratio), TARGETS['single'])}"),
        _row("server, 100 entities", r["batch"],
             f"p50 target < {TARGETS['batch_ms']:.0f} ms: "
             f"{_verdict(r['batch']['p50'] / 1000, TARGETS['batch_ms'])}"),
        _row(f"bare FastAPI + 1 GET, {args.clients} clients", r["bare16"]),
        _row(f"server, 1 entity, {args.clients} clients", r["server16"],
             f"{rate_ratio:.2f}x bare req/s (target >= {TARGETS['throughput']}x): "
             f"{_verdict(rate_ratio, TARGETS['throughput'], lower_is_better=False)}"),
    ]
    print("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and run the benchmark (or one of its internal roles)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--client"]:
        port, path, mode, count, clients, duration = argv[1:7]
        print(json.dumps(client(int(port), Path(path), mode, int(count), int(clients),
                                float(duration))))
        return
    if argv[:1] == ["--bare-server"]:
        bare_server(int(argv[1]), argv[2], argv[3].encode())
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=3000,
                        help="sequential requests per round (100-entity: a tenth)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds per concurrent round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per contender")
    parser.add_argument("--served-log", action="store_true",
                        help="measure only the served-value log: p99 with logging on vs off")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="featurestore-online-bench-") as folder:
        _measure(args, Path(folder))


if __name__ == "__main__":
    main()
