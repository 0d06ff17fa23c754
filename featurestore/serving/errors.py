"""Errors of the online path, each carrying a stable code that HTTP answers repeat.

They subclass the domain errors of `featurestore.errors`, so SDK callers can catch
`InputError` or `FeatureStoreError` as everywhere else; the HTTP layer maps each `code`
to a status (`featurestore.serving.http_errors`).
"""

from __future__ import annotations

from featurestore.errors import InputError, NotMaterializedError, RegistryMismatchError

__all__ = ["NotMaterializedError", "RegistryMismatchError", "RequestError"]


class RequestError(InputError):
    """Bad input to a lookup or a push.

    Attributes:
        code: what kind of problem, for programs. Lookups: ``invalid_features``,
            ``unknown_feature``, ``invalid_entities``, ``missing_entity_key``,
            ``unknown_entity_key``, ``wrong_type``, ``length_mismatch``,
            ``too_many_entities``, ``invalid_request_fields``, ``missing_request_field``,
            ``unknown_request_field``, ``invalid_time``, ``time_before_materialization``,
            ``time_before_newest_event``;
            transformed lookups: ``invalid_fit``, ``not_fitted``, ``unknown_fit``,
            ``fit_mismatch``.
            Pushes: ``unknown_source``, ``invalid_rows``. HTTP bodies (see
            `featurestore.serving.http_errors`): ``malformed_json``, ``invalid_body``,
            ``unknown_field``, ``body_too_large``, ``body_timeout``, ``too_many_rows``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
