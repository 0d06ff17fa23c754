"""Request-view values of the served-value log, recomputed for replay.

A logged row holds the request fields its lookup was asked with (`request_fields`). A
request-view feature is recomputed from them and from the recomputed values of the view
features it reads, by the request view's compiled kernel: the fields are converted as
the lookup converted them (`serving.inputs.request_columns`) and the kernel is called
as a training set calls it (`request_features.evaluate_request_feature`), so replay has
no evaluator of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from featurestore.feature_columns import request_feature_type
from featurestore.offline.request_features import evaluate_request_feature
from featurestore.offline.training_output import FeatureColumn
from featurestore.serving.inputs import request_columns
from transforms import CompiledRequestView
from transforms.graph import RequestInputs
from transforms.spec import ColumnType

REQUEST_FIELDS = "request-view feature: the request fields it was computed from are not logged"


@dataclass(frozen=True)
class RequestValue:
    """One recomputed request-view value.

    Attributes:
        raw: the kernel's float64 (NaN for null).
        kind: the feature's output type (FLOAT, or BOOL for a boolean expression).
    """

    raw: float
    kind: ColumnType

    def column(self, name: str) -> FeatureColumn:
        """The value as a one-row feature column, as a lookup types it for transforms."""
        return FeatureColumn(name, self.kind, np.array([self.raw]))


def logged_inputs(compiled: CompiledRequestView, feature: str,
                  logged: object) -> RequestInputs | str:
    """What `feature` reads, or why it cannot be replayed: a row logged without the
    request fields it needs (logged before they were, or the field was not sent).

    Args:
        logged: the row's `request_fields`, parsed (None when the row has none).
    """
    inputs = compiled.inputs_of([feature])
    if inputs.fields and (not isinstance(logged, Mapping)
                          or not inputs.fields <= logged.keys()):
        return REQUEST_FIELDS
    return inputs


def recompute_request_value(compiled: CompiledRequestView, feature: str,
                            inputs: RequestInputs, logged: Mapping[str, object],
                            dependencies: Mapping[tuple[str, str], float]) -> RequestValue:
    """One request-view feature of one logged row.

    Args:
        compiled: the request view's kernel, of the registry version that answered.
        feature: the feature.
        inputs: what it reads (`logged_inputs`).
        logged: the row's logged request fields (at least `inputs.fields`).
        dependencies: each view feature of `inputs.features` → its recomputed value.

    Raises:
        RequestError: a logged field's value is not of the field's type.
    """
    types = {name: kind for name, kind in compiled.request_fields if name in inputs.fields}
    fields, _ = request_columns({name: [logged[name]] for name in types}, types, 1)
    values = {ref: np.array([dependencies[ref]]) for ref in inputs.features}
    raw = float(evaluate_request_feature(compiled, feature, fields, values, 1)[0])
    return RequestValue(raw, request_feature_type(compiled.feature_types.get(feature)))
