"""Commands about the server's bearer tokens: token create, list and revoke."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from featurestore.cli.group import main, registry_option, table, to_stderr
from featurestore.store import FeatureStore
from featurestore.tokens import SCOPES, TokenInfo


@main.group()
def token() -> None:
    """Bearer tokens for `featurestore serve --auth`: create, list, revoke."""


@token.command()
@registry_option
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, metavar="SCOPE",
              help=f"What the token may do ({', '.join(SCOPES)}: lookups and /registry, "
                   "POST /push, GET /metrics); repeat for several.")
def create(registry: Path, name: str, scopes: tuple[str, ...]) -> None:
    """Create a token named NAME and print it, once: only its hash is kept."""
    created = FeatureStore(registry).create_token(name, scopes)
    # The note on stderr, the token alone on stdout: `TOKEN=$(featurestore token create
    # ...)` captures just the token.
    to_stderr(f"Created token '{name}'. It will not be shown again: store it now (send it "
              "as 'Authorization: Bearer <token>').")
    click.echo(created)


@token.command(name="list")
@registry_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_command(registry: Path, as_json: bool) -> None:
    """List the tokens: name, scopes, created, last used, active or revoked (never the
    token itself)."""
    tokens = FeatureStore(registry).list_tokens()
    if as_json:
        for info in tokens:
            click.echo(json.dumps(_as_dict(info)))
        return
    if not tokens:
        click.echo("no tokens (create one with: featurestore token create NAME --scope read)")
        return
    click.echo(table([
        ("NAME", [info.name for info in tokens]),
        ("SCOPES", [",".join(info.scopes) for info in tokens]),
        ("CREATED", [_shown(info.created_at) for info in tokens]),
        ("LAST USED", [_shown(info.last_used) if info.last_used else "never"
                       for info in tokens]),
        ("STATUS", [f"revoked {_shown(info.revoked_at)}" if info.revoked_at else "active"
                    for info in tokens]),
    ]))


@token.command()
@registry_option
@click.argument("name")
def revoke(registry: Path, name: str) -> None:
    """Revoke the token NAME: running servers refuse it within a few seconds."""
    FeatureStore(registry).revoke_token(name)
    click.echo(f"Revoked token '{name}'; running servers refuse it within a few seconds.")


def describe_auth(auth: bool, active: int | None, rate_limit: int | None = None) -> str:
    """The line `serve` prints about who may call it.

    Args:
        auth: whether bearer tokens are required.
        active: how many tokens are active (None: unknown).
        rate_limit: requests per second per token or client, per process (None: none).
    """
    if auth:
        count = "" if active is None else f", {active} active"
        line = f"auth: on (bearer tokens{count})"
        who = "token"
    else:
        line = ("auth: off: anyone who can reach the port may read and push (turn it on "
                "with --auth or serving: {auth: true})")
        who = "client address"
    if rate_limit is not None:
        line += f"; rate limit: {rate_limit} requests per second per {who} and process"
    return line


def _shown(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _as_dict(info: TokenInfo) -> dict[str, object]:
    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {"name": info.name, "scopes": list(info.scopes), "created": iso(info.created_at),
            "last_used": iso(info.last_used), "status": "active" if info.active else "revoked",
            "revoked": iso(info.revoked_at)}
