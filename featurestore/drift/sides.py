"""The two sides of a drift comparison, named as on the command line, read into profiles.

    NAME or FILE           a saved training set, or a table file (`table_files`); a file
                           that exists wins over a saved set of the same name
    fit:ID                 the profiles a fit kept of its service's features (an id, a
                           unique prefix, or "latest": the newest fit of any service;
                           `fit:SERVICE:ID` picks among one service's fits); baseline only
    served:DURATION        the values the server logged in the last DURATION (`24h`)
    window:START..END      each event of the features' sources with START <= time < END,
                           its features computed point in time (`get_training_set`)

A side is read for the features asked for (None: every registry feature it holds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.compilation import source_spec
from featurestore.drift.feature_names import FeatureNames, Ref
from featurestore.drift.profiles import Profile, profile_column, profile_of_summary, profile_values
from featurestore.drift.served_values import read_served_values
from featurestore.errors import InputError
from featurestore.fits.artifacts import FitArtifact, UnknownFitError, find_fit, list_fits
from featurestore.offline.saved_sets import read_manifest, set_dir
from featurestore.offline.sources import (
    fetch_table,
    quote_identifier,
    source_errors,
    source_relation,
)
from featurestore.offline.training import build_training_set, with_connection
from featurestore.registry.durations import DurationSyntaxError, parse_duration
from featurestore.serving.served_log import served_log_dir
from featurestore.table_files import FORMATS, read_table_file
from featurestore.times import TIME_EXAMPLE, format_micros, now_micros, to_micros
from transforms.aggregations import LIST_VALUED

if TYPE_CHECKING:
    from featurestore.context import StoreContext


@dataclass(frozen=True)
class Side:
    """One side of a comparison.

    Attributes:
        description: what it is, for the report (`training set 'jan' (300 rows)`).
        profiles: feature → its profile, in the side's column order.
        left_out: features asked for that this kind of side cannot hold → why.
    """

    description: str
    profiles: dict[Ref, Profile]
    left_out: dict[Ref, str] = field(default_factory=dict)


def read_side(store: StoreContext, spec: str, wanted: Sequence[Ref] | None,
              names: FeatureNames, role: str) -> Side:
    """Read the side `spec` names (module docstring) for the `wanted` features.

    Args:
        role: "baseline" or "current", for messages; a fit is a baseline only.

    Raises:
        InputError: a side that cannot be read, named with what was wrong.
    """
    kind, _, rest = spec.partition(":")
    if kind == "fit" and rest:
        if role != "baseline":
            raise InputError(f"{role} {spec}: a fit keeps only a summary of its training "
                             "set (quantiles, frequent values); use it as the baseline")
        return _fit_side(store, rest, wanted)
    if kind == "served" and rest:
        return _served_side(store, rest, wanted, names)
    if kind == "window" and rest:
        return _window_side(store, rest, wanted, names)
    return _table_side(store, spec, wanted, names)


def _table_side(store: StoreContext, spec: str, wanted: Sequence[Ref] | None,
                names: FeatureNames) -> Side:
    path = Path(spec)
    if path.is_file():
        table = read_table_file(path)
        return Side(f"file {spec} ({table.num_rows:,} rows)", _profiles(table, wanted, names))
    if path.suffix.lower() in FORMATS or "/" in spec:
        raise InputError(f"file not found: {spec} (nor a saved training set of that name)")
    manifest = read_manifest(store, spec)
    table = pq.read_table(set_dir(store.offline_path, spec) / manifest["output"]["file"])
    return Side(f"training set '{spec}' ({table.num_rows:,} rows)",
                _profiles(table, wanted, names))


def _profiles(table: pa.Table, wanted: Sequence[Ref] | None,
              names: FeatureNames) -> dict[Ref, Profile]:
    found: dict[Ref, Profile] = {}
    for column in table.column_names:
        ref = names.of_column(column)
        if wanted is None and pa.types.is_list(table.schema.field(column).type):
            continue  # list features (last_n, top_k, ...): naming one is an error
        if ref is not None and ref not in found and (wanted is None or ref in wanted):
            found[ref] = profile_column(column, table.column(column))
    return found


def _fit_side(store: StoreContext, fit: str, wanted: Sequence[Ref] | None) -> Side:
    artifact = _find_fit(store, fit)
    if not artifact.profiles:
        raise InputError(f"fit {artifact.id} of service '{artifact.service}' was stored before "
                         "fits kept profiles of their features: fit the service again "
                         f"(`featurestore fit --service {artifact.service} --spine FILE`)")
    profiles = {}
    for reference, stored in artifact.profiles.items():
        view, feature = reference.split(":", 1)
        if wanted is None or (view, feature) in wanted:
            profiles[view, feature] = profile_of_summary(stored)  # type: ignore[arg-type]
    return Side(f"fit {artifact.id} of service {artifact.service} ({artifact.rows:,} rows)",
                profiles)


def _find_fit(store: StoreContext, fit: str) -> FitArtifact:
    """A fit by `ID`, a unique prefix, "latest", or `SERVICE:ID` (module docstring)."""
    database = store.offline_database()
    if ":" in fit:
        service, fit_id = fit.split(":", 1)
        return find_fit(database, service, fit_id)
    fits = list_fits(database)
    if not fits:
        raise UnknownFitError("no fit is stored: run `featurestore fit --service SERVICE "
                              "--spine FILE` first")
    if fit == "latest":
        return max(fits, key=lambda artifact: artifact.created_at)
    matches = [artifact for artifact in fits if artifact.id.startswith(fit)]
    if len(matches) != 1:
        problem = "no" if not matches else "more than one"
        known = ", ".join(artifact.id for artifact in fits[:5])
        raise UnknownFitError(f"{problem} fit has id '{fit}' (fits, newest first: {known}); "
                              "`featurestore list fits` lists them")
    return matches[0]


def _served_side(store: StoreContext, duration: str, wanted: Sequence[Ref] | None,
                 names: FeatureNames) -> Side:
    try:
        length = parse_duration(duration)
    except DurationSyntaxError as error:
        raise InputError(f"served:{duration}: {error}") from None
    end = now_micros()
    directory = served_log_dir(store.offline_path)
    served = read_served_values(directory, end - length, end + 1)
    if served.rows == 0:
        raise InputError(f"served:{duration}: no lookups were logged in the last {duration} "
                         f"(in {directory}); turn logging on with `serving: "
                         "{log_sample_rate: 0.1}` or `featurestore serve --log-sample-rate`")
    profiles: dict[Ref, Profile] = {}
    for column, values in served.columns.items():
        ref = names.of_column(column)
        if wanted is None and any(isinstance(value, list) for value in values):
            continue  # list features (last_n, top_k, ...): naming one is an error
        if ref is not None and ref not in profiles and (wanted is None or ref in wanted):
            profiles[ref] = profile_values(column, values)
    return Side(f"values served in the last {duration} ({served.rows:,} rows logged in "
                f"{directory})", profiles)


def _window_side(store: StoreContext, window: str, wanted: Sequence[Ref] | None,
                 names: FeatureNames) -> Side:
    start, end = _window_bounds(window)
    registry = store.registry
    refs = list(wanted) if wanted is not None else [
        (view, feature) for view, definition in registry.feature_views.items()
        for feature in definition.features]
    # Request features read request fields that events do not carry.
    left_out = {ref: "a request feature: events carry no request fields"
                for ref in refs if ref[0] not in registry.feature_views}
    if wanted is None:
        left_out.update((ref, "a list feature: drift compares numbers and categories")
                        for ref in refs if ref[0] in registry.feature_views
                        and registry.feature_views[ref[0]].features[ref[1]].agg in LIST_VALUED)
        refs = [ref for ref in refs if ref not in left_out]
    groups: dict[tuple[str, str], list[Ref]] = {}
    for view, feature in refs:
        if view in registry.feature_views:
            definition = registry.feature_views[view]
            groups.setdefault((definition.source, definition.entity), []).append((view, feature))
    profiles: dict[Ref, Profile] = {}
    events = 0
    for (source, entity), members in groups.items():
        spine = _window_spine(store, source, registry.entities[entity].keys, start, end)
        if spine.num_rows == 0:
            raise InputError(f"window:{window}: source '{source}' has no events from "
                             f"{format_micros(start)} to {format_micros(end)}")
        events += spine.num_rows
        table = build_training_set(store, spine, features=[f"{v}:{f}" for v, f in members],
                                   timestamp=registry.sources[source].timestamp,
                                   full_names=True, output="arrow")
        for view, feature in members:
            column = f"{view}__{feature}"
            profiles[view, feature] = profile_column(column, table.column(column))
    return Side(f"window {format_micros(start)}..{format_micros(end)} ({events:,} events)",
                profiles, left_out)


def _window_bounds(window: str) -> tuple[int, int]:
    start_text, separator, end_text = window.partition("..")
    if not separator or not start_text or not end_text:
        raise InputError(f"window:{window}: expected window:START..END with ISO times or "
                         "dates (window:2024-03-01..2024-03-08)")
    bounds = []
    for which, text in (("start", start_text), ("end", end_text)):
        try:
            bounds.append(to_micros(text))
        except InputError:
            raise InputError(f"window:{window}: the {which} '{text}' is not a time: use an "
                             f"ISO-8601 date or time such as 2024-03-31 or "
                             f"{TIME_EXAMPLE}") from None
    start, end = bounds
    if start >= end:
        raise InputError(f"window:{window}: the start is not before the end")
    return start, end


def _window_spine(store: StoreContext, source: str, keys: Sequence[str], start: int,
                  end: int) -> pa.Table:
    """Every event of `source` in [start, end): its entity keys and time, time-ordered."""
    spec = source_spec(store.registry, source, store.offline_path)
    column = quote_identifier(spec.timestamp)
    selected = ", ".join(quote_identifier(key) for key in [*keys, spec.timestamp])
    sql = (f"SELECT {selected} FROM {source_relation(spec, store.base_dir)} "
           f"WHERE {column} >= make_timestamp($start) AND {column} < make_timestamp($end) "
           f"ORDER BY {column}")
    views = [view for view, definition in store.registry.feature_views.items()
             if definition.source == source]

    def read(con: object) -> pa.Table:
        with source_errors(spec):
            return fetch_table(con, sql, {"start": start, "end": end})  # type: ignore[arg-type]

    return with_connection(store, views, read)
