"""The init command: a small working project to start from."""

from __future__ import annotations

import keyword
import re
from datetime import timedelta
from pathlib import Path

import click

from featurestore.cli.group import main, shown
from featurestore.cli.sample import generate_sample
from featurestore.errors import InputError
from featurestore.project_template import GITIGNORE, README_SECTION, REGISTRY
from featurestore.registry import REGISTRY_FILE_NAME


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--project", default=None,
              help="Project name [default: the folder's name, made a valid name].")
@click.option("--events", default=20_000, show_default=True, type=click.IntRange(1),
              help="Sample transactions to generate.")
@click.option("--users", default=200, show_default=True, type=click.IntRange(1),
              help="Distinct users in the sample (user_id 1..N).")
@click.option("--days", default=30, show_default=True, type=click.IntRange(1),
              help="Days the sample spans.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Random seed of the sample.")
def init(directory: Path, project: str | None, events: int, users: int, days: int,
         seed: int) -> None:
    """Write a small working project into DIRECTORY (default: here): registry.yaml,
    sample data in data/, and a README section; `featurestore apply` accepts it as is.
    An existing registry.yaml is never overwritten."""
    registry = directory / REGISTRY_FILE_NAME
    if registry.exists():
        raise InputError(f"{shown(registry)} already exists: init writes new projects only "
                         "(choose another folder)")
    name = project if project is not None else project_name(directory)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is None or keyword.iskeyword(name):
        raise InputError(f"--project '{name}' is not a valid name: use letters, digits and "
                         "underscores, not starting with a digit")
    directory.mkdir(parents=True, exist_ok=True)
    click.echo(f"Writing a new project '{name}' to {shown(directory)}:")
    data = generate_sample(directory / "data" / "transactions.parquet", events, users, days,
                           seed)
    registry.write_text(REGISTRY.format(project=name))
    click.echo(f"      wrote {shown(registry)}")
    end = (data.end + timedelta(days=1)).strftime("%Y-%m-%d")
    readme = directory / "README.md"
    section = README_SECTION.format(end=end)
    if readme.exists():
        if "featurestore plan" not in readme.read_text():
            with readme.open("a") as handle:
                handle.write(f"\n{section}")
            click.echo(f"      added a section to {shown(readme)}")
    else:
        readme.write_text(f"# {name}\n\n{section}")
        click.echo(f"      wrote {shown(readme)}")
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text(GITIGNORE)
    where = "" if directory.resolve() == Path.cwd().resolve() else f"cd {shown(directory)} && "
    click.echo(f"Next: {where}featurestore apply && featurestore list features")


def project_name(directory: Path) -> str:
    """A valid project name from a folder name: `my-project` → `my_project`."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", directory.resolve().name).strip("_") or "features"
    return f"p_{name}" if name[0].isdigit() or keyword.iskeyword(name) else name
