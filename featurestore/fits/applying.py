"""The transformed columns of a training set or an online lookup.

Both paths hand `ServiceProgram.columns` the service's feature columns in the kernels'
representation (`FeatureColumn`: float64 with NaN for null, string features as codes
and a dictionary) and get the transformed columns back from the one compiled kernel
(`transforms.fitted_kernel`), so the same inputs give the same floats on both.

`FitCache` finds the fit a request names (the pinned one by default) and keeps each
artifact's program: artifacts never change, so only pins are read again, at most once
per `PIN_SECONDS` (a pin made in this process is seen at once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from featurestore.errors import InputError, StoreLockedError
from featurestore.fits.artifacts import FitArtifact, find_fit, load_fit, pins
from featurestore.fits.service_transforms import ServiceTransforms
from featurestore.offline.training_output import FeatureColumn
from featurestore.registry.state import AppliedState
from transforms.analyzers import Categories
from transforms.fitted_kernel import FittedProgram, FittedTransform
from transforms.spec import ColumnType

PIN_SECONDS = 1.0
"""How long a process trusts the pins it read before reading them again."""


class FitMismatchError(InputError):
    """A fit was made for other definitions of the service's transforms or features."""


@dataclass(frozen=True)
class ServiceProgram:
    """A service's transforms with one artifact's statistics, ready to apply.

    Attributes:
        transforms: the resolved transforms.
        artifact: the fitted artifact.
        program: the kernel's program.
    """

    transforms: ServiceTransforms
    artifact: FitArtifact
    program: FittedProgram

    @staticmethod
    def build(transforms: ServiceTransforms, artifact: FitArtifact) -> ServiceProgram:
        """Bind an artifact to the current definitions.

        Raises:
            FitMismatchError: the artifact was fitted for other definitions.
        """
        if artifact.definitions_hash != transforms.definitions_hash:
            raise FitMismatchError(
                f"fit {artifact.id} of service '{transforms.service}' was made for other "
                "definitions of its transforms or of the features they read: run "
                f"`featurestore fit --service {transforms.service} --spine FILE`")
        index = transforms.input_index()
        fitted = [FittedTransform(spec, index[i], artifact.statistics[spec.name])
                  for i, spec in enumerate(transforms.specs)]
        return ServiceProgram(transforms, artifact,
                              FittedProgram(fitted, len(transforms.inputs())))

    def output_names(self) -> list[str]:
        """Every transformed column, in order (one-hot expanded)."""
        return [name for fitted in self.program.transforms for name in fitted.output_names()]

    def columns(self, features: Mapping[tuple[str, str], FeatureColumn]) -> list[FeatureColumn]:
        """The transformed columns, computed from the service's feature columns.

        Args:
            features: (view, feature) → its column, for every feature a transform reads.
        """
        inputs = self.transforms.inputs()
        rows = len(next(iter(features.values())).values) if features else 0
        matrix = np.empty((len(inputs), rows), np.float64)
        keys: dict[int, list[str]] = {}
        for index, (ref, categorical) in enumerate(inputs):
            column = features[ref]
            if not categorical:
                matrix[index] = column.values
                continue
            if column.kind == ColumnType.STRING:
                categories = Categories.of_strings(column.values, column.dictionary or [])
            else:
                categories = Categories.of_numbers(column.values)
            matrix[index] = categories.codes
            keys[index] = list(categories.keys)
        out, out_keys = self.program.run(matrix, keys)
        result = []
        row = 0
        for index, fitted in enumerate(self.program.transforms):
            kind = fitted.spec.output_type
            never_null = fitted.spec.fn in ("one_hot", "impute")
            for name in fitted.output_names():
                result.append(FeatureColumn(name, kind, out[row], never_null,
                                            out_keys.get(index)))
                row += 1
        return result


class FitCache:
    """Finds fits for requests, for one offline file (shared by a store's contexts).

    Args:
        database: the offline file.
    """

    def __init__(self, database: AppliedState) -> None:
        # Reading pins must not wait long behind a materialization holding the file.
        self._database = AppliedState(database.database, 0.1, database.search_dir)
        self._full = database
        self._lock = threading.Lock()
        self._pins: dict[str, str] = {}
        self._pins_read = -float("inf")
        self._programs: dict[tuple[str, str], ServiceProgram] = {}

    def program(self, transforms: ServiceTransforms, fit: str | None) -> ServiceProgram:
        """The program of the fit a request names (None: the pinned one) for a
        service's resolved transforms (`service_transforms`).

        Raises:
            InputError: no fit, no such fit, or a fit for other definitions
                (`FitMismatchError`).
        """
        service = transforms.service
        # A pinned fit, or one named by its whole id, is found without reading the file.
        fit_id = self._pinned(service) if fit is None else fit
        artifact = None
        if fit_id is not None:
            cached = self._programs.get((fit_id, transforms.definitions_hash))
            if cached is not None:
                return cached
            if fit is None:
                artifact = load_fit(self._full, fit_id)
        if artifact is None:
            artifact = find_fit(self._full, service, fit)
        key = (artifact.id, transforms.definitions_hash)
        program = self._programs.get(key)
        if program is None:
            program = self._programs[key] = ServiceProgram.build(transforms, artifact)
        return program

    def pinned(self, service: str, fit_id: str) -> None:
        """Record a pin made in this process."""
        with self._lock:
            self._pins[service] = fit_id

    def _pinned(self, service: str) -> str | None:
        now = time.monotonic()
        if now - self._pins_read >= PIN_SECONDS:
            with self._lock:
                try:
                    self._pins = pins(self._database)
                    self._pins_read = now
                except StoreLockedError:
                    pass  # keep the pins last read; the next request retries
        return self._pins.get(service)
