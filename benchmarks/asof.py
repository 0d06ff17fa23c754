"""Benchmark the as-of workload: the latest daily value within 7 days, against pandas.

The workload: one row per user per day (`user_id`, `event_ts` at a random second of the
day, a float64 `value`), and a spine of users at random times. One feature, the `last`
`value` within a 7-day window, per spine row. Two sizes:

- 100k spine rows x 431,065 daily rows (1,181 users x 365 days);
- 1M spine rows x 4,000,035 daily rows (10,959 users x 365 days).

Spine times are whole seconds drawn uniformly from the first day to 8 days past the
last, so some rows fall before a user's first row or past the window after the last one.
A small share is placed on purpose at the edges of the window rule: 1% exactly at an
event time of the same user (that event is excluded) and 1% between 7 days and 7 days +
1 hour after the user's last event (the hop-aligned start decides).

Contenders, each in its own child process, reading the same Parquet files, returning the
spine with the feature appended, in spine order:

- **project**: `FeatureStore.get_training_set(spine_path, features=[...],
  output="arrow")` on a generated registry holding that one view (kernels compiled by a
  `featurestore apply` during setup and loaded before the clock starts);
- **pandas**: `pd.merge_asof` by user, `direction="backward"`,
  `allow_exact_matches=False` (windows hold events strictly before the row's time), with
  the project's exact window rule: a feature with window `w` and hop `h` (the registry's
  effective hop, 1h by default for 7d) covers `[floor(t, h) - w, t)`, so the tolerance is
  `w + h` (the widest such window) and matches before `floor(t, h) - w` are then set to
  null. `last` skips null values, so null values are dropped first. Timed: reading both
  files, sorting by time, the merge, the window rule, spine order; the `merge_asof` call
  alone is printed too.

Every row of the two results is compared: nulls identical and values equal (exactly: a
`last` is one of the inputs). Also printed: the ratio to Feast's figures for the same
workload (0.277 s and 2.90 s), measured earlier on this machine class with Feast 0.67 and
its DuckDB offline store, not re-run here. Targets: the project at least as fast as the
pandas contender, and at least 10x faster than the Feast figures.

Printed per contender: wall and CPU time (all threads; on a shared machine wall far
above CPU means waiting for a core), peak RSS (the child's own VmHWM), medians of
`--repeat` runs (contenders alternate), the load average at start and end.

Usage (from the repository root):

    .venv/bin/python benchmarks/asof.py                      # both sizes, 3 runs each
    .venv/bin/python benchmarks/asof.py --small --repeat 1   # 100k x 431k, one run
    .venv/bin/python benchmarks/asof.py --work-dir .cache/asof-bench  # keep the inputs
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

from harness import in_work_folder, peak_mb, progress, source_fingerprint

ROOT = Path(__file__).resolve().parents[1]
KEY, TS, VALUE = "user_id", "event_ts", "value"
VIEW, FEATURE, WINDOW = "daily", "value_last_7d", "7d"
REFERENCE = f"{VIEW}:{FEATURE}"
SECOND_US, HOUR_US, DAY_US = 1_000_000, 3_600_000_000, 86_400_000_000
START_US = 1_672_531_200 * SECOND_US  # 2023-01-01T00:00:00Z
SPINE_TAIL_DAYS = 8  # spine times run this many days past the last day
EDGE_SHARE = 0.01  # of the spine, at an exact event time; as much near the window's start
CONTENDERS = ("project", "pandas")
TARGET_FEAST_SPEEDUP = 10.0
CLEARED_ENV = ("FEATURESTORE_CACHE_DIR", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE",
               "FEATURESTORE_REGISTRY", "NUMBA_CACHE_DIR")


@dataclass(frozen=True)
class Size:
    """One workload size, and Feast's figure for it."""

    label: str
    spine: int
    users: int
    days: int
    feast_s: float  # measured earlier on this machine class; not re-run

    @property
    def rows(self) -> int:
        """Daily rows: one per user per day."""
        return self.users * self.days


SIZES = (
    Size("100k x 431k", 100_000, 1_181, 365, 0.277),
    Size("1M x 4M", 1_000_000, 10_959, 365, 2.90),
)
FEAST = "Feast 0.67, DuckDB offline store"

REGISTRY = f"""\
project: asof_bench
store:
  offline: offline.duckdb
entities:
  user:
    keys: [{KEY}]
sources:
  daily_values:
    path: daily.parquet
    timestamp: {TS}
feature_views:
  {VIEW}:
    source: daily_values
    entity: user
    features:
      {FEATURE}: {{agg: last, expr: {VALUE}, window: {WINDOW}}}
"""


# ---------------------------------------------------------------------------------------
# Children


def _timed(work: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}, result


def child_prepare(folder: Path, size: Size, seed: int) -> dict[str, Any]:
    """Write `daily.parquet` (one row per user per day) and `spine.parquet`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([seed, size.users, size.spine])
    day = np.repeat(np.arange(size.days, dtype=np.int64), size.users)
    user = np.tile(np.arange(1, size.users + 1, dtype=np.int64), size.days)
    second = rng.integers(0, DAY_US // SECOND_US, size.rows)
    ts = START_US + day * DAY_US + second * SECOND_US
    value = np.round(rng.lognormal(np.log(100.0), 0.5, size.rows), 2)
    timestamp = pa.timestamp("us", tz="UTC")
    pq.write_table(pa.table({KEY: user, TS: pa.array(ts, timestamp), VALUE: value}),
                   folder / "daily.parquet")

    # Spine: uniform users and whole-second times, then the edge rows.
    spine_user = rng.integers(1, size.users + 1, size.spine)
    last_second = (size.days + SPINE_TAIL_DAYS) * DAY_US // SECOND_US
    spine_ts = START_US + rng.integers(0, last_second, size.spine) * SECOND_US
    edges = rng.permutation(size.spine)[: 2 * int(size.spine * EDGE_SHARE)]
    exact, after_last = np.array_split(edges, 2)
    picked = rng.integers(0, size.rows, len(exact))  # a row's own time: excluded
    spine_user[exact], spine_ts[exact] = user[picked], ts[picked]
    last_row = (size.days - 1) * size.users + spine_user[after_last] - 1  # user's last day
    offset = rng.integers(0, HOUR_US // SECOND_US, len(after_last)) * SECOND_US
    spine_ts[after_last] = ts[last_row] + 7 * DAY_US + offset
    pq.write_table(pa.table({KEY: spine_user, TS: pa.array(spine_ts, timestamp)}),
                   folder / "spine.parquet")
    (folder / "registry.yaml").write_text(REGISTRY)
    return {"rows": size.rows, "spine": size.spine}


def child_project(folder: Path) -> tuple[dict[str, Any], Any]:
    """The project's training set (kernels loaded first, outside the clock)."""
    from featurestore import FeatureStore

    store = FeatureStore(folder)
    store.kernels().warm()
    # pyarrow imports pandas on its first conversion to numpy; as for the pandas
    # contender, that one-time import is not part of the measured call.
    import pandas  # noqa: F401
    timing, table = _timed(lambda: store.get_training_set(
        folder / "spine.parquet", features=[REFERENCE], output="arrow"))
    return timing, table.column(FEATURE)


def pandas_asof(folder: Path, window_us: int, hop_us: int,
                clock: dict[str, float] | None = None) -> Any:
    """The spine with the feature appended, by `pd.merge_asof` and the window rule.

    Args:
        folder: holds `spine.parquet` and `daily.parquet`.
        window_us: the window `w` in microseconds.
        hop_us: the hop `h`: the window of a row at `t` is `[floor(t, h) - w, t)`.
        clock: when given, receives the wall and CPU time of the `merge_asof` call.
    """
    import numpy as np
    import pandas as pd

    spine = pd.read_parquet(folder / "spine.parquet")
    events = pd.read_parquet(folder / "daily.parquet", columns=[KEY, TS, VALUE])
    events = events[events[VALUE].notna()]  # `last` skips nulls
    events = events.assign(matched_ts=events[TS]).sort_values(TS, kind="stable")
    left = spine[[KEY, TS]].assign(row=np.arange(len(spine))).sort_values(TS, kind="stable")
    timing, merged = _timed(lambda: pd.merge_asof(
        left, events, on=TS, by=KEY, direction="backward", allow_exact_matches=False,
        tolerance=pd.Timedelta(microseconds=window_us + hop_us)))
    if clock is not None:
        clock.update(timing)
    t = _micros(merged[TS])
    matched = _micros(merged["matched_ts"])  # NaT (no match) is the smallest int64
    start = t // hop_us * hop_us - window_us
    values = np.where(matched >= start, merged[VALUE].to_numpy(), np.nan)
    result = np.empty(len(spine))
    result[merged["row"].to_numpy()] = values
    return spine.assign(**{FEATURE: result})


def _micros(times: Any) -> Any:
    """Microseconds since the epoch of a tz-aware UTC series; NaT is the smallest int64."""
    import numpy as np

    return np.asarray(times.dt.tz_convert(None).dt.as_unit("us").to_numpy()).view(np.int64)


def edge_counts(folder: Path, window_us: int, hop_us: int, result: Any) -> dict[str, int]:
    """How many rows exercise each part of the window rule (outside every clock)."""
    import numpy as np
    import pandas as pd

    spine = pd.read_parquet(folder / "spine.parquet")
    events = pd.read_parquet(folder / "daily.parquet", columns=[KEY, TS])
    exact = len(spine.merge(events, on=[KEY, TS]))
    # The last event before t, and whether [t - w, t) would have found it (plain tolerance).
    left = spine.assign(row=np.arange(len(spine))).sort_values(TS, kind="stable")
    right = events.assign(matched_ts=events[TS]).sort_values(TS, kind="stable")
    merged = pd.merge_asof(left, right, on=TS, by=KEY, allow_exact_matches=False)
    t, matched = _micros(merged[TS]), _micros(merged["matched_ts"])
    aligned = matched >= t // hop_us * hop_us - window_us
    plain = matched >= t - window_us
    return {"null": int(result[FEATURE].isna().sum()), "exact": exact,
            "hop_aligned_only": int((aligned & ~plain).sum())}


def child_pandas(folder: Path, window_us: int, hop_us: int) -> tuple[dict[str, Any], Any]:
    """The pandas contender, timed as a whole and at its merge_asof call (pandas and
    numpy imported before the clock starts, as the project's store is opened first)."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow as pa

    merge: dict[str, float] = {}
    timing, frame = _timed(lambda: pandas_asof(folder, window_us, hop_us, merge))
    report = {**timing, "merge_wall_s": merge["wall_s"], "merge_cpu_s": merge["cpu_s"],
              **edge_counts(folder, window_us, hop_us, frame)}
    return report, pa.array(frame[FEATURE].to_numpy(), from_pandas=True)


def run_child_mode(args: argparse.Namespace) -> None:
    """Run one child and print its JSON report as the last stdout line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = args.work_dir
    if args.child == "prepare":
        size = next(size for size in SIZES if size.label == args.size)
        report = child_prepare(folder, size, args.seed)
    else:
        if args.child == "project":
            report, column = child_project(folder)
        else:
            report, column = child_pandas(folder, args.window_us, args.hop_us)
        pq.write_table(pa.table({FEATURE: column}), folder / f"result-{args.child}.parquet")
    print(json.dumps({**report, "peak_mb": peak_mb()}), flush=True)


# ---------------------------------------------------------------------------------------
# The parent


def child_env(work: Path) -> dict[str, str]:
    """This environment with the benchmark's own caches and no store overrides."""
    env = {key: value for key, value in os.environ.items() if key not in CLEARED_ENV}
    env["FEATURESTORE_CACHE_DIR"] = str(work / "cache")
    env["NUMBA_CACHE_DIR"] = str(work / "numba")
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env



def run_child(arguments: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """Run this script with `arguments`; return the JSON report of its last stdout line,
    with the source digests at spawn and at exit."""
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    before = source_fingerprint()
    process = subprocess.run(command, stdout=subprocess.PIPE, env=env, text=True, check=False)
    if process.returncode != 0:
        raise SystemExit(f"child {' '.join(arguments)} failed (exit code {process.returncode})")
    report = json.loads(process.stdout.strip().splitlines()[-1])
    return {**report, "sources": [before, source_fingerprint()]}


def featurestore_command() -> Path:
    """The venv's `featurestore` command (next to this interpreter, else in .venv)."""
    for candidate in (Path(sys.executable).with_name("featurestore"),
                      ROOT / ".venv" / "bin" / "featurestore"):
        if candidate.exists():
            return candidate
    raise SystemExit("no featurestore command: run `make` to create .venv first")


def prepare(work: Path, size: Size, seed: int, env: dict[str, str]) -> Path:
    """The inputs of one size (kept when already there) and an applied registry."""
    folder = work / f"asof-{size.spine}-{size.users}-{size.days}-{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "spine.parquet").exists():
        progress(f"{size.label}: writing {size.rows:,} daily rows and {size.spine:,} spine "
                  "rows")
        run_child(["--child", "prepare", "--work-dir", str(folder), "--size", size.label,
                   "--seed", str(seed)], env)
    progress(f"{size.label}: featurestore apply (compiles the kernels; not timed)")
    subprocess.run([str(featurestore_command()), "apply", "--registry",
                    str(folder / "registry.yaml")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    return folder


def window_rule(folder: Path) -> tuple[int, int]:
    """(window, hop) in microseconds of the feature, as the registry defines it; stops if
    the registry no longer defines what the pandas contender computes."""
    from featurestore import FeatureStore

    registry = FeatureStore(folder).registry
    feature = registry.feature_views[VIEW].features[FEATURE]
    hop = registry.effective_hop(VIEW, FEATURE)
    if feature.agg != "last" or feature.expr != VALUE or feature.window is None or not hop:
        raise SystemExit("the generated registry no longer defines a windowed `last`")
    return feature.window, hop


def compare(folder: Path) -> tuple[int, int, int]:
    """(rows, rows whose nullness differs, non-null rows whose values differ)."""
    import numpy as np
    import pyarrow.parquet as pq

    def column(name: str) -> Any:
        return pq.read_table(folder / f"result-{name}.parquet").column(FEATURE)

    project, pandas = column("project"), column("pandas")
    if len(project) != len(pandas):
        return len(pandas), len(pandas), 0
    null_a = project.is_null().to_numpy(zero_copy_only=False)
    null_b = pandas.is_null().to_numpy(zero_copy_only=False)
    a = project.to_numpy(zero_copy_only=False).astype(np.float64)
    b = pandas.to_numpy(zero_copy_only=False).astype(np.float64)
    both = ~null_a & ~null_b
    return len(pandas), int((null_a != null_b).sum()), int((both & (a != b)).sum())


def run_size(work: Path, size: Size, args: argparse.Namespace,
             env: dict[str, str]) -> dict[str, Any]:
    """Prepare one size, run the contenders `--repeat` times alternating, compare."""
    folder = prepare(work, size, args.seed, env)
    window_us, hop_us = window_rule(folder)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    for repeat in range(args.repeat):
        for name in CONTENDERS:
            progress(f"{size.label}: {name}, run {repeat + 1}/{args.repeat}")
            runs[name].append(run_child(
                ["--child", name, "--work-dir", str(folder), "--window-us", str(window_us),
                 "--hop-us", str(hop_us)], env))
    return {"size": size, "runs": runs, "check": compare(folder), "window_us": window_us,
            "hop_us": hop_us}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def print_size(result: dict[str, Any]) -> None:
    """The table of one size, its check and its targets."""
    size: Size = result["size"]
    runs = result["runs"]
    project, pandas = runs["project"], runs["pandas"]
    hop_h = result["hop_us"] / HOUR_US
    print(f"\n{size.label}: {size.spine:,} spine rows x {size.rows:,} daily rows "
          f"({size.users:,} users x {size.days} days); `last` of {VALUE} in "
          f"[floor(t, {hop_h:g}h) - {result['window_us'] // DAY_US}d, t)")
    header = (f"{'contender':44}{'wall s':>8}{'cpu s':>8}{'peak MB':>9}{'/ project':>11}"
              f"   wall runs s")
    print(header)
    print("-" * len(header))
    base = _median(project, "wall_s")

    def row(label: str, wall: float, cpu: float | None, peak: float | None,
            walls: Sequence[float]) -> None:
        cpu_text = "-" if cpu is None else f"{cpu:.3f}"
        peak_text = "-" if peak is None else f"{peak:.0f}"
        print(f"{label:44}{wall:8.3f}{cpu_text:>8}{peak_text:>9}{wall / base:10.1f}x   "
              + " ".join(f"{value:.3f}" for value in walls))

    for label, name, wall, cpu in (
            ("project: get_training_set", project, "wall_s", "cpu_s"),
            ("pandas: read, sort, merge_asof, window rule", pandas, "wall_s", "cpu_s"),
            ("  pandas: the merge_asof call alone", pandas, "merge_wall_s", "merge_cpu_s")):
        peak = max(run["peak_mb"] for run in name) if cpu == "cpu_s" else None
        row(label, _median(name, wall), _median(name, cpu), peak, [run[wall] for run in name])
    row(f"{FEAST} *", size.feast_s, None, None, [])
    print(f"* {FEAST}: figure measured earlier on this machine class, not re-run")

    rows, nulls, values = result["check"]
    edges = pandas[0]
    verdict = ("nulls identical, values equal" if nulls == 0 and values == 0 else
               f"DIFFERENT: {nulls} rows differ in nullness, {values} in value")
    print(f"check, project vs pandas on all {rows:,} rows: {verdict}")
    print(f"  rows exercising the rule: {edges['null']:,} null; {edges['exact']:,} at an "
          f"event's exact time (excluded); {edges['hop_aligned_only']:,} found only thanks "
          f"to the hop-aligned start (a plain [t - 7d, t) would give null)")
    pandas_ratio = _median(pandas, "wall_s") / base
    merge_ratio = _median(pandas, "merge_wall_s") / base
    feast_ratio = size.feast_s / base
    print(f"targets: project at least as fast as pandas (same Parquet files, same output): "
          f"pandas / project {pandas_ratio:.2f}x, {_verdict(pandas_ratio >= 1.0)}; Feast "
          f"figure / project >= {TARGET_FEAST_SPEEDUP:g}x: {feast_ratio:.1f}x, "
          f"{_verdict(feast_ratio >= TARGET_FEAST_SPEEDUP)}")
    print(f"  (not a target: the merge_asof call alone, on frames already read and sorted, "
          f"/ project {merge_ratio:.2f}x)")


def run_benchmark(args: argparse.Namespace, work: Path) -> None:
    """Every size: prepare, run, compare, print."""
    load_start = os.getloadavg()[0]
    env = child_env(work)
    sizes = SIZES[:1] if args.small else SIZES
    results = [run_size(work, size, args, env) for size in sizes]
    print(f"\nAs-of benchmark: {args.repeat} run(s) per contender, each a new process, "
          "alternating; medians")
    print(f"{os.cpu_count()} cores, load average {load_start:.1f} at start, "
          f"{os.getloadavg()[0]:.1f} at end; python {sys.version.split()[0]}")
    print("(on a shared machine wall far above CPU means waiting for a core)")
    versions = {version for result in results for run in result["runs"]["project"]
                for version in run["sources"]}
    if len(versions) > 1:
        print(f"WARNING: the sources under featurestore/ and transforms/ changed during the "
              f"project's runs ({len(versions)} versions): its runs are not comparable; run "
              "again on a quiet tree")
    for result in results:
        print_size(result)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help=f"only the first size ({SIZES[0].label})")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per contender, each in a new process (default 3; medians)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs")
    parser.add_argument("--work-dir", type=Path,
                        help="keep inputs, caches and results here, and reuse the inputs "
                             "(default: a temporary directory, removed at the end)")
    parser.add_argument("--child", choices=("prepare", *CONTENDERS), help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--window-us", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hop-us", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and run the benchmark (or, with --child, one child)."""
    args = parse_args(argv)
    if args.child is not None:
        run_child_mode(args)
    else:
        in_work_folder(args.work_dir, "asof-bench-", lambda work: run_benchmark(args, work))


if __name__ == "__main__":
    main()
