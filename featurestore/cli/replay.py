"""`featurestore replay`: the served-value log recomputed by the offline engine."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from featurestore.cli.group import EXIT_FAILURE, main, registry_option
from featurestore.store import FeatureStore


@main.command()
@registry_option
@click.option("--since", default=None, metavar="T",
              help="Only lookups logged at or after this time (ISO-8601, UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def replay(ctx: click.Context, registry: Path, since: str | None, as_json: bool) -> None:
    """Recompute every value the server logged (serve --log-sample-rate) with the
    offline engine and compare exactly; exit 1 on any mismatch."""
    report = FeatureStore(registry).replay(since=since)
    if as_json:
        click.echo(orjson.dumps(report.to_dict(), default=str).decode())
    else:
        click.echo(report.render())
    if not report.ok:
        ctx.exit(EXIT_FAILURE)
