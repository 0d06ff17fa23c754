"""Benchmark point-in-time training sets: `get_training_set` against DuckDB SQL and pandas.

The demo registry's features (the 8 window features of `user_txn` and the 2 request
features of `txn_context`) over events from the sample generator
(`featurestore/sample_data.py`), for a spine drawn by `featurestore/sample_spine.py`
(users weighted by activity, uniform times, an `amount_now` column). Three contenders,
each in its own child process, each reading the same Parquet files and returning one
row per spine row in spine order:

- **project**: `FeatureStore.get_training_set(spine_path, features=..., output="arrow")`
  (kernels compiled or loaded from the disk cache before the clock starts, as `apply`
  does);
- **sql**: one DuckDB query as a user would write it: a range join of spine and events
  on the user and `ts < t`, bounded by the widest window, and one aggregate per feature
  with a FILTER clause for its exact hop-aligned tail `floor(t, h) - w <= ts < t`
  (`arg_max` on (time, value) for `last`, so ties break as the project's do);
- **pandas**: pandas reads and sorts the data; the windows are the vectorised
  pandas/numpy formulation of `benchmarks/pandas_baseline.py` (`baseline_values`: per-user
  running sums, `np.searchsorted`, `np.fmax.reduceat`).

Printed per contender: wall time of the core call, its CPU time (all threads; on a
shared machine wall far above CPU means waiting for a core), peak RSS (the child's own
high-water mark, VmHWM from /proc/self/status, which also covers DuckDB's memory), and
ratios to the project. Results of project and pandas are compared with the SQL on every
row and feature: nulls must match and values agree within 1e-9 relative.

The SQL runs with a DuckDB memory limit (4 GB, spilling to disk past it) and a cap on
its spill (20 GB) so that it cannot take the machine down. At the full size it is
bounded: it runs on the first 25k and 50k spine rows (a random sample) and its time for
the whole spine is extrapolated on the line through both runs; those rows are compared.
On all 1M rows it joins about 650M (spine row, event) pairs and spilled more than 46 GB
before it was stopped after 20 minutes, so the extrapolation is a lower bound.

Usage (from the repository root):

    .venv/bin/python benchmarks/training_set.py            # 10M events, 10k users, 1M spine
    .venv/bin/python benchmarks/training_set.py --small    # 1M events, 10k users, 100k spine
    .venv/bin/python benchmarks/training_set.py --events 3000000 --spine 300000 \\
        --contenders project,sql --sql-spine-rows 0 --sql-timeout 600
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import peak_mb, progress

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-9
TARGET_SPEEDUP = 15.0
TARGET_PEAK_MB = 3000.0
CONTENDERS = ("project", "sql", "pandas")
# At the full size the SQL runs on part of the spine and is extrapolated (see above).
PRESETS = {
    "full": {"events": 10_000_000, "users": 10_000, "spine": 1_000_000,
             "sql_spine_rows": 50_000},
    "small": {"events": 1_000_000, "users": 10_000, "spine": 100_000, "sql_spine_rows": None},
}
H, D = 3_600_000_000, 86_400_000_000
# The demo registry's user_txn features, as the SQL and pandas contenders implement them.
VIEW_FEATURES = (
    ("txn_count_1h", "count", None, H, 300_000_000),
    ("amount_sum_7d", "sum", "amount", 7 * D, H),
    ("amount_mean_30d", "mean", "amount", 30 * D, D),
    ("amount_std_30d", "std", "amount", 30 * D, D),
    ("amount_max_1d", "max", "amount", D, H),
    ("big_txn_7d", "sum", "amount > 500", 7 * D, H),
    ("log_amount_sum_1d", "sum", "log1p(amount)", D, H),
    ("last_category", "last", "merchant_category", 90 * D, D),
)
FEATURES = (*(name for name, *_ in VIEW_FEATURES), "amount_z", "log_amount_now")
REFERENCES = (*(f"user_txn:{name}" for name, *_ in VIEW_FEATURES),
              "txn_context:amount_z", "txn_context:log_amount_now")


def training_set_sql(events: Path, spine: Path, rows: int | None = None) -> str:
    """The training set as one DuckDB query, one output row per spine row, in spine order
    (only the first `rows` spine rows when given)."""
    widest = max(window + hop for _, _, _, window, hop in VIEW_FEATURES)

    def tail(window: int, hop: int) -> str:
        return f"ts >= t // {hop} * {hop} - {window}"

    w = {name: tail(window, hop) for name, _, _, window, hop in VIEW_FEATURES}
    return f"""
    WITH spine AS (
        SELECT file_row_number AS row_id, user_id, epoch_us(event_ts) AS t, amount_now
        FROM read_parquet('{spine}', file_row_number = true)
        {"" if rows is None else f"WHERE file_row_number < {int(rows)}"}
    ), events AS (
        SELECT user_id, epoch_us(event_ts) AS ts, amount, merchant_category
        FROM read_parquet('{events}')
    ), joined AS (
        SELECT s.row_id, s.t, s.amount_now, e.ts, e.amount, e.merchant_category
        FROM spine s LEFT JOIN events e
          ON e.user_id = s.user_id AND e.ts < s.t AND e.ts >= s.t - {widest}
    ), features AS (
        SELECT row_id, amount_now,
          count(ts) FILTER (WHERE {w["txn_count_1h"]}) AS txn_count_1h,
          coalesce(sum(amount) FILTER (WHERE {w["amount_sum_7d"]}), 0) AS amount_sum_7d,
          avg(amount) FILTER (WHERE {w["amount_mean_30d"]}) AS amount_mean_30d,
          stddev_pop(amount) FILTER (WHERE {w["amount_std_30d"]}) AS amount_std_30d,
          max(amount) FILTER (WHERE {w["amount_max_1d"]}) AS amount_max_1d,
          coalesce(sum(CAST(amount > 500 AS INTEGER)) FILTER (WHERE {w["big_txn_7d"]}), 0)
            AS big_txn_7d,
          coalesce(sum(ln(1 + amount)) FILTER (WHERE {w["log_amount_sum_1d"]}), 0)
            AS log_amount_sum_1d,
          arg_max(merchant_category, (ts, merchant_category))
            FILTER (WHERE {w["last_category"]} AND merchant_category IS NOT NULL)
            AS last_category
        FROM joined GROUP BY row_id, t, amount_now
    )
    SELECT {", ".join(name for name, *_ in VIEW_FEATURES)},
      CASE WHEN amount_std_30d > 0 THEN (amount_now - amount_mean_30d) / amount_std_30d END
        AS amount_z,
      ln(1 + amount_now) AS log_amount_now
    FROM features ORDER BY row_id
    """


# ---------------------------------------------------------------------------------------
# Children: each contender runs in a process of its own and prints a JSON line.


def _timed(work: Any) -> tuple[dict[str, float], Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}, result


def child_project(project: Path) -> tuple[dict[str, float], Any]:
    """The project's training set (kernels compiled or loaded first, outside the clock)."""
    from featurestore import FeatureStore

    store = FeatureStore(project)
    store.kernels().warm()
    # pyarrow imports pandas on its first conversion to numpy; as for the pandas
    # contender, that one-time import is not part of the measured call.
    import pandas  # noqa: F401
    return _timed(lambda: store.get_training_set(
        project / "spine.parquet", features=list(REFERENCES), output="arrow"
    ).select(list(FEATURES)))  # fmt: skip


def child_sql(project: Path, rows: int | None, memory_limit: str,
              max_spill: str) -> tuple[dict[str, float], Any]:
    """The same features as one DuckDB query (memory limited; DuckDB spills past it)."""
    import duckdb

    sql = training_set_sql(project / "data" / "transactions.parquet", project / "spine.parquet",
                           rows)
    with duckdb.connect() as con:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{project / 'duckdb-spill'}'")
        con.execute(f"SET max_temp_directory_size = '{max_spill}'")
        return _timed(lambda: con.sql(sql).to_arrow_table())


def child_pandas(project: Path) -> tuple[dict[str, float], Any]:
    """pandas reads and sorts; the vectorised window baseline of benchmarks/kernels.py."""
    return _timed(lambda: pandas_training_set(project))


def pandas_training_set(project: Path) -> Any:
    """The training set with pandas and numpy, in spine order."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from benchmarks.pandas_baseline import baseline_values, check_baseline_matches_spec
    from tests.transforms.demo_spec import DEMO_VIEW

    check_baseline_matches_spec(DEMO_VIEW.features)
    events = pd.read_parquet(project / "data" / "transactions.parquet")
    events["ts"] = events["event_ts"].dt.as_unit("us").astype("int64")
    events = events.sort_values(["user_id", "ts"], kind="stable")
    categories = pd.Categorical(events["merchant_category"])
    codes = np.where(categories.codes < 0, np.nan, categories.codes.astype(np.float64))
    spine = pd.read_parquet(project / "spine.parquet")
    query_ts = spine["event_ts"].dt.as_unit("us").astype("int64").to_numpy()
    users = spine["user_id"].to_numpy()
    order = np.lexsort((query_ts, users))
    values = np.empty((len(VIEW_FEATURES), len(spine)))
    values[:, order] = baseline_values(
        events["user_id"].to_numpy(), events["ts"].to_numpy(), events["amount"].to_numpy(),
        codes, users[order], query_ts[order],
    )  # fmt: skip
    columns = {name: values[i] for i, (name, *_) in enumerate(VIEW_FEATURES)}
    last = columns["last_category"]
    names = np.asarray(categories.categories, dtype=object)
    decoded = names[np.nan_to_num(last).astype(np.int64)]
    columns["last_category"] = np.where(np.isnan(last), None, decoded)
    amount_now = spine["amount_now"].to_numpy()
    std = columns["amount_std_30d"]
    with np.errstate(divide="ignore", invalid="ignore"):
        columns["amount_z"] = np.where(std > 0, (amount_now - columns["amount_mean_30d"]) / std,
                                       np.nan)
    columns["log_amount_now"] = np.log1p(amount_now)
    return pa.table({name: pa.array(columns[name], from_pandas=True) for name in FEATURES})


def run_child_mode(args: argparse.Namespace) -> None:
    """Run one contender, write its result as Parquet, print its measurements."""
    import pyarrow.parquet as pq

    project = args.work_dir
    if args.child == "sql":
        timing, table = child_sql(project, args.sql_spine_rows, args.sql_memory_limit,
                                  args.sql_max_spill)
    else:
        timing, table = {"project": child_project, "pandas": child_pandas}[args.child](project)
    pq.write_table(table, project / f"result-{args.child}.parquet")
    print(json.dumps({**timing, "peak_mb": peak_mb(), "rows": table.num_rows}))


# ---------------------------------------------------------------------------------------
# The parent: prepare data, run the children, compare, print.


def prepare(project: Path, events: int, users: int, spine: int, days: int, seed: int) -> None:
    """Write the demo registry, the sample events and a spine (kept when present)."""
    import pyarrow.parquet as pq

    from featurestore.sample_data import generate_transactions
    from featurestore.sample_spine import sample_spine

    project.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "registry.yaml", project / "registry.yaml")
    data = project / "data" / "transactions.parquet"
    if not data.exists():
        progress(f"generating {events:,} events for {users:,} users")
        generate_transactions(data, events=events, users=users, days=days, seed=seed)
    if not (project / "spine.parquet").exists():
        progress(f"drawing a spine of {spine:,} rows")
        pq.write_table(sample_spine(data, spine, seed=seed), project / "spine.parquet")


def check_registry_matches(project: Path) -> None:
    """Stop if the demo registry no longer defines what the SQL and pandas compute."""
    from featurestore import FeatureStore

    registry = FeatureStore(project).registry
    view = registry.feature_views["user_txn"]
    defined = tuple(
        (name, feature.agg, feature.expr, feature.window, registry.effective_hop("user_txn", name))
        for name, feature in view.features.items()
    )
    if defined != VIEW_FEATURES:
        raise SystemExit("registry.yaml changed: update VIEW_FEATURES and the SQL in "
                         "benchmarks/training_set.py")


def run_child(name: str, project: Path, args: argparse.Namespace,
              sql_rows: int | None = None) -> dict[str, Any] | None:
    """Run a contender in a child; None when it ran past its timeout (then killed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name,
               "--work-dir", str(project), "--sql-memory-limit", args.sql_memory_limit,
               "--sql-max-spill", args.sql_max_spill]
    # 0 means every row (the child does not know the preset the parent runs).
    command += ["--sql-spine-rows", str(sql_rows or 0)]
    timeout = args.sql_timeout if name == "sql" else None
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()  # the child this function started, by its handle
        process.communicate()
        return None
    if process.returncode != 0 and name == "sql":
        progress(f"sql failed (exit code {process.returncode}): see its error above")
        return None
    if process.returncode != 0:
        raise SystemExit(f"contender {name} failed (exit code {process.returncode})")
    return json.loads(output.strip().splitlines()[-1])


def compare(expected: Any, got: Any) -> dict[str, tuple[int, float, str]]:
    """Per feature: (rows that differ, largest relative difference among non-null pairs,
    the first differing row as `row: expected vs got`, or "").

    `expected` may cover only the first rows of `got` (a SQL run on part of the spine).
    """
    import numpy as np

    got = got.slice(0, expected.num_rows)
    found = {}
    for name in FEATURES:
        a, b = expected.column(name), got.column(name)
        null_a = a.is_null().to_numpy(zero_copy_only=False)
        null_b = b.is_null().to_numpy(zero_copy_only=False)
        both = ~null_a & ~null_b
        relative = np.zeros(len(a))
        if name == "last_category":
            same = np.asarray(a.to_pylist(), dtype=object) == np.asarray(b.to_pylist(), object)
            bad = (null_a != null_b) | (both & ~same)
        else:
            x = a.to_numpy(zero_copy_only=False).astype(float)
            y = b.to_numpy(zero_copy_only=False).astype(float)
            scale = np.maximum(np.abs(x), np.abs(y))
            with np.errstate(invalid="ignore", divide="ignore"):
                relative = np.where(both & (scale > 0), np.abs(x - y) / scale, 0.0)
            bad = (null_a != null_b) | (relative > TOLERANCE)
        rows = np.flatnonzero(bad)
        example = f"row {rows[0]}: {a[rows[0]].as_py()!r} vs {b[rows[0]].as_py()!r}" if len(
            rows) else ""
        found[name] = (len(rows), float(relative.max(initial=0.0)), example)
    return found


def run_sql(project: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """The SQL contender on the whole spine, or extrapolated from two parts of it.

    With `--sql-spine-rows N` (fewer than the spine's rows) the query runs on the first
    N/2 and N rows (a random sample: the spine is in random order) and the whole-spine
    time is extrapolated on the line through both runs (time = a + b * rows: the scan of
    the events is paid once, the join and aggregation grow with the rows). A run on all
    rows only grows slower than that line once DuckDB spills, so it is a lower bound.
    """
    rows = args.sql_spine_rows
    if rows is None or rows >= args.spine:
        return run_child("sql", project, args)
    runs = [(rows // 2, run_child("sql", project, args, rows // 2)),
            (rows, run_child("sql", project, args, rows))]
    if any(result is None for _, result in runs):
        return None
    (n1, first), (n2, second) = runs
    extrapolated = {}
    for clock in ("wall_s", "cpu_s"):
        slope = max((second[clock] - first[clock]) / (n2 - n1), 0.0)
        extrapolated[clock] = second[clock] + slope * (args.spine - n2)
    runs_text = ", ".join(f"{n:,} rows in {result['wall_s']:.1f}s" for n, result in runs)
    return {**second, **extrapolated, "runs": runs_text}


def print_report(args: argparse.Namespace, results: dict[str, dict[str, Any] | None],
                 checks: dict[str, dict[str, tuple[int, float, str]]]) -> None:
    """The table of times, memory and ratios, then the result checks and targets."""
    print(f"\nTraining set: {args.events:,} events, {args.users:,} users, {args.spine:,} spine "
          f"rows, {len(FEATURES)} features (demo registry); load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    project = results.get("project")
    rows = [("contender", "wall s", "cpu s", "peak RSS MB", "wall / project")]
    for name, result in results.items():
        # `>`: stopped at the timeout; `*`: extrapolated from runs on part of the spine.
        mark = ">" if result is None else "*" if "runs" in result else ""
        wall = args.sql_timeout if result is None else result["wall_s"]
        ratio = f"{mark}{wall / project['wall_s']:.1f}x" if project else "-"
        cpu = "-" if result is None else f"{result['cpu_s']:.2f}"
        peak = "-" if result is None else f"{result['peak_mb']:.0f}"
        rows.append((name, f"{mark}{wall:.2f}", cpu, peak, ratio))
    for row in rows:
        print(f"{row[0]:<10}" + "".join(f"{cell:>16}" for cell in row[1:]))
    sql = results.get("sql")
    if sql and "runs" in sql:
        print(f"* sql measured on the first spine rows ({sql['runs']}; peak RSS of the "
              f"larger run) and extrapolated linearly to {args.spine:,} rows; only those "
              "rows are compared")
    if "sql" in results and sql is None:
        print(f"> sql was stopped (after {args.sql_timeout:.0f}s, or when its spill to disk "
              f"passed {args.sql_max_spill}): lower bounds")
    for name, check in checks.items():
        worst = max(found[1] for found in check.values())
        bad = [f"{feature}: {count} rows, e.g. {example}"
               for feature, (count, _, example) in check.items() if count]
        verdict = "equal on every compared row" if not bad else "DIFFERENT: " + "; ".join(bad)
        print(f"{name}: {verdict} (largest relative difference {worst:.1e}, tolerance "
              f"{TOLERANCE:g} relative)")
    if project:
        peak_ok = "met" if project["peak_mb"] < TARGET_PEAK_MB else "NOT met"
        print(f"target: project peak RSS < {TARGET_PEAK_MB:.0f} MB: {peak_ok}")
    if project and "sql" in results:
        speedup = (sql["wall_s"] if sql else args.sql_timeout) / project["wall_s"]
        verdict = "met" if speedup >= TARGET_SPEEDUP else "NOT met"
        scale = "" if args.events >= PRESETS["full"]["events"] else " (set for 10M events)"
        print(f"target: sql / project >= {TARGET_SPEEDUP:.0f}x{scale}: {speedup:.1f}x, "
              f"{verdict}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1M events, 100k spine rows")
    parser.add_argument("--events", type=int, help="events (default 10M; --small 1M)")
    parser.add_argument("--users", type=int, help="users (default 10k)")
    parser.add_argument("--spine", type=int, help="spine rows (default 1M; --small 100k)")
    parser.add_argument("--days", type=int, default=90, help="days of events (default 90)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated, from: " + ", ".join(CONTENDERS))
    parser.add_argument("--sql-timeout", type=float, default=3600.0,
                        help="stop the SQL contender after this many seconds (default 3600)")
    parser.add_argument("--sql-spine-rows", type=int,
                        help="run the SQL on the first N/2 and N spine rows and extrapolate "
                             "(default: 50k at the full size, every row with --small; 0: "
                             "every row)")
    parser.add_argument("--sql-memory-limit", default="4GB",
                        help="DuckDB memory_limit of the SQL contender (default 4GB; it "
                             "spills to disk past it)")
    parser.add_argument("--sql-max-spill", default="20GB",
                        help="DuckDB max_temp_directory_size of the SQL contender: it fails "
                             "rather than fill the disk (default 20GB)")
    parser.add_argument("--work-dir", type=Path,
                        help="where data and results go (default .cache/benchmarks/...)")
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    preset = PRESETS["small" if args.small else "full"]
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.sql_spine_rows == 0:
        args.sql_spine_rows = None
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child_mode(args)
        return
    sys.path.insert(0, str(ROOT))
    names = [name.strip() for name in args.contenders.split(",") if name.strip()]
    unknown = sorted(set(names) - set(CONTENDERS))
    if unknown:
        raise SystemExit(f"unknown contenders: {', '.join(unknown)}")
    label = f"training_set-{args.events}-{args.users}-{args.spine}-{args.days}-{args.seed}"
    project = (args.work_dir or ROOT / ".cache" / "benchmarks" / label).resolve()
    prepare(project, args.events, args.users, args.spine, args.days, args.seed)
    check_registry_matches(project)
    results: dict[str, dict[str, Any] | None] = {}
    for name in names:
        progress(f"running {name}")
        results[name] = run_sql(project, args) if name == "sql" else run_child(name, project,
                                                                                 args)
    print_report(args, results, check_results(project, results))


def check_results(project: Path, results: dict[str, dict[str, Any] | None]
                  ) -> dict[str, dict[str, tuple[int, float, str]]]:
    """Each contender against the SQL, and the project against pandas (on every row, where
    the SQL may have run on part of the spine)."""
    import pyarrow.parquet as pq

    def table(name: str) -> Any:
        return pq.read_table(project / f"result-{name}.parquet")

    pairs = [(name, "sql") for name in ("project", "pandas")] + [("project", "pandas")]
    return {f"{got} vs {expected}": compare(table(expected), table(got))
            for got, expected in pairs if results.get(got) and results.get(expected)}


if __name__ == "__main__":
    main()
