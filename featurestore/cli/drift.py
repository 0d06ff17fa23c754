"""The drift command: compare feature distributions, exit 1 when a feature drifted."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from featurestore.cli.group import EXIT_FAILURE, main, registry_option
from featurestore.store import FeatureStore


@main.command()
@registry_option
@click.option("--baseline", required=True, metavar="TRAINING_SET|FILE|fit:ID",
              help="A saved training set, a table file (.parquet, .csv, .json/.jsonl, "
              ".arrow, .feather), or fit:ID (a fit's profiles; an id, a unique prefix, "
              "or latest).")
@click.option("--current", required=True,
              metavar="TRAINING_SET|FILE|served:DURATION|window:START..END",
              help="A saved training set, a table file, served:24h (the values served in "
              "the last 24h), or window:2024-03-01..2024-03-08 (the features at each "
              "event of that window).")
@click.option("--features", "features", multiple=True, metavar="NAMES",
              help="Features to compare (names, view:feature or services); repeat, or "
              "separate with commas. Default: every feature on both sides.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def drift(ctx: click.Context, registry: Path, baseline: str, current: str,
          features: tuple[str, ...], as_json: bool) -> None:
    """Compare each feature's distribution with a baseline's (PSI and KS for numbers,
    L-infinity and Jensen-Shannon for categories); exit 1 when one is over the
    registry's `drift:` thresholds."""
    names = [name.strip() for group in features for name in group.split(",") if name.strip()]
    report = FeatureStore(registry).drift(baseline, current, features=names or None)
    if as_json:
        click.echo(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(report.render())
    if report.drifted:
        ctx.exit(EXIT_FAILURE)
