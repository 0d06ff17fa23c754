"""What a transformed online lookup applies: a service's resolved transforms (kept per
lookup engine, so a request does not resolve and hash them again) with the fit the
request names, and the request's checks with the codes HTTP answers repeat."""

from __future__ import annotations

from featurestore.errors import InputError
from featurestore.fits.applying import FitCache, FitMismatchError, ServiceProgram
from featurestore.fits.artifacts import NotFittedError, UnknownFitError
from featurestore.fits.service_transforms import ServiceTransforms, service_transforms
from featurestore.registry import Registry
from featurestore.serving.errors import RequestError
from transforms import CompiledGraph


class TransformedLookups:
    """The transforms of one registry's services, for its lookup engine.

    Args:
        registry: the validated definitions.
        kernels: their compiled graph.
    """

    def __init__(self, registry: Registry, kernels: CompiledGraph) -> None:
        self.registry = registry
        self.kernels = kernels
        self._resolved: dict[str, ServiceTransforms] = {}

    def program(self, service: object, transformed: object, fit: object,
                fits: FitCache | None) -> ServiceProgram | None:
        """The fitted transforms a lookup applies (None: not transformed).

        Raises:
            RequestError: bad `transformed` or `fit`, `transformed` without `service`,
                or no usable fit (codes `not_fitted`, `unknown_fit`, `fit_mismatch`).
        """
        if not isinstance(transformed, bool):
            raise RequestError("invalid_body", "'transformed' must be true or false")
        if fit is not None and not isinstance(fit, str):
            raise RequestError("invalid_fit", "'fit' must be a fit id or \"latest\"")
        if not transformed:
            if fit is not None:
                raise RequestError("invalid_features", "'fit' applies only with "
                                                       "'transformed': true")
            return None
        if not isinstance(service, str):
            raise RequestError("invalid_features", "'transformed' needs 'service': "
                                                   "transforms belong to a service")
        if fits is None:
            raise RequestError("not_fitted", "this lookup engine has no fitted transforms")
        try:
            return fits.program(self._transforms(service), fit)
        except NotFittedError as error:
            raise RequestError("not_fitted", str(error)) from None
        except UnknownFitError as error:
            raise RequestError("unknown_fit", str(error)) from None
        except FitMismatchError as error:
            raise RequestError("fit_mismatch", str(error)) from None
        except InputError as error:  # a service without transforms
            raise RequestError("not_fitted", str(error)) from None

    def _transforms(self, service: str) -> ServiceTransforms:
        resolved = self._resolved.get(service)
        if resolved is None:
            # Only resolvable services are kept: service_transforms raises otherwise.
            resolved = self._resolved[service] = service_transforms(
                self.registry, self.kernels, service)
        return resolved
