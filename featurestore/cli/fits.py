"""Commands of fitted transforms: fit and pin-fit (`list fits` lists them)."""

from __future__ import annotations

from pathlib import Path

import click

from featurestore.cli.group import main, registry_option
from featurestore.store import FeatureStore
from featurestore.table_files import read_table_file


@main.command()
@registry_option
@click.option("--service", required=True, help="A service that declares transforms.")
@click.option("--spine", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Spine file by extension (.parquet, .csv, .json/.jsonl, .arrow, .feather): "
              "entity keys, a timestamp, request fields.")
@click.option("--timestamp", default="event_ts", show_default=True,
              help="The spine's time column.")
@click.option("--pin/--no-pin", default=None,
              help="Serve this fit from now on (--pin) or not (--no-pin); by default only a "
              "service's first fit is pinned.")
def fit(registry: Path, service: str, spine: Path, timestamp: str, pin: bool | None) -> None:
    """Fit a service's transforms on the training set of a spine and store the frozen
    statistics (one pass; exact quantiles)."""
    store = FeatureStore(registry)
    result = store.fit(service, read_table_file(spine), timestamp=timestamp, pin=pin)
    click.echo(result.render())


@main.command(name="pin-fit")
@registry_option
@click.argument("service")
@click.argument("fit_id", metavar="FIT", default="latest")
def pin_fit(registry: Path, service: str, fit_id: str) -> None:
    """Serve FIT (an id, a unique prefix of one, or "latest", the default) for SERVICE's
    transformed lookups from now on; running servers switch within a second."""
    artifact = FeatureStore(registry).pin_fit(service, fit_id)
    click.echo(f"service {service} is now served by fit {artifact.id} "
               f"({artifact.rows:,} rows, created {artifact.created_at:%Y-%m-%d %H:%M:%S} UTC)")
