"""Benchmark `featurestore stats --source` against a hand-written DuckDB query.

Events from the sample generator (`featurestore/sample_data.py`: `user_id`, `event_ts`,
`amount` with some nulls, `merchant_category`) as one Parquet file, the demo registry's
source `transactions` over it. Two contenders, each in its own child process:

- **project**: `FeatureStore(project).stats(source="transactions")`, the SDK call behind
  `featurestore stats --source transactions` (one statement, one scan: a materialized
  input, one aggregate, a GROUP BY per string column, a histogram per number);
- **sql**: the same statistics as a person would write them in DuckDB: one aggregate
  query over the file, plus a GROUP BY ... ORDER BY ... LIMIT for the string column's top
  values and a GROUP BY of floored bins for each histogram, each reading the file again
  (Parquet reads only the columns each needs). It uses the quantile function the project
  reported (exact below its threshold, approximate above), so both compute the same.

Printed: median wall and CPU time of `--repeat` alternating runs (default 3), peak RSS of
each child (VmHWM: the child's own high-water mark, DuckDB's memory included), the ratio
project / sql (target: at most 2x), and a check that both agree on counts, nulls, means
and the top values.

Usage (from the repository root):

    .venv/bin/python benchmarks/stats.py                    # 10M events
    .venv/bin/python benchmarks/stats.py --events 200000    # a quick check
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import in_work_folder, peak_mb, progress

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 2.0
LEVELS = "[0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]"
BINS = 10


def hand_written_sql(path: Path, quantile: str) -> str:
    """The statistics of the events file as one hand-written DuckDB query."""
    file = f"read_parquet('{path}')"

    def numeric(column: str, value: str) -> str:
        return (f"count({value}) AS {column}_count, min({value}) AS {column}_min, "
                f"max({value}) AS {column}_max, avg({value}) AS {column}_mean, "
                f"stddev_pop({value}) AS {column}_std, "
                f"{quantile}({value}::DOUBLE, {LEVELS}) AS {column}_q, "
                f"approx_count_distinct({value}) AS {column}_distinct")

    def histogram(value: str) -> str:
        return (f"(SELECT list(n ORDER BY b) FROM (SELECT least(floor(({value} - lo) / "
                f"(hi - lo) * {BINS}), {BINS - 1}) AS b, count(*) AS n FROM {file}, "
                f"(SELECT min({value})::DOUBLE AS lo, max({value})::DOUBLE AS hi FROM {file}) "
                f"WHERE {value} IS NOT NULL GROUP BY b))")

    ts = "epoch_us(event_ts)"
    return f"""
    SELECT * FROM (
      SELECT count(*) AS rows, {numeric("user_id", "user_id")},
        {numeric("amount", "CASE WHEN isnan(amount) THEN NULL ELSE amount END")},
        count({ts}) AS ts_count, min({ts}) AS ts_min, max({ts}) AS ts_max,
        {quantile}({ts}::DOUBLE, {LEVELS}) AS ts_q,
        approx_count_distinct({ts}) AS ts_distinct,
        count(merchant_category) AS category_count,
        min(merchant_category) AS category_min, max(merchant_category) AS category_max
      FROM {file}),
      (SELECT list({{'v': v, 'n': n}} ORDER BY n DESC, v) AS category_top FROM (
         SELECT merchant_category AS v, count(*) AS n FROM {file}
         WHERE merchant_category IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT 10)),
      (SELECT count(DISTINCT merchant_category) AS category_distinct FROM {file}),
      (SELECT {histogram("user_id")} AS user_id_hist, {histogram("amount")} AS amount_hist,
              {histogram(ts)} AS ts_hist)
    """


def _timed(work: Any) -> tuple[dict[str, float], Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}, result


def child(kind: str, project: Path, quantile: str) -> None:
    """One contender's run: print its timing, peak memory and what to compare."""
    if kind == "project":
        from featurestore import FeatureStore

        store = FeatureStore(project)
        before = peak_mb()
        timing, result = _timed(lambda: store.stats(source="transactions"))
        summary = {
            "rows": result.rows, "before_mb": before, "quantile_method": result.quantile_method,
            "amount_count": result.column("amount").count,
            "amount_mean": result.column("amount").mean,
            "category_top": [[t.value, t.count] for t in result.column("merchant_category").top],
        }
    else:
        import duckdb

        con = duckdb.connect()
        sql = hand_written_sql(project / "data" / "transactions.parquet", quantile)

        def run() -> dict[str, Any]:
            cursor = con.execute(sql)
            names = [entry[0] for entry in cursor.description]
            return dict(zip(names, cursor.fetchall()[0], strict=True))

        timing, row = _timed(run)
        summary = {"rows": row["rows"], "amount_count": row["amount_count"],
                   "amount_mean": row["amount_mean"],
                   "category_top": [[t["v"], t["n"]] for t in row["category_top"]]}
    print(json.dumps({**timing, "peak_mb": peak_mb(), "summary": summary}))


def spawn(kind: str, project: Path, quantile: str) -> dict[str, Any]:
    """Run one contender in a new process and read its JSON line."""
    done = subprocess.run([sys.executable, __file__, "--child", kind, "--work-dir",
                           str(project), "--quantile", quantile],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(project: Path, events: int, users: int, seed: int) -> None:
    """The demo registry and its events (kept when present)."""
    from featurestore.sample_data import generate_transactions

    project.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "registry.yaml", project / "registry.yaml")
    data = project / "data" / "transactions.parquet"
    if not data.exists():
        progress(f"generating {events:,} events for {users:,} users")
        generate_transactions(data, events=events, users=users, seed=seed)


def measure(args: argparse.Namespace, project: Path) -> None:
    """Prepare, run both contenders `--repeat` times, print the report."""
    prepare(project, args.events, args.users, args.seed)
    load = Path("/proc/loadavg").read_text().split()[:3]
    runs: dict[str, list[dict[str, Any]]] = {"project": [], "sql": []}
    quantile = "quantile_cont"
    for repeat in range(args.repeat):
        progress(f"repeat {repeat + 1}/{args.repeat}")
        runs["project"].append(spawn("project", project, quantile))
        method = runs["project"][-1]["summary"]["quantile_method"]
        quantile = "quantile_cont" if method == "exact" else "approx_quantile"
        runs["sql"].append(spawn("sql", project, quantile))
    report(args, runs, load)


def report(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]],
           load: list[str]) -> None:
    """Print medians, the ratio, peak memory and whether the results agree."""
    medians = {kind: {key: statistics.median(run[key] for run in results)
                      for key in ("wall_s", "cpu_s", "peak_mb")}
               for kind, results in runs.items()}
    project, sql = runs["project"][-1]["summary"], runs["sql"][-1]["summary"]
    print(f"stats over {args.events:,} events (quantiles {project['quantile_method']}), "
          f"{args.repeat} runs each, load {' '.join(load)} -> "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"{'contender':<10} {'wall s':>8} {'cpu s':>8} {'peak MB':>9}  runs (wall s)")
    for kind, median in medians.items():
        each = ", ".join(f"{run['wall_s']:.2f}" for run in runs[kind])
        print(f"{kind:<10} {median['wall_s']:>8.2f} {median['cpu_s']:>8.2f} "
              f"{median['peak_mb']:>9.0f}  {each}")
    print(f"(the project child's peak includes {project['before_mb']:.0f} MB reached before "
          "the call: importing featurestore and opening the store)")
    ratio = medians["project"]["wall_s"] / medians["sql"]["wall_s"]
    print(f"ratio project / sql (wall): {ratio:.2f}x "
          f"({'met' if ratio <= TARGET_RATIO else 'NOT met'}: target <= {TARGET_RATIO:.0f}x)")
    agree = (project["rows"] == sql["rows"] and project["amount_count"] == sql["amount_count"]
             and abs(project["amount_mean"] - sql["amount_mean"])
             <= 1e-9 * abs(sql["amount_mean"])
             and project["category_top"] == sql["category_top"])
    print(f"results agree (rows, amount count and mean, category top 10): "
          f"{'yes' if agree else 'NO'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="Keep the project and events here (reused when present).")
    parser.add_argument("--child", choices=("project", "sql"), help=argparse.SUPPRESS)
    parser.add_argument("--quantile", default="quantile_cont", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.work_dir, args.quantile)
        return
    in_work_folder(args.work_dir, "featurestore-stats-", lambda work: measure(args, work))


if __name__ == "__main__":
    main()
