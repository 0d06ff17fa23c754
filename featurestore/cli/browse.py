"""Commands that show what the registry holds: list and describe."""

from __future__ import annotations

import json
from pathlib import Path

import click

from featurestore.catalog import KINDS, CatalogEntry, parse_tag_filters
from featurestore.cli.group import main, registry_option, table
from featurestore.store import FeatureStore


@main.command(name="list")
@registry_option
@click.argument("kind", type=click.Choice(KINDS), metavar="{" + "|".join(KINDS) + "}")
@click.option("--tag", "tags", multiple=True, metavar="NAME[=VALUE]",
              help="Keep definitions with this tag (any value when VALUE is left out); "
                   "repeat to require several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_command(registry: Path, kind: str, tags: tuple[str, ...], as_json: bool) -> None:
    """List the entities, sources, views, features or services of the registry."""
    entries = FeatureStore(registry).list(kind, parse_tag_filters(tags))
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry.to_dict()))
        return
    if not entries:
        filtered = f" with tags {', '.join(tags)}" if tags else ""
        click.echo(f"no {kind}{filtered}")
        return
    click.echo(_table(entries))


def _table(entries: list[CatalogEntry]) -> str:
    """Name, kind, summary; then tags and owner when any entry has them."""
    columns: list[tuple[str, list[str]]] = [
        ("NAME", [entry.name for entry in entries]),
        ("KIND", [entry.kind for entry in entries]),
        ("WHAT", [entry.summary for entry in entries]),
    ]
    if any(entry.tags for entry in entries):
        columns.append(("TAGS", [",".join(f"{k}={v}" for k, v in entry.tags.items())
                                 for entry in entries]))
    if any(entry.owner for entry in entries):
        columns.append(("OWNER", [entry.owner or "" for entry in entries]))
    return table(columns)


@main.command()
@registry_option
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def describe(registry: Path, name: str, as_json: bool) -> None:
    """Describe a feature view, feature (VIEW:FEATURE), request view, service, entity or
    source: definition, types, window and hop, lineage and last materialization."""
    description = FeatureStore(registry).describe(name)
    click.echo(json.dumps(description.to_dict(), indent=2) if as_json
               else description.render())
