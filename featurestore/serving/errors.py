"""Errors of the online path, each carrying a stable code that HTTP answers repeat.

They subclass the domain errors of `featurestore.errors`, so SDK callers can catch
`InputError` or `FeatureStoreError` as everywhere else; the HTTP layer maps each `code`
to a status (`featurestore.serving.http_errors`).
"""

from __future__ import annotations

from featurestore.errors import FeatureStoreError, InputError


class RequestError(InputError):
    """Bad input to a lookup or a push.

    Attributes:
        code: what kind of problem, for programs. Lookups: ``invalid_features``,
            ``unknown_feature``, ``invalid_entities``, ``missing_entity_key``,
            ``unknown_entity_key``, ``wrong_type``, ``length_mismatch``,
            ``too_many_entities``, ``invalid_request_fields``, ``missing_request_field``,
            ``unknown_request_field``, ``invalid_time``, ``time_before_materialization``.
            Pushes: ``unknown_source``, ``invalid_rows``. HTTP bodies (see
            `featurestore.serving.http_errors`): ``malformed_json``, ``invalid_body``,
            ``unknown_field``, ``body_too_large``, ``too_many_rows``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NotMaterializedError(FeatureStoreError):
    """The online store holds no published state yet: run `featurestore materialize`."""

    code = "not_materialized"


class RegistryMismatchError(FeatureStoreError):
    """The online store was loaded by other definitions than the registry in use.

    Serving it would apply this registry's kernels to another layout of state, so
    lookups and pushes refuse until `apply` and `materialize` have run.
    """

    code = "registry_mismatch"
