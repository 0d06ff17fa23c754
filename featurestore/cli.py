"""The `featurestore` command line (also `python -m featurestore`).

Commands are thin: each one calls the SDK and prints the result. User errors print one
line each on stderr and exit non-zero (2 for an invalid registry), never a traceback.
"""

from __future__ import annotations

import glob
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from featurestore.errors import FeatureStoreError, RegistryError
from featurestore.progress import MaterializeProgress
from featurestore.sample_data import generate_transactions
from featurestore.store import FeatureStore

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
    click.echo(FeatureStore(registry).apply().render())


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


@main.command(name="compile")
@_registry_option
@click.option("--show", is_flag=True, help="Print the generated kernel source.")
def compile_command(registry: Path, show: bool) -> None:
    """Compile the registry's transform graph (cached on disk) and report it."""
    store = FeatureStore(registry)
    started = time.perf_counter()
    kernels = store.kernels()
    if show:
        click.echo(kernels.source, nl=False)
        return
    click.echo(f"compiled graph {kernels.hash}: {len(kernels.views)} feature views, "
               f"{len(kernels.request_views)} request views "
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
    """Generate the sample data if it is missing, then plan and apply."""
    store = FeatureStore(registry)
    target = _sample_path(store)
    click.echo(f"[1/3] Sample data: {_shown(target)}")
    if target.exists():
        click.echo("      already there; delete it to generate it again.")
    else:
        _generate(target, events, users, days, seed)
    click.echo(f"[2/3] Plan for {_shown(store.registry_path)}:")
    click.echo(_indent(store.plan().render()))
    click.echo(f"[3/3] Apply to {_shown(store.offline_path)}:")
    click.echo(_indent(store.apply().summary()))


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


def _indent(text: str) -> str:
    return "\n".join(f"      {line}" for line in text.splitlines())
