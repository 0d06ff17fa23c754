"""Commands about the definitions: plan, apply, compile."""

from __future__ import annotations

import time
from pathlib import Path

import click

from featurestore.cli.group import main, registry_option, to_stderr
from featurestore.store import FeatureStore


@main.command()
@registry_option
def plan(registry: Path) -> None:
    """Show what `apply` would change."""
    click.echo(FeatureStore(registry).plan().render())


@main.command()
@registry_option
def apply(registry: Path) -> None:
    """Validate the registry and record it as the applied version."""
    click.echo(FeatureStore(registry).apply(progress=to_stderr).render())


@main.command(name="compile")
@registry_option
@click.option("--show", is_flag=True, help="Print the generated kernel source.")
def compile_command(registry: Path, show: bool) -> None:
    """Compile the registry's transform graph (cached on disk) and report it."""
    store = FeatureStore(registry)
    started = time.perf_counter()
    kernels = store.kernels()
    kernels.compile_missing(to_stderr)
    if show:
        click.echo(kernels.source, nl=False)
        return
    click.echo(f"compiled graph {kernels.hash}: {len(kernels.views)} feature views, "
               f"{len(kernels.request_views)} request views "
               f"({time.perf_counter() - started:.1f}s)")
