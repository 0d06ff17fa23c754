"""`FeatureStore.drift`: read a baseline and a current side, compare their common features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from featurestore.drift.comparison import DriftReport, compare_profiles
from featurestore.drift.feature_names import FeatureNames, Ref
from featurestore.drift.sides import Side, read_side
from featurestore.errors import InputError

if TYPE_CHECKING:
    from featurestore.context import StoreContext


def detect_drift(store: StoreContext, baseline: str, current: str,
                 features: Sequence[str] | str | None = None) -> DriftReport:
    """Compare every registry feature found on both sides (or those `features` names).

    See `FeatureStore.drift` for the arguments.

    Raises:
        InputError: a side that cannot be read, an unknown feature, a named feature
            missing from a side, or no feature on both sides.
    """
    names = FeatureNames(store.registry)
    if isinstance(features, str):
        features = [features]
    wanted = names.resolve(features) if features else None
    base = read_side(store, baseline, wanted, names, "baseline")
    _check_named(wanted, base, "baseline", baseline, names)
    now = read_side(store, current, list(base.profiles), names, "current")
    _check_named(wanted, now, "current", current, names)
    common = [ref for ref in base.profiles if ref in now.profiles]
    if not common:
        raise InputError(f"no feature of the registry is in both the baseline ({baseline}: "
                         f"{_listed(base.profiles, names)}) and the current data ({current}: "
                         f"{_listed(now.profiles, names)})")
    compared = tuple(compare_profiles(names.shown(ref), base.profiles[ref], now.profiles[ref],
                                      store.registry.drift) for ref in common)
    left_out = (
        *(f"{names.shown(ref)} ({now.left_out.get(ref, 'not in the current data')})"
          for ref in base.profiles if ref not in now.profiles),
        *(f"{names.shown(ref)} (not in the baseline)"
          for ref in now.profiles if ref not in base.profiles))
    return DriftReport(base.description, now.description, compared, left_out)


def _check_named(wanted: Sequence[Ref] | None, side: Side, role: str, spec: str,
                 names: FeatureNames) -> None:
    """A feature named with `features` must be on both sides."""
    for ref in wanted or []:
        if ref in side.left_out:
            raise InputError(f"feature '{names.shown(ref)}' cannot be compared in the {role} "
                             f"({spec}): {side.left_out[ref]}")
        if ref not in side.profiles:
            raise InputError(f"feature '{names.shown(ref)}' is not in the {role} ({spec})")


def _listed(profiles: Mapping[Ref, object], names: FeatureNames) -> str:
    return ", ".join(names.shown(ref) for ref in profiles) or "none"
