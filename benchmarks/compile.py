"""Benchmark compile cost through the command line and the SDK, each case in a new process.

Everything goes through the public surface only: the `featurestore` command of the
project's venv (`generate`, `apply`) and `featurestore.FeatureStore` (a training set), so
the script keeps measuring the same thing while the engine behind them changes.

Setup (not timed as a case): sample events from the project's generator (`featurestore
generate`, the demo's 200k events for 2k users over 90 days by default), a 1,000-row
spine drawn from them (`featurestore.sample_spine`), and one project folder per run, each
holding a registry and a link to the shared events at `data/transactions.parquet`.

Cases, each a new process:

- **demo cold**: `featurestore apply` of the demo registry (`registry.yaml`: one feature
  view of 8 window features, one request view, one service) with fresh caches: a new
  empty `FEATURESTORE_CACHE_DIR` (generated kernel modules) and a new empty
  `NUMBA_CACHE_DIR` (machine code). Target: <= 3 s CPU.
- **1 view cold** and **N views cold** (`--views`, default 20): `featurestore apply` of
  a generated registry of N feature views x 8 features over the same source, views made
  to differ (windows 1h/1d/7d/30d, aggregations count/sum/mean/std/max/min/last,
  expressions over `amount` and `merchant_category` with per-view constants), fresh
  caches. Targets: 20 views <= 15 s CPU and <= 4x the 1-view time.
- **edit one feature**: after the N-view cold apply, caches and offline file kept, one
  feature's window in one view changes and `featurestore apply` runs again.
  Target: <= 2 s CPU.
- **warm process -> first training set**: after the demo cold apply (its caches kept), a
  new Python process imports `featurestore`, opens the store and builds a 1,000-row
  training set for the service `fraud_v1`; wall time from spawn to the result (the
  child stamps CLOCK_MONOTONIC, which all processes share). Target: <= 1 s wall.

Each cold case also runs as **engine cache warm**: `NUMBA_CACHE_DIR` is a copy of a
directory warmed by one earlier apply of a different registry (a generated view with
other windows and constants, using every aggregation), with a fresh
`FEATURESTORE_CACHE_DIR`. This separates the one-time per-machine compile of the shared
engine from the per-registry compile. Both variants are printed.

CPU is user + system time of the child (`os.wait4`), all its threads; wall is spawn to
exit. On a shared machine wall far above CPU means waiting for a core. Peak RSS is the
child's `ru_maxrss` from `os.wait4`: a child inherits its parent's high-water mark at
spawn, so this script's parent stays small (no numpy, pandas or featurestore imported)
and its own peak is printed as the floor below which the figure means nothing. Every
case runs `--repeat` times (default 3) with new folders; medians and each run are
printed, with the load average at start and end. Nothing is asserted: targets are
printed as met or not met.

Usage (from the repository root):

    .venv/bin/python benchmarks/compile.py                         # 3 repeats, 20 views
    .venv/bin/python benchmarks/compile.py --repeat 1 --views 2    # a quick check
    .venv/bin/python benchmarks/compile.py --work-dir .cache/compile-bench  # keep folders
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generated_registries import EVENTS_FILE, FEATURES_PER_VIEW, generated_registry
from harness import in_work_folder, peak_mb, progress, source_fingerprint

ROOT = Path(__file__).resolve().parents[1]
DEMO_REGISTRY = ROOT / "registry.yaml"
DEMO_SERVICE = "fraud_v1"
SPINE_ROWS = 1_000

TARGET_DEMO_CPU_S = 3.0
TARGET_VIEWS_CPU_S = 15.0
TARGET_VIEWS = 20
TARGET_VIEWS_RATIO = 4.0
TARGET_EDIT_CPU_S = 2.0
TARGET_FIRST_TRAINING_WALL_S = 1.0

VARIANTS = ("cold", "engine cache warm")
# Environment variables that would point a child at other stores or caches.
CLEARED_ENV = ("FEATURESTORE_CACHE_DIR", "FEATURESTORE_OFFLINE", "FEATURESTORE_ONLINE",
               "FEATURESTORE_REGISTRY", "NUMBA_CACHE_DIR")

# The first-training-set child: a new process that imports featurestore, opens the store
# and builds a training set; it prints CLOCK_MONOTONIC stamps (shared by all processes).
FIRST_TRAINING_SET = """\
import json, sys, time
stamp = lambda: time.clock_gettime(time.CLOCK_MONOTONIC)
started = stamp()
from featurestore import FeatureStore
imported = stamp()
store = FeatureStore(sys.argv[1])
opened = stamp()
frame = store.get_training_set(sys.argv[2], service=sys.argv[3])
done = stamp()
cpu = time.process_time()
with open("/proc/self/status") as status:
    peak = next(int(l.split()[1]) / 1024 for l in status if l.startswith("VmHWM:"))
print(json.dumps({"started": started, "imported": imported, "opened": opened,
                  "done": done, "cpu_s": cpu, "rows": len(frame), "peak_mb": peak}))
"""

# Writes the spine of the first-training-set case (setup, a child of its own).
WRITE_SPINE = """\
import sys
import pyarrow.parquet as pq
from featurestore.sample_spine import sample_spine
pq.write_table(sample_spine(sys.argv[1], int(sys.argv[2]), seed=0), sys.argv[3])
"""


# ---------------------------------------------------------------------------------------
# Child processes


@dataclass
class Run:
    """One child process: what the parent measured, and the child's report if any."""

    wall_s: float  # spawn to exit
    cpu_s: float  # user + system of the child (os.wait4)
    maxrss_mb: float  # ru_maxrss of the child (os.wait4)
    report: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, str] = ("", "")  # source fingerprints at spawn and at exit



def featurestore_command() -> Path:
    """The venv's `featurestore` command (next to this interpreter, else in .venv)."""
    for candidate in (Path(sys.executable).with_name("featurestore"),
                      ROOT / ".venv" / "bin" / "featurestore"):
        if candidate.exists():
            return candidate
    raise SystemExit("no featurestore command: run `make` to create .venv first")


def child_env(cache_dir: Path, numba_dir: Path) -> dict[str, str]:
    """This environment with the child's own caches and no store overrides."""
    env = {key: value for key, value in os.environ.items() if key not in CLEARED_ENV}
    env["FEATURESTORE_CACHE_DIR"] = str(cache_dir)
    env["NUMBA_CACHE_DIR"] = str(numba_dir)
    return env


def run_process(command: Sequence[str], env: dict[str, str], cwd: Path) -> Run:
    """Run `command` in a new process; stop the benchmark with its output if it fails.

    The child's last output line that is a JSON object is its report, if any.
    """
    before = source_fingerprint()
    start = time.clock_gettime(time.CLOCK_MONOTONIC)
    process = subprocess.Popen(list(command), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=env, cwd=cwd, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    process.stdout.close()
    _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
    wall = time.clock_gettime(time.CLOCK_MONOTONIC) - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        print(output, file=sys.stderr)
        raise SystemExit(f"failed (exit code {process.returncode}): {' '.join(command)}")
    report: dict[str, Any] = {}
    # stderr (progress lines) is merged into stdout: the report is the last JSON line.
    found = [line for line in output.splitlines() if line.startswith('{"')]
    if found:
        report = json.loads(found[-1])
        report["spawned"] = start
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, report,
               (before, source_fingerprint()))


def apply(project: Path, cache_dir: Path, numba_dir: Path) -> Run:
    """`featurestore apply` of the project's registry in a new process."""
    command = [str(featurestore_command()), "apply", "--registry",
               str(project / "registry.yaml")]
    return run_process(command, child_env(cache_dir, numba_dir), project)


def first_training_set(project: Path, spine: Path, cache_dir: Path, numba_dir: Path) -> Run:
    """A new process: import featurestore, open the store, build a training set."""
    command = [sys.executable, "-c", FIRST_TRAINING_SET, str(project / "registry.yaml"),
               str(spine), DEMO_SERVICE]
    return run_process(command, child_env(cache_dir, numba_dir), project)


# ---------------------------------------------------------------------------------------
# Setup


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copyfile(source, target)


def new_project(folder: Path, registry_text: str, events: Path) -> Path:
    """A project folder: the registry and `data/transactions.parquet` (the shared events)."""
    (folder / "data").mkdir(parents=True)
    (folder / "registry.yaml").write_text(registry_text)
    _link_or_copy(events, folder / "data" / EVENTS_FILE)
    return folder


def prepare_inputs(data: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """Sample events (the project's generator, via the CLI) and the 1,000-row spine; kept
    when already there."""
    data.mkdir(parents=True, exist_ok=True)
    label = f"{args.events}-{args.users}-{args.days}-{args.seed}"
    events, spine = data / f"events-{label}.parquet", data / f"spine-{label}.parquet"
    env = child_env(data / "unused-cache", data / "unused-numba")
    if not events.exists():
        progress(f"generating {args.events:,} sample events for {args.users:,} users")
        run_process([str(featurestore_command()), "generate", "--events", str(args.events),
                     "--users", str(args.users), "--days", str(args.days), "--seed",
                     str(args.seed), "--out", str(events)], env, data)
    if not spine.exists():
        run_process([sys.executable, "-c", WRITE_SPINE, str(events), str(SPINE_ROWS),
                     str(spine)], env, data)
    return events, spine


# ---------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Results:
    """Runs per (case, variant), in repeat order."""

    runs: dict[tuple[str, str], list[Run]] = field(default_factory=dict)

    def add(self, case: str, variant: str, run: Run) -> None:
        """Record one run."""
        self.runs.setdefault((case, variant), []).append(run)

    def median(self, case: str, variant: str, what: str = "cpu_s") -> float:
        """The median of one measurement over the runs of a case."""
        return statistics.median(getattr(run, what) for run in self.runs[(case, variant)])


def run_benchmark(args: argparse.Namespace, work: Path) -> None:
    """Set up, run every case `--repeat` times, print the report."""
    load_start = os.getloadavg()[0]
    events, spine = prepare_inputs(work / "inputs", args)
    runs_dir = work / time.strftime("run-%Y%m%d-%H%M%S")
    texts = {"demo": DEMO_REGISTRY.read_text(), "1 view": generated_registry(1),
             "views": generated_registry(args.views)}
    edited = generated_registry(args.views, edited=True)

    progress("engine warm-up: apply of a different registry, fresh caches")
    seed = runs_dir / "engine-seed"
    seed_numba = seed / "numba"
    warmup = apply(new_project(seed / "project", generated_registry(1, warmup=True), events),
                   seed / "cache", seed_numba)

    results = Results()
    for repeat in range(args.repeat):
        for case, text in texts.items():
            for variant in VARIANTS:
                progress(f"run {repeat + 1}/{args.repeat}: {case} ({variant})")
                folder = runs_dir / f"{repeat}-{case.replace(' ', '-')}-{variant.split()[0]}"
                project = new_project(folder / "project", text, events)
                cache, numba = folder / "cache", folder / "numba"
                if variant == "engine cache warm":
                    shutil.copytree(seed_numba, numba)
                results.add(case, variant, apply(project, cache, numba))
                if variant != "cold":
                    continue
                if case == "demo":
                    progress(f"run {repeat + 1}/{args.repeat}: first training set")
                    results.add("training", "", first_training_set(project, spine, cache,
                                                                   numba))
                if case == "views":
                    progress(f"run {repeat + 1}/{args.repeat}: edit one feature")
                    (project / "registry.yaml").write_text(edited)
                    results.add("edit", "", apply(project, cache, numba))
        if not args.work_dir:  # only the folders of this repeat's cases are still needed
            for folder in runs_dir.glob(f"{repeat}-*"):
                shutil.rmtree(folder)
    print_report(args, results, warmup, (load_start, os.getloadavg()[0]))


def _source_version() -> str:
    """The commit, and whether the engine or SDK sources differ from it."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                  "featurestore", "transforms"],
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + (" + uncommitted changes in featurestore/ or transforms/" if changed else "")


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def print_report(args: argparse.Namespace, results: Results, warmup: Run,
                 load: tuple[float, float]) -> None:
    """The table of cases and the targets."""
    print(f"\nCompile cost through `featurestore apply` and the SDK, source {_source_version()}")
    print(f"sample events {args.events:,} for {args.users:,} users over {args.days} days; "
          f"generated registries: {FEATURES_PER_VIEW} features per view; {args.repeat} "
          "run(s) per case, each a new process; medians")
    print(f"{os.cpu_count()} cores, load average {load[0]:.1f} at start, {load[1]:.1f} at end; "
          f"python {sys.version.split()[0]}")
    print(f"setup: engine warm-up apply (1 generated view, other windows): "
          f"{warmup.cpu_s:.2f} s CPU, {warmup.wall_s:.2f} s wall; sources {warmup.sources[0]}")
    labels = {"demo": "demo registry.yaml",
              "1 view": f"1 view x {FEATURES_PER_VIEW} features",
              "views": f"{args.views} views x {FEATURES_PER_VIEW} features"}
    header = (f"{'case (new process each)':44}{'variant':19}{'cpu s':>8}{'wall s':>8}"
              f"{'peak MB':>9}   cpu runs s")
    print("\n" + header)
    print("-" * len(header))

    versions = list(dict.fromkeys(
        version for run in [warmup, *(r for runs in results.runs.values() for r in runs)]
        for version in run.sources))

    def mark(run: Run) -> str:
        """Which source version a run measured, when there were several."""
        if len(versions) == 1:
            return ""
        start, end = (versions.index(version) + 1 for version in run.sources)
        return f"[v{start}]" if start == end else f"[v{start}-v{end}!]"

    def row(label: str, variant: str, key: tuple[str, str]) -> None:
        runs = results.runs[key]
        cpu_runs = " ".join(f"{run.cpu_s:.2f}{mark(run)}" for run in runs)
        peak = max(run.report.get("peak_mb", run.maxrss_mb) for run in runs)
        print(f"{label:44}{variant:19}{results.median(*key):8.2f}"
              f"{results.median(*key, 'wall_s'):8.2f}{peak:9.0f}   {cpu_runs}")

    for case, label in labels.items():
        for variant in VARIANTS:
            row(f"apply, {label}" if variant == "cold" else "", variant, (case, variant))
    row(f"edit one feature's window ({args.views} views)", "caches kept", ("edit", ""))
    row("warm process -> first training set", "caches kept", ("training", ""))

    training = results.runs[("training", "")]
    stages = {
        "spawn to result": [r.report["done"] - r.report["spawned"] for r in training],
        "spawn to imported": [r.report["imported"] - r.report["spawned"] for r in training],
        "open store": [r.report["opened"] - r.report["imported"] for r in training],
        "get_training_set": [r.report["done"] - r.report["opened"] for r in training],
        "cpu to result": [r.report["cpu_s"] for r in training],
    }
    rows = training[0].report["rows"]
    print(f"  first training set ({rows:,} rows, service {DEMO_SERVICE}), median s: "
          + "; ".join(f"{name} {statistics.median(values):.2f}"
                      for name, values in stages.items()))
    if len(versions) > 1:
        print(f"  WARNING: the sources under featurestore/ and transforms/ changed during the "
              f"run ({len(versions)} versions, v1 = {versions[0]}, ...): [vN] marks the "
              f"version a run measured, [vN-vM!] a change while it ran; an engine cache "
              f"warmed on {mark(warmup)} is partly cold for other versions. Runs on "
              "different versions are not comparable: run again on a quiet tree.")
    print(f"  peak MB: the child's own VmHWM for the training set; ru_maxrss for apply "
          f"(meaningful above this script's own peak, {peak_mb():.0f} MB)")

    print()
    for variant in VARIANTS:
        demo = results.median("demo", variant)
        one, many = results.median("1 view", variant), results.median("views", variant)
        ratio = many / one
        scale = "" if args.views == TARGET_VIEWS else f" (target set for {TARGET_VIEWS} views)"
        print(f"targets, {variant}: demo apply <= {TARGET_DEMO_CPU_S:g} s CPU: {demo:.2f} s, "
              f"{_verdict(demo <= TARGET_DEMO_CPU_S)}; {args.views} views <= "
              f"{TARGET_VIEWS_CPU_S:g} s CPU{scale}: {many:.2f} s, "
              f"{_verdict(many <= TARGET_VIEWS_CPU_S)}; {args.views} views / 1 view <= "
              f"{TARGET_VIEWS_RATIO:g}x: {ratio:.1f}x, {_verdict(ratio <= TARGET_VIEWS_RATIO)}")
    edit = results.median("edit", "")
    first = statistics.median(stages["spawn to result"])
    print(f"targets, caches kept: edit one feature <= {TARGET_EDIT_CPU_S:g} s CPU: {edit:.2f} s, "
          f"{_verdict(edit <= TARGET_EDIT_CPU_S)}; first training set <= "
          f"{TARGET_FIRST_TRAINING_WALL_S:g} s wall from spawn: {first:.2f} s, "
          f"{_verdict(first <= TARGET_FIRST_TRAINING_WALL_S)}")
    print("(on a shared machine wall far above CPU means waiting for a core; the CPU "
          "figures are the better estimate of an idle machine's wall time)")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per case, each in a new process (default 3; medians)")
    parser.add_argument("--views", type=int, default=TARGET_VIEWS,
                        help=f"feature views of the large generated registry (default "
                             f"{TARGET_VIEWS})")
    parser.add_argument("--events", type=int, default=200_000,
                        help="sample events (default 200,000, as `featurestore demo`)")
    parser.add_argument("--users", type=int, default=2_000, help="sample users (default 2,000)")
    parser.add_argument("--days", type=int, default=90, help="days of events (default 90)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample events")
    parser.add_argument("--work-dir", type=Path,
                        help="keep inputs and every run's project, caches and offline file "
                             "here (default: a temporary directory, removed at the end)")
    args = parser.parse_args(argv)
    if min(args.repeat, args.views, args.events, args.users, args.days) < 1:
        parser.error("--repeat, --views and the sizes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags and run the benchmark."""
    args = parse_args(argv)
    in_work_folder(args.work_dir, "compile-bench-", lambda work: run_benchmark(args, work))


if __name__ == "__main__":
    main()
