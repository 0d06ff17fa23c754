"""Benchmark the compiled window kernels and the compile time of the demo registry.

Measures, for the demo feature view `user_txn` (tests/transforms/demo_spec.py: 8 window
features, then one of each list, decayed and sketch aggregation) over events from the
sample generator (featurestore/sample_data.py):

1. `CompiledView.training_values` on events and query times sorted by (entity, time),
   with `merchant_category` as float64 dictionary codes: wall and CPU time and peak RSS,
   split into row expressions (`view.rows`), tile building (a run with one query per
   entity) and per-query merging (the rest);
2. a plain numpy/pandas implementation of the first 8 features (per-entity running sums
   and `np.searchsorted`), timed the same way; its results are checked against the
   kernels' on every query (nulls identical, largest relative difference printed) and
   the time ratio is printed;
3. compile time of DEMO_SPEC: cold (fresh kernel cache dir and fresh Numba cache dir, new
   process) and warm (same dirs, the next new process): `compile_graph` alone, the
   imports, and the whole process from spawn to exit.

Every contender runs in its own child process of this script (`--child ...`, internal),
`--repeat` times, alternating kernels and baseline; medians are printed. Input generation
(sample generator, Parquet round trip, dictionary encoding, sorting) runs once in a child
of its own and is outside every contender's time; the sorts are timed and printed.
Peak RSS is the child's own high-water mark (VmHWM in /proc/self/status): the
`ru_maxrss` of a spawned child also counts the parent's memory at spawn time. CPU time
(user + sys, from `os.wait4`) is printed next to wall time because the machine may be
shared: single-threaded work whose wall time is far above its CPU time was waiting for a
core.

Usage (from the repository root):

    .venv/bin/python benchmarks/kernels.py            # 10M events, 10k entities, 1M queries
    .venv/bin/python benchmarks/kernels.py --small    # 1M events, 1k entities, 100k queries
    .venv/bin/python benchmarks/kernels.py --events 3000000 --queries 300000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from harness import in_work_folder

ROOT = Path(__file__).resolve().parents[1]
VIEW_NAME = "user_txn"
KERNEL_TARGET_S = 2.0
COLD_TARGET_S = 15.0
WARM_TARGET_S = 1.0

PRESETS = {
    "full": {"events": 10_000_000, "entities": 10_000, "queries": 1_000_000},
    "small": {"events": 1_000_000, "entities": 1_000, "queries": 100_000},
}
ARRAYS = ("entity", "ts", "amount", "merchant_category", "query_entity", "query_ts")


# ---------------------------------------------------------------------------------------
# Child processes


def _child_env(numba_cache: Path | None = None) -> dict[str, str]:
    """Environment of a child: the repository importable, optionally a private Numba cache."""
    env = dict(os.environ)
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    if numba_cache is not None:
        env["NUMBA_CACHE_DIR"] = str(numba_cache)
    return env


def _ensure_importable() -> None:
    """Let this process import `transforms`, `featurestore` and `tests`."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _memory_mb() -> dict[str, float]:
    """Current (VmRSS) and peak (VmHWM) resident set size of this process in MB."""
    found = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line[:5]] = int(line.split()[1]) / 1024
    except OSError:  # no /proc: fall back to the high-water mark getrusage gives
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        found["VmHWM"] = peak / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return {"rss_mb": found.get("VmRSS", float("nan")), "peak_mb": found["VmHWM"]}


@dataclass
class ChildResult:
    """A child's JSON report with what the parent measured around it."""

    report: dict[str, Any]
    wall_s: float  # spawn to exit, as seen by the parent
    cpu_s: float  # user + system CPU time of the child (os.wait4)

    @property
    def peak_mb(self) -> float:
        """The child's own peak RSS."""
        return float(self.report["peak_mb"])


def run_child(args: Sequence[str], env: dict[str, str]) -> ChildResult:
    """Run this script with `args`; the child prints its JSON report as the last line."""
    command = [sys.executable, str(Path(__file__).resolve()), *args]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed with exit code {process.returncode}")
    lines = output.strip().splitlines()
    if not lines:
        raise RuntimeError(f"child {' '.join(args)} printed no report")
    return ChildResult(json.loads(lines[-1]), wall, usage.ru_utime + usage.ru_stime)


def _timed(function: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    """Run `function`; return ({"wall": s, "cpu": s}, its result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}, result


def child_prepare(directory: Path, events: int, entities: int, queries: int, days: int,
                  seed: int) -> dict[str, Any]:
    """Write sample events and queries as .npy files to `directory`; report the timings.

    Events come from `featurestore.sample_data.generate_transactions` (written to Parquet
    and read back). `merchant_category` becomes float64 codes into a sorted dictionary
    (NaN for null), as the offline reader hands strings to the kernels. Queries are
    uniform random entities (ids 1..entities, as the generator numbers users) at uniform
    random times within the events' time range.
    """
    _ensure_importable()
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from featurestore.sample_data import generate_transactions

    directory.mkdir(parents=True, exist_ok=True)
    parquet = directory / "events.parquet"
    generate, _ = _timed(lambda: generate_transactions(
        parquet, events=events, users=entities, days=days, seed=seed))
    table = pq.read_table(parquet)
    parquet.unlink()
    entity = table["user_id"].to_numpy()
    ts = pc.cast(table["event_ts"], pa.int64()).to_numpy()
    amount = table["amount"].to_numpy(zero_copy_only=False)  # nulls become NaN
    category = table["merchant_category"]
    dictionary = sorted(pc.unique(category).drop_null().to_pylist())
    codes = pc.index_in(category, value_set=pa.array(dictionary, pa.string()))
    category_codes = codes.to_numpy(zero_copy_only=False).astype(np.float64)
    del table, category, codes

    sort_events, order = _timed(lambda: np.lexsort((ts, entity)))
    rng = np.random.default_rng([seed, 7])
    query_entity = rng.integers(1, entities + 1, queries, dtype=np.int64)
    query_ts = rng.integers(int(ts.min()), int(ts.max()) + 1, queries, dtype=np.int64)
    sort_queries, query_order = _timed(lambda: np.lexsort((query_ts, query_entity)))
    arrays = {
        "entity": entity[order], "ts": ts[order], "amount": amount[order],
        "merchant_category": category_codes[order],
        "query_entity": query_entity[query_order], "query_ts": query_ts[query_order],
    }
    for name, values in arrays.items():
        np.save(directory / f"{name}.npy", np.ascontiguousarray(values))
    (directory / "dictionary.json").write_text(json.dumps(dictionary))
    return {"generate_s": generate["wall"], "sort_events_s": sort_events["wall"],
            "sort_queries_s": sort_queries["wall"], "events": len(entity)}


def load_data(directory: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays written by `child_prepare`, read fully into memory."""
    arrays = {name: np.load(directory / f"{name}.npy") for name in ARRAYS}
    return arrays, json.loads((directory / "dictionary.json").read_text())


def child_compile(cache_dir: Path) -> dict[str, Any]:
    """Import Numba and the compiler, compile DEMO_SPEC into `cache_dir`; report stages.

    Importing `transforms.compiler` compiles (or loads from Numba's cache) the helpers of
    `transforms/windows.py`, so that stage is reported apart from the Numba import.
    """
    _ensure_importable()
    numba_import, _ = _timed(lambda: __import__("numba"))

    def import_compiler() -> Any:
        from tests.transforms.demo_spec import DEMO_SPEC
        from transforms.compiler import compile_graph

        return DEMO_SPEC, compile_graph

    transforms_import, (spec, compile_graph) = _timed(import_compiler)
    # Generated kernel modules already there (fs_<kind>_<name>_<hash>.py): a warm run
    # writes none, a cold one writes every module the graph needs.
    present = {path.name for path in cache_dir.glob("fs_*.py")}
    load_time, graph = _timed(lambda: compile_graph(spec, cache_dir))
    # Entry kernels compile on first use: time the training path first (what a
    # training-set build waits for), then the rest (`warm`, as `apply` does).
    view = graph.views[VIEW_NAME]
    empty = np.zeros(0, np.int64)
    columns = {name: np.zeros(0) for name in view.input_columns}
    training_time, _ = _timed(lambda: view.training_values(empty, empty, columns, {}, empty,
                                                           empty))
    rest_time, _ = _timed(graph.warm)
    cached = bool(present) and {path.name for path in cache_dir.glob("fs_*.py")} <= present

    def total(*stages: dict[str, float]) -> dict[str, float]:
        return {clock: sum(stage[clock] for stage in stages) for clock in ("wall", "cpu")}

    return {"numba_import": numba_import, "transforms_import": transforms_import,
            "compile": total(load_time, training_time, rest_time),
            "training": total(load_time, training_time), "module_cached": cached,
            "hash": graph.hash}


def child_kernels(data_dir: Path, cache_dir: Path, out: Path | None) -> dict[str, Any]:
    """Time `training_values` on all queries, on one query per entity, and `view.rows`."""
    _ensure_importable()
    from tests.transforms.demo_spec import DEMO_SPEC
    from transforms.compiler import compile_graph

    arrays, dictionary = load_data(data_dir)
    graph = compile_graph(DEMO_SPEC, cache_dir)
    graph.warm()  # kernels load (and Numba starts) outside the clock
    view = graph.views[VIEW_NAME]
    columns = {name: arrays[name] for name in view.input_columns}
    dictionaries = {name: dictionary for name in view.string_columns}
    entity, ts = arrays["entity"], arrays["ts"]
    query_entity, query_ts = arrays["query_entity"], arrays["query_ts"]
    before = _memory_mb()["rss_mb"]

    full, values = _timed(lambda: view.training_values(
        entity, ts, columns, dictionaries, query_entity, query_ts))
    if out is not None:
        np.save(out, values)
    del values
    # One query per queried entity: every tile is still built; merging is negligible.
    first = np.flatnonzero(np.r_[True, query_entity[1:] != query_entity[:-1]])
    one_per_entity, _ = _timed(lambda: view.training_values(
        entity, ts, columns, dictionaries, query_entity[first], query_ts[first]))
    rows, _ = _timed(lambda: view.rows(columns, dictionaries, len(entity)))
    # The same call on one thread: what the other cores add.
    os.environ["FEATURESTORE_THREADS"] = "1"
    one_thread, _ = _timed(lambda: view.training_values(
        entity, ts, columns, dictionaries, query_entity, query_ts))
    del os.environ["FEATURESTORE_THREADS"]
    return {"time": full, "rows": rows, "one_per_entity": one_per_entity,
            "one_thread": one_thread,
            "entities_queried": len(first), "feature_names": list(view.feature_names),
            "hash": graph.hash, "inputs_rss_mb": before}


def child_baseline(data_dir: Path, out: Path | None) -> dict[str, Any]:
    """Time the numpy/pandas baseline on all queries."""
    _ensure_importable()
    import pandas  # noqa: F401  (imported before the clock starts, as numba is for kernels)

    from benchmarks.pandas_baseline import baseline_values

    arrays, _ = load_data(data_dir)
    before = _memory_mb()["rss_mb"]
    stats: dict[str, int] = {}
    elapsed, values = _timed(lambda: baseline_values(
        arrays["entity"], arrays["ts"], arrays["amount"], arrays["merchant_category"],
        arrays["query_entity"], arrays["query_ts"], stats))
    if out is not None:
        np.save(out, values)
    return {"time": elapsed, "inputs_rss_mb": before, **stats}


def _median(results: Sequence[ChildResult], stage: str, clock: str = "wall") -> float:
    return statistics.median(r.report[stage][clock] for r in results)


def _runs(values: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _verdict(value: float, target: float) -> str:
    return f"{'met' if value < target else 'MISSED'} (< {target:g} s)"


def _print_kernel_table(args: argparse.Namespace, kernels: list[ChildResult],
                        baseline: list[ChildResult]) -> None:
    header = (f"{'contender':44}{'wall s':>8}{'cpu s':>8}   {'wall runs s':<17}"
              f"{'peak RSS MB':>12}{'inputs MB':>10}")
    print("\n" + header)
    print("-" * len(header))

    def line(label: str, results: list[ChildResult], stage: str, memory: bool) -> None:
        runs = _runs([r.report[stage]["wall"] for r in results])
        rss = ""
        if memory:
            inputs = statistics.median(r.report["inputs_rss_mb"] for r in results)
            rss = f"{max(r.peak_mb for r in results):12.0f}{inputs:10.0f}"
        print(f"{label:44}{_median(results, stage):8.3f}{_median(results, stage, 'cpu'):8.3f}"
              f"   {runs:<17}{rss}")

    full = _median(kernels, "time")
    line("kernels: training_values, all queries", kernels, "time", True)
    line("  view.rows (row expressions)", kernels, "rows", False)
    queried = kernels[0].report["entities_queried"]
    line(f"  one query per entity ({queried:,} queries)", kernels, "one_per_entity", False)
    rows, one = _median(kernels, "rows"), _median(kernels, "one_per_entity")
    print(f"{'  => tile building ~ one-per-entity - rows':44}{one - rows:8.3f}")
    print(f"{'  => per-query merging ~ all - one-per-entity':44}{full - one:8.3f}")
    line("  all queries on one thread", kernels, "one_thread", False)
    single = _median(kernels, "one_thread")
    print(f"{'  => speedup from the other core(s)':44}{single / full:7.2f}x")
    if baseline:
        line("baseline: numpy/pandas, all queries", baseline, "time", True)
        wall = _median(baseline, "time") / full
        cpu = _median(baseline, "time", "cpu") / _median(kernels, "time", "cpu")
        print(f"{'ratio baseline / kernels':44}{wall:7.1f}x{cpu:7.1f}x")
    print(f"target kernels: wall {_verdict(full, KERNEL_TARGET_S)}, cpu "
          f"{_verdict(_median(kernels, 'time', 'cpu'), KERNEL_TARGET_S)}; "
          f"{full / args.events * 1e9:.0f} ns per event, {full / args.queries * 1e9:.0f} ns "
          f"per query (wall)")


def _print_check(args: argparse.Namespace, check: list[tuple[str, int, float, int]],
                 baseline: list[ChildResult]) -> None:
    from benchmarks.pandas_baseline import TOLERANCE

    nulls = sum(c[1] for c in check)
    beyond = sum(c[3] for c in check)
    verdict = "OK" if nulls == 0 and beyond == 0 else "DIFFERENT"
    print(f"\ncheck baseline vs kernels, all {args.queries:,} queries: {nulls} null "
          f"mismatches, {beyond} values beyond {TOLERANCE:g} relative -> {verdict}")
    for name, mismatches, worst, count in check:
        print(f"  {name:22} max rel diff {worst:8.1e}   null mismatches {mismatches}   "
              f"beyond {count}")
    redone = baseline[0].report.get("std_windows_recomputed", 0)
    print(f"  (the baseline summed {redone:,} ill-conditioned std windows directly)")


def _print_compile_table(compiles: list[tuple[ChildResult, ChildResult]]) -> None:
    header = (f"{'compile DEMO_SPEC, new process each':40}{'all kernels':>15}"
              f"{'import':>15}{'import':>9}{'process':>15}{'peak RSS':>10}")
    print("\n" + header)
    print(f"{'':40}{'wall s':>8}{'cpu s':>7}{'transforms s':>15}{'numba s':>9}"
          f"{'wall s':>8}{'cpu s':>7}{'MB':>10}")
    print("-" * len(header))
    for label, which in (("cold: fresh kernel + Numba cache dirs", 0),
                         ("warm: same dirs, next process", 1)):
        results = [pair[which] for pair in compiles]
        wall = statistics.median(r.wall_s for r in results)
        cpu = statistics.median(r.cpu_s for r in results)
        peak = max(r.peak_mb for r in results)
        print(f"{label:40}{_median(results, 'compile'):8.3f}"
              f"{_median(results, 'compile', 'cpu'):7.3f}"
              f"{_median(results, 'transforms_import'):15.3f}"
              f"{_median(results, 'numba_import'):9.3f}{wall:8.3f}{cpu:7.3f}{peak:10.0f}")
    cold, warm = [p[0] for p in compiles], [p[1] for p in compiles]
    print(f"  compile_graph + every kernel, wall runs s: "
          f"cold {_runs([r.report['compile']['wall'] for r in cold])}"
          f"; warm {_runs([r.report['compile']['wall'] for r in warm])}")
    print(f"  compile_graph + training kernels only (a first training set), median wall s: "
          f"cold {_median(cold, 'training'):.2f}; warm {_median(warm, 'training'):.2f}")
    if not all(r.report["module_cached"] for r in warm) or any(
            r.report["module_cached"] for r in cold):
        print("  WARNING: a warm run missed the cached module, or a cold run found one")
    cold_verdict = _verdict(_median(cold, "compile"), COLD_TARGET_S)
    print(f"targets: cold compile (all kernels) {cold_verdict}; "
          f"warm load {_verdict(_median(warm, 'compile'), WARM_TARGET_S)}; "
          f"warm process wall {_verdict(statistics.median(r.wall_s for r in warm), WARM_TARGET_S)}")


def print_report(args: argparse.Namespace, prep: ChildResult, load: tuple[float, float],
                 compiles: list[tuple[ChildResult, ChildResult]],
                 kernels: list[ChildResult], baseline: list[ChildResult],
                 check: list[tuple[str, int, float, int]] | None) -> None:
    """Print the run's table."""
    digests = sorted({r.report["hash"] for r in [*kernels, *(c for p in compiles for c in p)]})
    print(f"\nKernel benchmark: view {VIEW_NAME!r} of DEMO_SPEC (8 window features), "
          f"kernel module {', '.join(digests)}")
    if len(digests) > 1:
        print("WARNING: the generated kernels changed during the run (transforms/ edited)")
    print(f"events {args.events:,}  entities {args.entities:,}  queries {args.queries:,}  "
          f"days {args.days}  seed {args.seed}")
    print(f"{args.repeat} runs per contender and {len(compiles)} cold/warm compile pairs, "
          f"one process each; medians")
    print(f"{os.cpu_count()} cores, load average {load[0]:.1f} at start, {load[1]:.1f} at "
          f"end; python {sys.version.split()[0]}, numpy {np.__version__}")
    p = prep.report
    print(f"inputs (own process, outside all timings): sample generator {p['generate_s']:.1f} "
          f"s; sorting events by (entity, ts) {p['sort_events_s']:.2f} s, queries "
          f"{p['sort_queries_s']:.2f} s")
    _print_kernel_table(args, kernels, baseline)
    if check is not None:
        _print_check(args, check, baseline)
    if compiles:
        _print_compile_table(compiles)


# ---------------------------------------------------------------------------------------
# Entry point


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line flags; `--small` and the size flags set the sizes."""
    parser = argparse.ArgumentParser(
        description="Benchmark the compiled kernels of the demo view and compile times.")
    parser.add_argument("--small", action="store_true",
                        help="1M events, 1k entities, 100k queries (default: 10M, 10k, 1M)")
    parser.add_argument("--events", type=int, help="number of sample events")
    parser.add_argument("--entities", type=int, help="number of entities (users)")
    parser.add_argument("--queries", type=int, help="number of query times")
    parser.add_argument("--days", type=int, default=90, help="length of the event timeline")
    parser.add_argument("--seed", type=int, default=0, help="seed of events and queries")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per contender, each in a new process (default 3; medians)")
    parser.add_argument("--compile-repeat", type=int,
                        help="cold + warm compile pairs (default: --repeat)")
    parser.add_argument("--skip-compile", action="store_true",
                        help="skip the compile timing (the kernels are still compiled once)")
    parser.add_argument("--skip-baseline", action="store_true",
                        help="skip the numpy/pandas baseline and the check")
    parser.add_argument("--work-dir", type=Path,
                        help="keep inputs, outputs and caches here (default: a temporary "
                             "directory, removed at the end)")
    parser.add_argument("--child", choices=("prepare", "compile", "kernels", "baseline"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, value in PRESETS["small" if args.small else "full"].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.compile_repeat is None:
        args.compile_repeat = args.repeat
    if min(args.events, args.entities, args.queries, args.days, args.repeat,
           args.compile_repeat) < 1:
        parser.error("sizes and repeat counts must be positive")
    return args


def run_child_mode(args: argparse.Namespace) -> None:
    """Run one contender and print its JSON report as the last stdout line."""
    if args.child == "prepare":
        report = child_prepare(args.data_dir, args.events, args.entities, args.queries,
                               args.days, args.seed)
    elif args.child == "compile":
        report = child_compile(args.cache_dir)
    elif args.child == "kernels":
        report = child_kernels(args.data_dir, args.cache_dir, args.out)
    else:
        report = child_baseline(args.data_dir, args.out)
    print(json.dumps({**report, **_memory_mb()}), flush=True)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_benchmark(args: argparse.Namespace, work: Path) -> None:
    """Prepare inputs, run every contender `--repeat` times, check, and print the table."""
    _ensure_importable()
    from benchmarks.pandas_baseline import (
        BASELINE_FEATURES,
        check_baseline_matches_spec,
        compare,
    )
    from tests.transforms.demo_spec import DEMO_VIEW

    check_baseline_matches_spec(DEMO_VIEW.features)
    load_start = os.getloadavg()[0]
    data = work / "data"
    sizes = ["--events", str(args.events), "--entities", str(args.entities), "--queries",
             str(args.queries), "--days", str(args.days), "--seed", str(args.seed)]
    progress(f"generating {args.events:,} sample events ...")
    prep = run_child(["--child", "prepare", "--data-dir", str(data), *sizes],
                     _child_env())

    compiles: list[tuple[ChildResult, ChildResult]] = []
    cache, numba_cache = work / "kernels-0", work / "numba-0"
    for run in range(0 if args.skip_compile else args.compile_repeat):
        progress(f"compile run {run + 1}/{args.compile_repeat} (cold, then warm) ...")
        cache, numba_cache = work / f"kernels-{run}", work / f"numba-{run}"
        child = ["--child", "compile", "--cache-dir", str(cache)]
        env = _child_env(numba_cache)
        compiles.append((run_child(child, env), run_child(child, env)))
    env = _child_env(numba_cache)
    if args.skip_compile:  # compile once, so that the kernel runs start warm
        run_child(["--child", "compile", "--cache-dir", str(cache)], env)

    kernels: list[ChildResult] = []
    baseline: list[ChildResult] = []
    kernel_out, baseline_out = work / "kernels-out.npy", work / "baseline-out.npy"
    for run in range(args.repeat):  # alternate the contenders: load drift hits both alike
        progress(f"kernel and baseline run {run + 1}/{args.repeat} ...")
        data_args = ["--data-dir", str(data)]
        save = ["--out", str(kernel_out)] if run == 0 else []
        kernels.append(run_child(["--child", "kernels", "--cache-dir", str(cache),
                                  *data_args, *save], env))
        if not args.skip_baseline:
            save = ["--out", str(baseline_out)] if run == 0 else []
            baseline.append(run_child(["--child", "baseline", *data_args, *save], env))

    check = None
    if baseline:
        # The baseline implements the first eight features; the kernels' other rows
        # (lists and sketches) have no counterpart there.
        names = kernels[0].report["feature_names"][:len(BASELINE_FEATURES)]
        check = compare(np.load(kernel_out)[:len(names)], np.load(baseline_out), names)
    print_report(args, prep, (load_start, os.getloadavg()[0]), compiles, kernels, baseline,
                 check)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and run the benchmark (or, with --child, one contender)."""
    args = parse_args(argv)
    if args.child is not None:
        _ensure_importable()
        run_child_mode(args)
    else:
        in_work_folder(args.work_dir, "kernel-bench-", lambda work: run_benchmark(args, work))


if __name__ == "__main__":
    main()
