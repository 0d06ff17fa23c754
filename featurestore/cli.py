"""The `featurestore` command line (also `python -m featurestore`).

Commands are thin: each one calls the SDK and prints the result. User errors print one
line each on stderr and exit non-zero (2 for an invalid registry), never a traceback.
"""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurestore.credentials import redact_url
from featurestore.errors import FeatureStoreError, RegistryError
from featurestore.progress import MaterializeProgress
from featurestore.store import FeatureStore
from featurestore.table_files import read_table_file, write_table_file

REGISTRY_ENV = "FEATURESTORE_REGISTRY"
SAMPLE_SOURCE = "transactions"

EXIT_FAILURE = 1
EXIT_INVALID_REGISTRY = 2


class _Commands(click.Group):
    """A click group that turns the feature store's errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RegistryError as error:
            for problem in error.problems:
                click.echo(problem, err=True)
            ctx.exit(EXIT_INVALID_REGISTRY)
        except FeatureStoreError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(EXIT_FAILURE)
        except OSError as error:
            # A file the user named cannot be written or read (permissions, full disk).
            where = f": {error.filename}" if error.filename else ""
            click.echo(f"error: {error.strerror or error}{where}", err=True)
            ctx.exit(EXIT_FAILURE)


def _registry_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--registry",
        "registry",
        default="registry.yaml",
        show_default=True,
        envvar=REGISTRY_ENV,
        type=click.Path(path_type=Path),
        help=f"Registry file, or a folder holding registry.yaml (env {REGISTRY_ENV}).",
    )(command)


def _size_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--events", default=200_000, show_default=True, type=click.IntRange(1)),
        click.option("--users", default=2_000, show_default=True, type=click.IntRange(1)),
        click.option("--days", default=90, show_default=True, type=click.IntRange(1)),
        click.option("--seed", default=0, show_default=True, type=int),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Feature definitions in registry.yaml, computed the same way for training and serving."""


@main.command()
@_registry_option
def plan(registry: Path) -> None:
    """Show what `apply` would change."""
    click.echo(FeatureStore(registry).plan().render())


@main.command()
@_registry_option
def apply(registry: Path) -> None:
    """Validate the registry and record it as the applied version."""
    click.echo(FeatureStore(registry).apply(progress=_to_stderr).render())


@main.command()
@_registry_option
@click.option("--end", default=None, help="Process events before this time (ISO-8601, UTC); "
              "default now.")
@click.option("--full", is_flag=True, help="Rebuild from all events instead of only new ones.")
def materialize(registry: Path, end: str | None, full: bool) -> None:
    """Build offline tables from events before --end and load the online store."""
    store = FeatureStore(registry)
    with MaterializeProgress() as progress:
        result = store.materialize(end=end, full=full, progress=progress.update)
    click.echo(result.render())


def _to_stderr(line: str) -> None:
    """Progress lines go to stderr, keeping stdout for results."""
    click.echo(line, err=True)


@main.command(name="compile")
@_registry_option
@click.option("--show", is_flag=True, help="Print the generated kernel source.")
def compile_command(registry: Path, show: bool) -> None:
    """Compile the registry's transform graph (cached on disk) and report it."""
    store = FeatureStore(registry)
    started = time.perf_counter()
    kernels = store.kernels()
    kernels.compile_missing(_to_stderr)
    if show:
        click.echo(kernels.source, nl=False)
        return
    click.echo(f"compiled graph {kernels.hash}: {len(kernels.views)} feature views, "
               f"{len(kernels.request_views)} request views "
               f"({time.perf_counter() - started:.1f}s)")


@main.command()
@_registry_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--access-log", is_flag=True, help="Log one line per request.")
def serve(registry: Path, host: str, port: int, access_log: bool) -> None:
    """Serve online features over HTTP (OpenAPI at /docs)."""
    # Imported here: only this command needs the web stack.
    from featurestore.serving.server import serve as run_server

    store = FeatureStore(registry)
    click.echo(describe_server(store.registry.project, store.online, host, port))
    run_server(store, host=host, port=port, access_log=access_log)


def describe_server(project: str, online: str, host: str, port: int) -> str:
    """The line `serve` prints at startup; the online store is shown without its password.

    Args:
        project: the project served.
        online: the online store setting ("local" or a Redis URL).
        host: the interface the server listens on.
        port: its TCP port.
    """
    return (f"serving {project} from the {redact_url(online)} online store "
            f"on http://{host}:{port} (OpenAPI at /docs)")


class _EntityCount(click.ParamType):
    """A positive number of entities, or `all`."""

    name = "N|all"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        if value == "all" or (isinstance(value, int) and value >= 1):
            return value
        try:
            count = int(value)
        except (TypeError, ValueError):
            count = 0
        if count < 1:
            self.fail(f"expected a positive number or 'all', got {value!r}", param, ctx)
        return count


@main.command()
@_registry_option
@click.option("--entities", default="100", show_default=True, type=_EntityCount(),
              metavar="N|all",
              help="Entities sampled per feature view, or 'all' for every entity with "
                   "online state.")
@click.option("--at", "times", multiple=True, metavar="T",
              help="Lookup time (ISO-8601, UTC), repeatable; default: the materialization "
                   "end and a few later times.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sample.")
@click.pass_context
def verify(ctx: click.Context, registry: Path, entities: int | str, times: tuple[str, ...],
           seed: int) -> None:
    """Check that online values equal offline ones for sampled (or all) entities; exit 1
    on any difference, or when a view is stale."""
    report = FeatureStore(registry).verify(entities=entities, at=list(times) or None, seed=seed)
    click.echo(report.render())
    if not report.ok:
        ctx.exit(EXIT_FAILURE)


def _demo_online(store: FeatureStore, step: int, total: int) -> None:
    """The online half of the demo: materialize, look up, push, look up again, verify.

    Everything happens at the end of the sample data's timeline, so the windows hold
    events; the pushed transaction comes one minute after it.
    """
    end = _sample_end(store)
    click.echo(f"[{step}/{total}] Materialize events before {end.isoformat()}:")
    click.echo(_indent(store.materialize(end=end).render()))
    users = list(DEMO_USERS)
    click.echo(f"[{step + 1}/{total}] Online lookups (SDK), service {DEMO_SERVICE}:")
    answer = store.get_online_features(service=DEMO_SERVICE, entities={"user_id": users},
                                       request={"amount_now": [25.0, 480.0, 3100.0]}, at=end)
    click.echo(_indent(_table(answer)))
    pushed_at = end + timedelta(minutes=1)
    event = {"user_id": users[0], "event_ts": pushed_at, "amount": 950.0,
             "merchant_category": "electronics"}
    click.echo(f"[{step + 2}/{total}] Push a {event['amount']:.2f} electronics transaction "
               f"for user {users[0]}, then look up again:")
    features = [f"user_txn:{name}" for name in DEMO_PUSH_FEATURES]
    lookup_at = pushed_at + timedelta(minutes=1)
    before = store.get_online_features(features=features, entities={"user_id": users[:1]},
                                       at=lookup_at)
    result = store.push(SAMPLE_SOURCE, [event])
    after = store.get_online_features(features=features, entities={"user_id": users[:1]},
                                      at=lookup_at)
    where = "online store updated" if result.online else "stored for the next materialization"
    click.echo(f"      pushed {result.rows} row ({where}); at {lookup_at.isoformat()}:")
    for name in DEMO_PUSH_FEATURES:
        old, new = _rounded(before[name][0]), _rounded(after[name][0])
        click.echo(f"      {name:<16} {old!s:>12} -> {new!s}")
    click.echo(f"[{step + 3}/{total}] Verify online == offline:")
    report = store.verify()
    click.echo(_indent(report.render()))
    if not report.ok:
        raise FeatureStoreError("online and offline values differ (see above)")


DEMO_SERVICE = "fraud_v1"
DEMO_USERS = (1, 2, 3)
DEMO_PUSH_FEATURES = ("txn_count_1h", "amount_sum_7d", "big_txn_7d", "last_category")


def _sample_end(store: FeatureStore) -> datetime:
    """The end of the sample data: the hour after its last event (UTC)."""
    table = pq.read_table(_sample_path(store), columns=["event_ts"])
    last = pc.max(table.column("event_ts")).as_py()
    if last is None:
        raise FeatureStoreError("the sample data holds no events")
    last = last if last.tzinfo is not None else last.replace(tzinfo=UTC)
    return last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _table(columns: dict[str, list]) -> str:
    """Columns as aligned text rows, floats to 2 decimals."""
    def shown(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    names = list(columns)
    rows = [[shown(v) for v in values] for values in zip(*columns.values(), strict=True)]
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(names)]
    lines = ["  ".join(name.rjust(width) for name, width in zip(names, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


@main.command(name="training-set")
@_registry_option
@click.option("--spine", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Spine file, Parquet or CSV: entity keys, a timestamp, anything else.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file: Parquet, or CSV when the name ends in .csv.")
@click.option("--features", "features", multiple=True, metavar="REF",
              help="'view:feature' or a service name; repeat, or separate with commas.")
@click.option("--service", default=None, help="A service name (instead of --features).")
@click.option("--timestamp", default="event_ts", show_default=True,
              help="The spine's time column.")
@click.option("--full-names", is_flag=True, help="Name feature columns view__feature.")
def training_set(registry: Path, spine: Path, out: Path, features: tuple[str, ...],
                 service: str | None, timestamp: str, full_names: bool) -> None:
    """Build a point-in-time training set: the spine with feature columns appended."""
    store = FeatureStore(registry)
    references = [ref.strip() for refs in features for ref in refs.split(",") if ref.strip()]
    started = time.perf_counter()
    rows = read_table_file(spine)
    table = store.get_training_set(rows, features=references or None, service=service,
                                   timestamp=timestamp, full_names=full_names, output="arrow")
    write_table_file(table, out)
    click.echo(f"wrote {table.num_rows:,} rows with {table.num_columns - rows.num_columns} "
               f"feature columns to {_shown(out)} ({time.perf_counter() - started:.1f}s)")


@main.command()
@_registry_option
@click.option("--at", "at", required=True, metavar="T",
              help="Time of the features (ISO-8601; UTC unless it has an offset).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file: Parquet, or CSV when the name ends in .csv.")
@click.option("--entity", default=None,
              help="Entity to score (needed when feature views use several).")
@click.option("--full-names", is_flag=True, help="Name feature columns view__feature.")
def snapshot(registry: Path, at: str, out: Path, entity: str | None, full_names: bool) -> None:
    """Write every entity's features at time T (batch scoring), from raw events."""
    store = FeatureStore(registry)
    started = time.perf_counter()
    table = store.snapshot(at, entity=entity, full_names=full_names, output="arrow")
    write_table_file(table, out)
    click.echo(f"wrote {table.num_rows:,} entities to {_shown(out)} "
               f"({time.perf_counter() - started:.1f}s)")


@main.command()
@_registry_option
@_size_options
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Parquet file to write [default: the path of the registry's '{SAMPLE_SOURCE}' source].",
)
def generate(
    registry: Path, events: int, users: int, days: int, seed: int, out: Path | None
) -> None:
    """Write deterministic sample transaction events to Parquet."""
    target = out if out is not None else _sample_path(FeatureStore(registry))
    _generate(target, events, users, days, seed)


@main.command()
@_registry_option
@_size_options
def demo(registry: Path, events: int, users: int, days: int, seed: int) -> None:
    """Generate the sample data if it is missing, plan, apply, build a training set, then
    materialize, look up online, push and verify."""
    store = FeatureStore(registry)
    target = _sample_path(store)
    total = 8
    click.echo(f"[1/{total}] Sample data: {_shown(target)}")
    if target.exists():
        click.echo("      already there; delete it to generate it again.")
    else:
        _generate(target, events, users, days, seed)
    click.echo(f"[2/{total}] Plan for {_shown(store.registry_path)}:")
    click.echo(_indent(store.plan().render()))
    click.echo(f"[3/{total}] Apply to {_shown(store.offline_path)}:")
    click.echo(_indent(store.apply(progress=_to_stderr).summary()))
    _demo_training_set(store, 4, total)
    _demo_online(store, 5, total)


DEMO_SPINE_ROWS = 20_000
DEMO_TRAINING_FEATURES = (DEMO_SERVICE, "user_txn:last_category", "user_txn:amount_max_1d")


def _demo_training_set(store: FeatureStore, step: int, total: int) -> None:
    """Build a training set for a spine sampled from the events, and show its first rows."""
    from featurestore.sample_spine import sample_spine

    spine = sample_spine(_sample_path(store), DEMO_SPINE_ROWS, seed=0)
    click.echo(f"[{step}/{total}] Training set: {spine.num_rows:,} spine rows (users at random "
               "times, with amount_now and a label), features "
               f"{', '.join(DEMO_TRAINING_FEATURES)}:")
    started = time.perf_counter()
    frame = store.get_training_set(spine, features=list(DEMO_TRAINING_FEATURES))
    elapsed = time.perf_counter() - started
    head = frame.head(5).to_dict(orient="list")
    click.echo(_indent(_table({name: [_plain(v) for v in cells] for name, cells in head.items()})))
    click.echo(f"      {len(frame):,} rows x {len(frame.columns)} columns in {elapsed:.2f}s")


def _plain(value: object) -> object:
    """A cell as the demo prints it: times as ISO text, missing values as null."""
    if isinstance(value, datetime):
        return value.isoformat()
    return "null" if value is None or value != value else value


def _sample_path(store: FeatureStore) -> Path:
    """Where the sample data goes: the path of the registry's transactions source."""
    source = store.registry.sources.get(SAMPLE_SOURCE)
    if source is None or source.path is None:
        raise FeatureStoreError(
            f"the registry has no source '{SAMPLE_SOURCE}' with a 'path' to write the "
            "sample data to; give --out"
        )
    if glob.has_magic(source.path):
        raise FeatureStoreError(
            f"source '{SAMPLE_SOURCE}' reads a glob ({source.path}); give --out with one file"
        )
    return store.base_dir / source.path


def _generate(target: Path, events: int, users: int, days: int, seed: int) -> None:
    # Imported here: its Arrow schema loads pandas, which no other command needs.
    from featurestore.sample_data import generate_transactions

    started = time.perf_counter()
    label = f"      generating {events:,} events for {users:,} users over {days} days"
    if sys.stderr.isatty():
        with click.progressbar(length=events, label=label, file=sys.stderr) as bar:
            data = generate_transactions(
                target, events=events, users=users, days=days, seed=seed, progress=bar.update
            )
    else:
        click.echo(label)
        data = generate_transactions(target, events=events, users=users, days=days, seed=seed)
    elapsed = time.perf_counter() - started
    click.echo(
        f"      wrote {data.events:,} events to {_shown(data.path)} "
        f"({data.start:%Y-%m-%d} to {data.end:%Y-%m-%d}, {elapsed:.1f}s)"
    )


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _rounded(value: object) -> object:
    """A value as a person reads it: floats to two decimals, the rest as is."""
    return round(value, 2) if isinstance(value, float) else value


def _indent(text: str) -> str:
    return "\n".join(f"      {line}" for line in text.splitlines())
