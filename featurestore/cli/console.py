"""The web console command: `featurestore ui`."""

from __future__ import annotations

from pathlib import Path

import click

from featurestore.cli.group import main, registry_option


@main.command()
@registry_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port to listen on.")
def ui(registry: Path, host: str, port: int) -> None:
    """Browse the feature store in a web browser: registry, lineage, freshness, value
    plots and runs (read-only; every asset is served locally)."""
    # Imported here: only this command needs the web stack.
    import uvicorn

    from featurestore.console import create_console_app
    from featurestore.serving.access_log import logging_config

    app = create_console_app(registry)
    followed = app.state.followed.current()
    store = followed.store
    # Compiled (or loaded from the cache) before listening: the first page is then fast.
    store.catalog()
    click.echo(f"console of {store.registry.project} on http://{host}:{port}/ "
               "(read-only; Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_config=logging_config("text", False),
                access_log=False)
