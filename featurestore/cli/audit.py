"""The `audit` command: every stored push, who made it and how."""

from __future__ import annotations

import json
from pathlib import Path

import click

from featurestore.cli.group import main, registry_option, table
from featurestore.offline.push_audit import UNKNOWN, PushRecord
from featurestore.store import FeatureStore


@main.command()
@registry_option
@click.option("--source", default=None, metavar="S", help="Only pushes to this source.")
@click.option("--since", default=None, metavar="T",
              help="Only pushes at or after this time (ISO-8601, naive means UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def audit(registry: Path, source: str | None, since: str | None, as_json: bool) -> None:
    """List the stored pushes, oldest first: time, source, rows, how each came (http,
    sdk, cli), and for HTTP the token's name and the client's address.

    Read from the pushed segments themselves, so it needs no lock on the offline file;
    pushes stored before audit records existed show `unknown`.
    """
    store = FeatureStore(registry)
    try:
        records = store.push_audit(source=source, since=since)
    finally:
        store.close()
    if as_json:
        for record in records:
            click.echo(json.dumps(record.as_json()))
        return
    click.echo(describe_audit(records))


def describe_audit(records: list[PushRecord]) -> str:
    """The pushes as a table (a sentence when there is none)."""
    if not records:
        return "no pushes stored"
    unknown = [record.via == UNKNOWN for record in records]
    return table([
        ("time", [record.time.isoformat(timespec="seconds") for record in records]),
        ("source", [record.source for record in records]),
        ("rows", [f"{record.rows:,}" for record in records]),
        ("via", [record.via for record in records]),
        ("token", [UNKNOWN if old else record.token or "-"
                   for record, old in zip(records, unknown, strict=True)]),
        ("client", [UNKNOWN if old else record.client or "-"
                    for record, old in zip(records, unknown, strict=True)]),
    ])
