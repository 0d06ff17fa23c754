"""The `validate` command and the `quarantine` group: expectations on demand, and the
rows materializations kept out."""

from __future__ import annotations

import json
from pathlib import Path

import click

from featurestore.cli.group import EXIT_FAILURE, main, registry_option, table
from featurestore.store import FeatureStore


@main.command()
@registry_option
@click.option("--source", default=None, metavar="S", help="Only this source's expectations.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per rule.")
@click.option("--strict", is_flag=True, help="Exit 1 when a warn rule is broken too.")
@click.pass_context
def validate(ctx: click.Context, registry: Path, source: str | None, as_json: bool,
             strict: bool) -> None:
    """Check the expectations now, against all current source rows and the latest
    feature values: one line per rule with its counts. Writes nothing.

    Exits 1 when a rule whose on_fail is fail or quarantine is broken (with --strict,
    any broken rule), so it can gate a CI job.
    """
    store = FeatureStore(registry)
    try:
        report = store.validate(source=source)
    finally:
        store.close()
    if as_json:
        for verdict in report.verdicts:
            click.echo(json.dumps(verdict.as_json()))
    else:
        click.echo(report.render())
    if report.failed(strict=strict):
        ctx.exit(EXIT_FAILURE)


@main.group()
def quarantine() -> None:
    """Rows kept out of features by `on_fail: quarantine` expectations."""


@quarantine.command("list")
@registry_option
@click.option("--source", default=None, metavar="S", help="Only this source.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_quarantine(registry: Path, source: str | None, as_json: bool) -> None:
    """Per source, column and rule: how many rows are quarantined, and the newest run
    that added some."""
    store = FeatureStore(registry)
    try:
        groups = store.quarantine(source=source)
    finally:
        store.close()
    if as_json:
        for group in groups:
            click.echo(json.dumps(group.as_json()))
        return
    if not groups:
        click.echo("no quarantined rows")
        return
    click.echo(table([
        ("source", [group.source for group in groups]),
        ("column", [group.column for group in groups]),
        ("rule", [group.description for group in groups]),
        ("rows", [f"{group.rows:,}" for group in groups]),
        ("newest run", [group.newest_run.isoformat(timespec="seconds") for group in groups]),
    ]))


@quarantine.command("show")
@registry_option
@click.argument("source")
@click.option("--rule", default=None, metavar="R", help="Only rows that broke this rule.")
@click.option("--column", default=None, metavar="C", help="Only rows broken in this column.")
@click.option("--limit", default=None, type=click.IntRange(min=0), metavar="N",
              help="At most N rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def show_quarantine(registry: Path, source: str, rule: str | None, column: str | None,
                    limit: int | None, as_json: bool) -> None:
    """The quarantined rows of SOURCE: the column and rule each broke, its value, and
    the whole row."""
    store = FeatureStore(registry)
    try:
        rows = store.quarantined_rows(source, rule=rule, column=column, limit=limit)
    finally:
        store.close()
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_json()))
        return
    if not rows:
        click.echo(f"no quarantined rows of '{source}'")
        return
    click.echo(table([
        ("column", [row.column for row in rows]),
        ("rule", [row.description for row in rows]),
        ("value", ["null" if row.value is None else row.value for row in rows]),
        ("row", [row.row for row in rows]),
    ]))
