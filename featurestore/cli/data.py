"""Commands that compute features: materialize, training-set, snapshot."""

from __future__ import annotations

import time
from pathlib import Path

import click

from featurestore.cli.group import EXIT_FAILURE, main, registry_option, shown
from featurestore.progress import MaterializeProgress
from featurestore.store import FeatureStore
from featurestore.table_files import check_table_path, read_table_file, write_table_file

engine_option = click.option(
    "--engine", default=None, metavar="ENGINE",
    help="Where partitions run: 'local' or 'dask://host:port' (a Dask scheduler); "
    "default $FEATURESTORE_ENGINE, else the registry's store.engine, else local.")

OUT_HELP = ("Output file, by extension: .parquet, .csv (times as ISO-8601 with +00:00), "
            ".json/.jsonl (JSON lines), .arrow or .feather (Arrow IPC).")


@main.command()
@registry_option
@click.option("--end", default=None, help="Process events before this time (ISO-8601, UTC); "
              "default now.")
@click.option("--full", is_flag=True, help="Rebuild from all events instead of only new ones.")
@engine_option
def materialize(registry: Path, end: str | None, full: bool, engine: str | None) -> None:
    """Build offline tables from events before --end and load the online store."""
    store = FeatureStore(registry)
    with MaterializeProgress() as progress:
        result = store.materialize(end=end, full=full, progress=progress.update,
                                   engine=engine)
    click.echo(result.render())


@main.command(name="training-set")
@registry_option
@click.option("--spine", type=click.Path(dir_okay=False, path_type=Path),
              help="Spine file by extension (.parquet, .csv, .json/.jsonl, .arrow, .feather): "
              "entity keys, a timestamp, anything else.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help=OUT_HELP + " Optional with --name.")
@click.option("--features", "features", multiple=True, metavar="REF",
              help="'view:feature' or a service name; repeat, or separate with commas.")
@click.option("--service", default=None, help="A service name (instead of --features).")
@click.option("--timestamp", default="event_ts", show_default=True,
              help="The spine's time column.")
@click.option("--full-names", is_flag=True, help="Name feature columns view__feature.")
@click.option("--name", default=None,
              help="Also save the set under this name beside the offline file, with its "
              "spine and a manifest of its inputs (needs the registry applied).")
@click.option("--overwrite", is_flag=True, help="Replace a saved set of the same --name.")
@click.option("--reproduce", default=None, metavar="NAME",
              help="Build the saved set NAME again and compare it byte for byte; exit 1 "
              "naming what changed when it differs.")
@click.option("--transformed", is_flag=True,
              help="With --service: append its transformed columns, from the pinned fit "
              "(or --fit).")
@click.option("--fit", "fit_id", default=None, metavar="FIT",
              help="With --transformed: a fit id (or unique prefix) or 'latest'.")
@engine_option
@click.pass_context
def training_set(ctx: click.Context, registry: Path, spine: Path | None, out: Path | None,
                 features: tuple[str, ...], service: str | None, timestamp: str,
                 full_names: bool, name: str | None, overwrite: bool,
                 reproduce: str | None, transformed: bool, fit_id: str | None,
                 engine: str | None) -> None:
    """Build a point-in-time training set: the spine with feature columns appended."""
    if engine is not None and (name is not None or reproduce is not None):
        raise click.UsageError("--engine does not apply with --name or --reproduce: set "
                               "FEATURESTORE_ENGINE for saved sets")
    if reproduce is not None:
        if spine or out or name or features or service:
            raise click.UsageError("--reproduce takes no --spine, --out, --name, --features "
                                   "or --service: the saved set's own are used")
        result = FeatureStore(registry).reproduce_training_set(reproduce)
        click.echo(result.render())
        if not result.identical:
            ctx.exit(EXIT_FAILURE)
        return
    if spine is None:
        raise click.UsageError("Missing option '--spine' (or use --reproduce NAME).")
    if out is None and name is None:
        raise click.UsageError("Missing option '--out' (optional only with --name).")
    if out is not None:
        check_table_path(out)
    store = FeatureStore(registry)
    references = [ref.strip() for refs in features for ref in refs.split(",") if ref.strip()]
    started = time.perf_counter()
    rows = read_table_file(spine)
    if name is not None:
        saved = store.save_training_set(name, rows, features=references or None,
                                        service=service, timestamp=timestamp,
                                        full_names=full_names, overwrite=overwrite,
                                        transformed=transformed, fit=fit_id)
        table = saved.table
        click.echo(saved.render())
        if out is not None:
            saved.copy_to(out)
    else:
        table = store.get_training_set(rows, features=references or None, service=service,
                                       timestamp=timestamp, full_names=full_names,
                                       output="arrow", transformed=transformed, fit=fit_id,
                                       engine=engine)
        write_table_file(table, out)
    if out is not None:
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
@engine_option
def snapshot(registry: Path, at: str, out: Path, entity: str | None, full_names: bool,
             engine: str | None) -> None:
    """Write every entity's features at time T (batch scoring), from raw events."""
    check_table_path(out)
    store = FeatureStore(registry)
    started = time.perf_counter()
    table = store.snapshot(at, entity=entity, full_names=full_names, output="arrow",
                           engine=engine)
    write_table_file(table, out)
    click.echo(f"wrote {table.num_rows:,} entities to {shown(out)} "
               f"({time.perf_counter() - started:.1f}s)")
