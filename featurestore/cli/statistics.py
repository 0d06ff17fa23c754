"""`featurestore stats`: statistics of a source, a training-set file or a view."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import orjson

from featurestore.cli.group import main, registry_option
from featurestore.errors import InputError
from featurestore.statistics.history import ViewStatisticsRun
from featurestore.store import FeatureStore


@main.command(name="stats")
@registry_option
@click.option("--source", default=None, help="A source's name (pushed events included).")
@click.option("--training-set", "training_set", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="A training-set file by extension: .parquet, .csv, .json/.jsonl, "
              ".arrow or .feather.")
@click.option("--view", default=None,
              help="A feature view: its latest values from the last materialization.")
@click.option("--columns", default=None, metavar="A,B",
              help="Only these columns (features), comma-separated.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option("--history", is_flag=True,
              help="With --view: the statistics each materialization stored, one line per "
              "run (end time; per feature count, null fraction, mean).")
def stats(registry: Path, source: str | None, training_set: Path | None, view: str | None,
          columns: str | None, as_json: bool, history: bool) -> None:
    """Per column: count, nulls, min, max, mean, std (population, ddof 0), quantiles
    p1..p99, a histogram (numbers, times) or top 10 values (strings, booleans) and a
    distinct count, from one pass over the input."""
    names = [name.strip() for name in columns.split(",") if name.strip()] if columns else None
    given = [flag for flag, value in (("--source", source), ("--training-set", training_set),
                                      ("--view", view)) if value is not None]
    if len(given) != 1:
        raise InputError("give exactly one of --source, --training-set or --view "
                         f"(got {', '.join(given) or 'none'})")
    store = FeatureStore(registry)
    if history:
        if view is None:
            raise InputError("--history shows a view's stored statistics: give it with "
                             "--view, not with --source or --training-set")
        _print_history(store, view, names, as_json)
        return
    result = store.stats(source=source, training_set=training_set, view=view, columns=names)
    if as_json:
        click.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(result.render())


def _print_history(store: FeatureStore, view: str, names: list[str] | None,
                   as_json: bool) -> None:
    runs = store.view_statistics_history(view)
    if names:
        known = {column.name for run in runs for column in run.statistics.columns}
        for name in names:
            if name not in known:
                raise InputError(f"view '{view}' has no stored statistics of '{name}'; "
                                 f"features: {', '.join(sorted(known))}")
        runs = [_only(run, names) for run in runs]
    if as_json:
        click.echo(orjson.dumps([run.to_dict() for run in runs],
                                option=orjson.OPT_INDENT_2).decode())
        return
    runs_text = "1 materialization" if len(runs) == 1 else f"{len(runs)} materializations"
    click.echo(f"statistics of view '{view}' over {runs_text} "
               "(end time; per feature count, null fraction, mean):")
    for run in runs:
        click.echo(f"  {run.render()}")


def _only(run: ViewStatisticsRun, names: list[str]) -> ViewStatisticsRun:
    """The run with only the statistics of `names`."""
    statistics = run.statistics
    kept = tuple(column for column in statistics.columns if column.name in names)
    return dataclasses.replace(run, statistics=dataclasses.replace(statistics, columns=kept))
