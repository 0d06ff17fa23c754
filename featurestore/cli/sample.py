"""Sample data: the generate command, and what the demo shares with it."""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from featurestore.cli.group import main, registry_option, shown
from featurestore.errors import FeatureStoreError
from featurestore.store import FeatureStore

if TYPE_CHECKING:
    from featurestore.sample_data import SampleData

SAMPLE_SOURCE = "transactions"


def size_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that size the sample data."""
    options = [
        click.option("--events", default=200_000, show_default=True, type=click.IntRange(1),
                     help="Number of transactions to generate."),
        click.option("--users", default=2_000, show_default=True, type=click.IntRange(1),
                     help="Number of distinct users (user_id 1..N)."),
        click.option("--days", default=90, show_default=True, type=click.IntRange(1),
                     help="Days the transactions span."),
        click.option("--seed", default=0, show_default=True, type=int,
                     help="Random seed: the same seed writes the same data."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@registry_option
@size_options
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
    target = out if out is not None else sample_path(FeatureStore(registry))
    generate_sample(target, events, users, days, seed)


def sample_path(store: FeatureStore) -> Path:
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


def generate_sample(target: Path, events: int, users: int, days: int, seed: int
                    ) -> SampleData:
    """Write sample transactions to `target`, with progress; return what was written."""
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
        f"      wrote {data.events:,} events to {shown(data.path)} "
        f"({data.start:%Y-%m-%d} to {data.end:%Y-%m-%d}, {elapsed:.1f}s)"
    )
    return data
