"""The command group every `featurestore` command hangs on, and what commands share.

Commands are thin: each one calls the SDK and prints the result. User errors print one
line each on stderr and exit non-zero (2 for an invalid registry), never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from featurestore.context import REGISTRY_ENV
from featurestore.errors import FeatureStoreError, RegistryError

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


def registry_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--registry",
        "registry",
        default="registry.yaml",
        show_default=True,
        envvar=REGISTRY_ENV,
        type=click.Path(path_type=Path),
        help=f"Registry file, or a folder holding registry.yaml (env {REGISTRY_ENV}).",
    )(command)


def _installed_version() -> str:
    try:
        return version("featurestore")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_installed_version(), "--version", "-V", prog_name="featurestore",
                      message="%(prog)s %(version)s", help="Print the version and exit.")
def main() -> None:
    """Feature definitions in registry.yaml, computed the same way for training and serving."""


def to_stderr(line: str) -> None:
    """Progress lines go to stderr, keeping stdout for results."""
    click.echo(line, err=True)


def shown(path: Path) -> str:
    """A path relative to the working directory when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def indent(text: str) -> str:
    """Text indented under a numbered step."""
    return "\n".join(f"      {line}" for line in text.splitlines())


def table(columns: list[tuple[str, list[str]]]) -> str:
    """Columns of text, each a title and its values, aligned under their titles."""
    widths = [max(len(title), *(len(value) for value in values)) for title, values in columns]
    lines = ["  ".join(title.ljust(width) for (title, _), width in zip(columns, widths,
                                                                      strict=True)).rstrip()]
    for row in zip(*(values for _, values in columns), strict=True):
        lines.append("  ".join(value.ljust(width)
                               for value, width in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
