"""The `drift:` section of registry.yaml: when `featurestore drift` calls a feature drifted."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, PositiveFloat

PSI_THRESHOLD = 0.2
"""Default population stability index above which a numeric feature has drifted."""

KS_THRESHOLD = 0.1
"""Default Kolmogorov-Smirnov distance above which a numeric feature has drifted."""

LINF_THRESHOLD = 0.1
"""Default L-infinity distance above which a categorical feature has drifted."""

JS_THRESHOLD = 0.1
"""Default Jensen-Shannon divergence (bits) above which a categorical feature has drifted."""


class DriftSettings(BaseModel):
    """Thresholds of `featurestore drift` (immutable; unknown keys are errors). A feature
    has drifted when any of its measures is above its threshold.

    Attributes:
        psi: numeric features: population stability index over the baseline's deciles.
        ks: numeric features: Kolmogorov-Smirnov distance (0 to 1).
        linf: categorical features: largest difference of one value's frequency (0 to 1).
        js: categorical features: Jensen-Shannon divergence in bits (0 to 1).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    psi: PositiveFloat = PSI_THRESHOLD
    ks: PositiveFloat = KS_THRESHOLD
    linf: PositiveFloat = LINF_THRESHOLD
    js: PositiveFloat = JS_THRESHOLD

    def threshold(self, measure: str) -> float:
        """The threshold of a measure by its key (`psi`, `ks`, `linf`, `js`)."""
        return float(getattr(self, measure))
