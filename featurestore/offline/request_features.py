"""Request-view features of a training set, computed from spine columns.

Offline, a request view's request fields are spine columns of the same name (DESIGN
§4.4), and its view-feature inputs come from the point-in-time values of the same rows.
The request view's compiled kernel, the one online lookups call, evaluates them.

A request view's kernel takes all its fields and view features at once, but a training
set asks for single features: only the inputs the requested features read
(`CompiledRequestView.inputs_of`, the same definition online lookups use) are required
of the spine (and computed); the others are passed as nulls, and the features that read
them are not part of the output.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from featurestore.errors import InputError
from featurestore.offline.arrow_types import is_text_type
from featurestore.offline.timestamps import normalize_timestamps
from transforms import CompiledRequestView
from transforms.spec import ColumnType


def read_request_fields(
    spine: pa.Table, needed: Mapping[str, str], request_views: Mapping[str, CompiledRequestView]
) -> dict[str, np.ndarray]:
    """The needed request fields as kernel inputs, read from the spine's columns.

    Args:
        spine: the loaded spine.
        needed: field → the request view that reads it.
        request_views: the compiled request views (they give each field's type).

    Raises:
        InputError: a field is not a spine column, or has a type that cannot stand for
            the field's type (the message names the column and the view).
    """
    fields = {}
    for name, view in needed.items():
        if name not in spine.column_names:
            raise InputError(
                f"spine has no column '{name}', a request field of request view '{view}'; "
                f"its columns: {', '.join(spine.column_names)}"
            )
        kind = dict(request_views[view].request_fields)[name]
        fields[name] = request_values(spine.column(name), name, kind)
    return fields


def evaluate_request_feature(
    compiled: CompiledRequestView,
    feature: str,
    fields: Mapping[str, np.ndarray],
    view_values: Mapping[tuple[str, str], np.ndarray],
    rows: int,
) -> np.ndarray:
    """One request-view feature for every spine row: float64, NaN for null.

    Args:
        compiled: the request view's kernel.
        feature: the feature wanted.
        fields: request field → values in spine order, for at least every field the
            feature reads (`compiled.inputs_of`).
        view_values: (view, feature) → values in spine order, for at least every view
            feature it reads.
        rows: the number of spine rows.
    """
    inputs = compiled.inputs_of([feature])
    request = {name: fields[name] for name in inputs.fields}
    features = {ref: view_values[ref] for ref in inputs.features}
    return compiled.evaluate_given(request, features, rows)[
        compiled.feature_names.index(feature)]


def request_values(values: pa.ChunkedArray, name: str, kind: ColumnType) -> np.ndarray:
    """A spine column as a request field's kernel input: float64, NaN for null.

    Numbers and booleans stand for numeric and boolean fields; timestamps (or dates,
    or ISO-8601 text) for timestamp fields, as microseconds; text for string fields,
    as an object array of str and None (the request view evaluates what reads it).

    Raises:
        InputError: the column's type cannot stand for the field's.
    """
    arrow_type = values.type
    if pa.types.is_dictionary(arrow_type):
        values = values.cast(arrow_type.value_type)
        arrow_type = values.type
    if kind is ColumnType.STRING:
        if not (is_text_type(arrow_type) or pa.types.is_null(arrow_type)):
            raise InputError(
                f"spine column '{name}' has type {arrow_type}, but request field '{name}' "
                "is string: give text (or nulls)"
            )
        return values.cast(pa.string()).to_numpy(zero_copy_only=False)
    if kind is ColumnType.TIMESTAMP:
        label = f"spine column '{name}' (request field)"
        micros = normalize_timestamps(values, label).cast(pa.int64())
        return micros.cast(pa.float64()).fill_null(np.nan).to_numpy().astype(np.float64)
    numeric = (
        pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
        or pa.types.is_decimal(arrow_type) or pa.types.is_boolean(arrow_type)
    )  # fmt: skip
    if not numeric:
        raise InputError(
            f"spine column '{name}' has type {arrow_type}, but request field '{name}' is "
            f"{kind}: give numbers"
        )
    return values.cast(pa.float64()).fill_null(np.nan).to_numpy().astype(np.float64)
