"""Commands about online serving: serve and verify."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Literal

import click

from featurestore.cli.data import engine_option
from featurestore.cli.group import EXIT_FAILURE, main, registry_option, to_stderr
from featurestore.cli.tokens import describe_auth
from featurestore.context import AUTH_ENV
from featurestore.credentials import redact_url
from featurestore.errors import FeatureStoreError
from featurestore.store import FeatureStore


@main.command()
@registry_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Server processes sharing the port (each opens its own clients).")
@click.option("--access-log", is_flag=True,
              help="Log one line per request: method, path, status, duration, client.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True,
              help="Log lines as text, or as one JSON object each (for log collectors).")
@click.option("--shutdown-timeout", default=20.0, show_default=True,
              type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="On SIGTERM or Ctrl-C, longest wait for requests in flight.")
@click.option("--auth", is_flag=True, envvar=AUTH_ENV,
              help="Require a bearer token (`featurestore token create`) on every endpoint "
                   f"but /health and the docs, as `serving: {{auth: true}}` does (env "
                   f"{AUTH_ENV}=1).")
@click.option("--ssl-certfile", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="Serve HTTPS with this certificate (PEM; with --ssl-keyfile).")
@click.option("--ssl-keyfile", type=click.Path(path_type=Path), default=None, metavar="FILE",
              help="The certificate's private key (PEM, not encrypted; with --ssl-certfile).")
@click.option("--limit-concurrency", type=click.IntRange(1), default=None, metavar="N",
              help="Most connections and requests at once per process; past it new "
                   "requests get 503. Default: no cap.")
@click.option("--timeout-keep-alive", default=5.0, show_default=True,
              type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Close a keep-alive connection after this long without a request.")
@click.option("--log-sample-rate", type=click.FloatRange(0, 1), default=None, metavar="RATE",
              help="Share of lookups whose served values are logged for `featurestore "
                   "replay`, from 0 (off) to 1 (all); default: the registry's "
                   "serving.log_sample_rate (0).")
@click.option("--ui", is_flag=True,
              help="Also serve the read-only web console at /ui (as `featurestore ui` does "
                   "on its own port); with --auth it needs a token with the read scope.")
def serve(registry: Path, host: str, port: int, workers: int, access_log: bool,
          log_format: Literal["text", "json"], shutdown_timeout: float, auth: bool,
          ssl_certfile: Path | None, ssl_keyfile: Path | None, limit_concurrency: int | None,
          timeout_keep_alive: float, log_sample_rate: float | None, ui: bool) -> None:
    """Serve online features over HTTP or HTTPS (OpenAPI at /docs); SIGTERM or Ctrl-C
    stops it after the requests in flight."""
    # Imported here: only this command needs the web stack.
    from featurestore.serving.connections import Connections
    from featurestore.serving.server import serve as run_server

    # Checked first: a bad certificate is one line, before anything loads or listens.
    connections = Connections(ssl_certfile, ssl_keyfile, limit_concurrency, timeout_keep_alive)
    store = FeatureStore(registry)
    line = describe_server(store.registry.project, store.online, host, port,
                           connections.scheme)
    click.echo(line if workers == 1 else f"{line}, {workers} worker processes")
    if ui:
        click.echo(f"web console on {connections.scheme}://{host}:{port}/ui/")
    _echo_auth(store, auth or store.registry.serving.auth)
    run_server(store, host=host, port=port, access_log=access_log, log_format=log_format,
               workers=workers, shutdown_timeout=shutdown_timeout, auth=auth,
               connections=connections, log_sample_rate=log_sample_rate, ui=ui)


def _echo_auth(store: FeatureStore, auth: bool) -> None:
    """Print whether tokens are required; warn when they are and none is active."""
    active = None
    # The server reads the tokens itself; here the count is only shown.
    with contextlib.suppress(FeatureStoreError):
        active = sum(info.active for info in store.list_tokens()) if auth else None
    click.echo(describe_auth(auth, active, store.registry.serving.rate_limit))
    if active == 0:
        to_stderr("warning: no token is active, so every request but /health and the docs "
                  "gets 401: create one with `featurestore token create NAME --scope read`")


def describe_server(project: str, online: str, host: str, port: int,
                    scheme: str = "http") -> str:
    """The line `serve` prints at startup; the online store is shown without its password.

    Args:
        project: the project served.
        online: the online store setting ("local" or a Redis URL).
        host: the interface the server listens on.
        port: its TCP port.
        scheme: "http", or "https" when it serves TLS.
    """
    return (f"serving {project} from the {redact_url(online)} online store "
            f"on {scheme}://{host}:{port} (OpenAPI at /docs)")


class _EntityCount(click.ParamType):
    """A positive number of entities, or `all`."""

    name = "N|all"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int | str:
        if value == "all" or (isinstance(value, int) and value >= 1):
            return value
        try:
            count = int(value)
        except (TypeError, ValueError):
            count = 0
        if count < 1:
            self.fail(f"expected a positive number or 'all', got {value!r}", param, ctx)
        return count


@main.command()
@registry_option
@click.option("--entities", default="100", show_default=True, type=_EntityCount(),
              metavar="N|all",
              help="Entities sampled per feature view, or 'all' for every entity with "
                   "online state.")
@click.option("--at", "times", multiple=True, metavar="T",
              help="Lookup time (ISO-8601, UTC), repeatable; default: the materialization "
                   "end and a few later times.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sample.")
@engine_option
@click.pass_context
def verify(ctx: click.Context, registry: Path, entities: int | str, times: tuple[str, ...],
           seed: int, engine: str | None) -> None:
    """Check that online values equal offline ones for sampled (or all) entities; exit 1
    on any difference, or when a view is stale."""
    report = FeatureStore(registry).verify(entities=entities, at=list(times) or None, seed=seed,
                                           engine=engine)
    click.echo(report.render())
    if not report.ok:
        ctx.exit(EXIT_FAILURE)
