"""Commands that compute features: materialize, training-set, snapshot."""

from __future__ import annotations

import time
from pathlib import Path

import click

from featurestore.cli.group import main, registry_option, shown
from featurestore.progress import MaterializeProgress
from featurestore.store import FeatureStore
from featurestore.table_files import check_table_path, read_table_file, write_table_file

OUT_HELP = ("Output file, by extension: .parquet, .csv (times as ISO-8601 with +00:00), "
            ".json/.jsonl (JSON lines), .arrow or .feather (Arrow IPC).")


@main.command()
@registry_option
@click.option("--end", default=None, help="Process events before this time (ISO-8601, UTC); "
              "default now.")
@click.option("--full", is_flag=True, help="Rebuild from all events instead of only new ones.")
def materialize(registry: Path, end: str | None, full: bool) -> None:
    """Build offline tables from events before --end and load the online store."""
    store = FeatureStore(registry)
    with MaterializeProgress() as progress:
        result = store.materialize(end=end, full=full, progress=progress.update)
    click.echo(result.render())


@main.command(name="training-set")
@registry_option
@click.option("--spine", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Spine file by extension (.parquet, .csv, .json/.jsonl, .arrow, .feather): "
              "entity keys, a timestamp, anything else.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help=OUT_HELP)
@click.option("--features", "features", multiple=True, metavar="REF",
              help="'view:feature' or a service name; repeat, or separate with commas.")
@click.option("--service", default=None, help="A service name (instead of --features).")
@click.option("--timestamp", default="event_ts", show_default=True,
              help="The spine's time column.")
@click.option("--full-names", is_flag=True, help="Name feature columns view__feature.")
def training_set(registry: Path, spine: Path, out: Path, features: tuple[str, ...],
                 service: str | None, timestamp: str, full_names: bool) -> None:
    """Build a point-in-time training set: the spine with feature columns appended."""
    check_table_path(out)
    store = FeatureStore(registry)
    references = [ref.strip() for refs in features for ref in refs.split(",") if ref.strip()]
    started = time.perf_counter()
    rows = read_table_file(spine)
    table = store.get_training_set(rows, features=references or None, service=service,
                                   timestamp=timestamp, full_names=full_names, output="arrow")
    write_table_file(table, out)
    click.echo(f"wrote {table.num_rows:,} rows with {table.num_columns - rows.num_columns} "
               f"feature columns to {shown(out)} ({time.perf_counter() - started:.1f}s)")


@main.command()
@registry_option
@click.option("--at", "at", required=True, metavar="T",
              help="Time of the features (ISO-8601; UTC unless it has an offset).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help=OUT_HELP)
@click.option("--entity", default=None,
              help="Entity to score (needed when feature views use several).")
@click.option("--full-names", is_flag=True, help="Name feature columns view__feature.")
def snapshot(registry: Path, at: str, out: Path, entity: str | None, full_names: bool) -> None:
    """Write every entity's features at time T (batch scoring), from raw events."""
    check_table_path(out)
    store = FeatureStore(registry)
    started = time.perf_counter()
    table = store.snapshot(at, entity=entity, full_names=full_names, output="arrow")
    write_table_file(table, out)
    click.echo(f"wrote {table.num_rows:,} entities to {shown(out)} "
               f"({time.perf_counter() - started:.1f}s)")
