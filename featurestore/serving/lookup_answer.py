"""What an online lookup answers: the feature columns in the asked-for shape, and what it
knows about them (per view and entity whether there was online state, its newest event,
the materialization end) with warnings that the values are likely not what was meant.

The metadata has one shape on both paths; times are UTC datetimes, which the HTTP
server writes as ISO-8601 text with an offset:

    {"at": <lookup time>,
     "views": {"user_txn": {"status": ["found", "not_found"],
                            "newest_event": [<time>, None],
                            "materialized_until": <time>}},
     "warnings": ["..."]}

A view is listed when the lookup read its states (a requested feature, or one a
requested request-view feature reads); request views hold no state and are not listed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from featurestore.errors import InputError
from featurestore.offline.arrow_types import ARROW_TYPES
from featurestore.offline.training_output import FeatureColumn, arrow_result, pandas_result
from featurestore.registry.durations import format_duration
from featurestore.times import format_micros
from transforms.spec import ColumnType

if TYPE_CHECKING:
    import pandas as pd

OnlineOutput = Literal["dict", "pandas", "arrow"]
ONLINE_OUTPUTS: tuple[str, ...] = ("dict", "pandas", "arrow")
FOUND = "found"
NOT_FOUND = "not_found"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def check_output(output: object) -> None:
    """Refuse an unknown `output` of `get_online_features`.

    Raises:
        InputError: `output` is not one of ONLINE_OUTPUTS (the message lists them).
    """
    if not isinstance(output, str) or output not in ONLINE_OUTPUTS:
        raise InputError(f"output must be one of {', '.join(ONLINE_OUTPUTS)}, "
                         f"got {output!r}")


@dataclass(frozen=True)
class ViewStates:
    """What one lookup read of one feature view.

    Attributes:
        view: the feature view.
        end_us: its materialization end.
        found: per entity, whether the online store held a state for it.
        newest_us: per entity, the time of its newest event folded into the state
            (None: no state, or states published without newest times).
    """

    view: str
    end_us: int
    found: list[bool]
    newest_us: list[int | None]


@dataclass(frozen=True)
class LookupAnswer:
    """One lookup's answer.

    Attributes:
        features: the columns, as `output` asked (dict of lists, DataFrame or Table).
        warnings: why the values are likely not what was meant (empty when none).
        metadata: the metadata (see the module docstring) when it was asked for.
        fit: the id of the fitted artifact of a transformed lookup (None otherwise).
        at_us: the lookup time used, microseconds (now, when the request gave none).
        state_version: the online version whose states answered (None: no feature
            view was read).
        views: the feature views whose states were read.
    """

    features: dict[str, list] | pd.DataFrame | pa.Table
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    fit: str | None = None
    at_us: int | None = None
    state_version: str | None = None
    views: tuple[str, ...] = ()


def stale_warnings(views: Sequence[ViewStates], windows: Mapping[str, int],
                   at_us: int, at_given: bool) -> list[str]:
    """Warnings for views whose data ended so long before now that every windowed
    feature the lookup computes from them is empty.

    Only a lookup at now (`at` left out) warns: a time given on purpose is taken as
    meant.

    Args:
        views: what the lookup read.
        windows: view → the longest window of the features computed from it (views
            computing only lifetime features are absent: those never go stale).
        at_us: the lookup time.
        at_given: whether the caller gave `at`.
    """
    if at_given:
        return []
    warnings = []
    for read in views:
        window = windows.get(read.view)
        # Pushed events newer than the materialization end count as data too.
        latest = max([read.end_us, *(time for time in read.newest_us if time is not None)])
        if window is None or at_us - latest <= window:
            continue
        end = format_micros(read.end_us)
        data = (f"feature view '{read.view}' is materialized up to {end}"
                if latest == read.end_us else
                f"the data of feature view '{read.view}' ends at {format_micros(latest)} "
                f"(pushed; materialized up to {end})")
        warnings.append(
            f"{data}, more than its longest requested window ({format_duration(window)}) "
            "before now: its windowed features are empty (count and sum 0, others null); "
            f"pass at='{end}' to look up as of the end of the data, or materialize newer "
            "events")
    return warnings


def lookup_metadata(views: Sequence[ViewStates], at_us: int,
                    warnings: Sequence[str]) -> dict[str, Any]:
    """The metadata of an answer (see the module docstring)."""
    return {
        "at": micros_datetime(at_us),
        "views": {read.view: {
            "status": [FOUND if found else NOT_FOUND for found in read.found],
            "newest_event": [None if newest is None else micros_datetime(newest)
                             for newest in read.newest_us],
            "materialized_until": micros_datetime(read.end_us),
        } for read in views},
        "warnings": list(warnings),
    }


def micros_datetime(micros: int) -> dt.datetime:
    """A UTC datetime of microseconds since the epoch."""
    return _EPOCH + dt.timedelta(microseconds=micros)


def typed_table(keys: Mapping[str, list], key_types: Mapping[str, ColumnType],
                columns: Sequence[FeatureColumn], rows: int,
                output: OnlineOutput) -> pd.DataFrame | pa.Table:
    """The key columns and feature columns as a DataFrame or an Arrow table, typed as
    training sets type them (`training_output`).

    Args:
        keys: entity key column → values.
        key_types: each key column's type (INT or STRING).
        columns: the feature columns, in output order.
        rows: the number of entities.
        output: "pandas" or "arrow".
    """
    spine = pa.table({name: pa.array(values, ARROW_TYPES[key_types[name]])
                      for name, values in keys.items()})
    if not keys:
        # No entity keys (request features only): the rows are the request's.
        spine = pa.table({"_": pa.nulls(rows)}).drop_columns(["_"])
    if output == "arrow":
        return arrow_result(spine, columns)
    frame = pandas_result(spine, columns)
    if not keys:
        import pandas as pd
        frame = pd.DataFrame({column.name: column.to_pandas() for column in columns})
    return frame
