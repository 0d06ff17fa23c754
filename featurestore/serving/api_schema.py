"""The shapes of the HTTP API, for the OpenAPI document at /docs.

Bodies are parsed with orjson and checked by the lookup and push code, which already
names every problem precisely; these models only describe the shapes (and give examples
built from the registry), so FastAPI's validation stays off the hot path.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from featurestore.registry import Registry
from transforms import CompiledGraph
from transforms.spec import ColumnType

_EXAMPLE_KEYS = {ColumnType.INT: 1, ColumnType.STRING: "a"}
_EXAMPLE_FIELDS = {ColumnType.INT: 1, ColumnType.FLOAT: 10.0, ColumnType.BOOL: True,
                   ColumnType.TIMESTAMP: "2024-01-01T00:00:00Z", ColumnType.STRING: "a"}


class LookupBody(BaseModel):
    """POST /online-features: the keyword arguments of `get_online_features`."""

    features: list[str] | None = Field(None, description="'view:feature' references")
    service: str | None = Field(None, description="a service name instead of features")
    entities: dict[str, list[int | str]] = Field(
        description="entity key column → values (at most 1000 entities)")
    request: dict[str, list[float | int | bool | str | None]] | None = Field(
        None, description="request field → one value per entity")
    at: str | None = Field(None, description="lookup time, ISO-8601 (default now, UTC)")
    full_names: bool = Field(False, description="name columns view__feature")
    include_metadata: bool = Field(
        False, description="also answer `metadata`: per feature view and entity whether "
        "it had online state and its newest event, and the materialization ends")
    transformed: bool = Field(
        False, description="with `service`: also answer its transformed columns, from the "
        "pinned fit (or `fit`); the answer's `fit` names the fitted artifact")
    fit: str | None = Field(None, description="with `transformed`: a fit id or \"latest\"")


class ViewMetadata(BaseModel):
    """What a lookup read of one feature view, one list entry per entity."""

    status: list[str] = Field(description="'found' (the online store held state for the "
                              "entity) or 'not_found' (never seen: empty-window values)")
    newest_event: list[str | None] = Field(
        description="time of the entity's newest event (ISO-8601), null when not found or "
        "not known (states published before newest times were kept)")
    materialized_until: str = Field(description="the view's materialization end")


class LookupMetadata(BaseModel):
    """`include_metadata`: the lookup time and, per feature view read, what was found.

    Request views hold no state and are not listed.
    """

    at: str = Field(description="the lookup time used (ISO-8601)")
    views: dict[str, ViewMetadata]
    warnings: list[str] = Field(description="as the top-level `warnings` (may be empty)")


class LookupAnswer(BaseModel):
    """Entity key columns, then one column per feature in request order; null = None.

    `warnings` is present only when not empty (with or without `include_metadata`): a
    lookup at now (no `at`) of a view whose data ended more than its longest requested
    window before now, so that its windowed features are empty, says so and suggests
    `at`.
    """

    features: dict[str, list[Any]]
    fit: str | None = Field(None, description="with transformed: the fitted artifact's id")
    metadata: LookupMetadata | None = Field(None, description="with include_metadata")
    warnings: list[str] | None = Field(None, description="present when not empty")


class PushBody(BaseModel):
    """POST /push: events of one source (at most `serving.max_push_rows` rows, 5,000 by default)."""

    source: str
    rows: list[dict[str, Any]] = Field(description="one object per event, source columns")


class PushAnswer(BaseModel):
    """What a push stored; `online` is false when nothing is materialized yet."""

    source: str
    rows: int
    online: bool
    entities: int
    warnings: list[str] | None = None
    """Broken `on_fail: warn` expectations of the rows (kept); absent when none."""


class ErrorDetail(BaseModel):
    """A machine-readable code and a message naming the problem."""

    code: str
    message: str


class ErrorAnswer(BaseModel):
    """Every error answer (4xx, 503, and 500 for a bug)."""

    error: ErrorDetail


class ViewFreshness(BaseModel):
    """How fresh one feature view's online states are."""

    materialized_until: str | None = None
    age_seconds: float | None = None


class HealthAnswer(BaseModel):
    """GET /health: 200 when the online store answers, 503 when it does not.

    `status` is `ok`, `degraded` (an applied version is not served yet: `pending`
    says why, the last consistent version keeps answering) or `unavailable`.
    """

    status: str
    online_store: str
    materialized: bool | None = None
    served_version: int | None = None
    applied_version: int | None = None
    pending: str | None = None
    views: dict[str, ViewFreshness] | None = None
    error: ErrorDetail | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorAnswer, "description": "Bad input (the code says which)"},
    408: {"model": ErrorAnswer, "description": "Body not received within the deadline"},
    413: {"model": ErrorAnswer, "description": "Body, entities or rows over the limit"},
    503: {"model": ErrorAnswer, "description": "Online store unreachable or not loaded"},
}

PUSH_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    422: {"model": ErrorAnswer, "description": "A row breaks a source expectation (code "
          "expectation_failed; the error also names source, row, column, rule, value and "
          "policy); nothing is stored"},
}


def request_body(model: type[BaseModel], example: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body that the endpoint parses itself."""
    schema = model.model_json_schema()
    schema.pop("title", None)
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": schema, "examples": {"example": {"value": example}}}}}}


def document_operation(app: FastAPI, path: str, summary: str, body: dict[str, Any],
                       answer: type[BaseModel]) -> None:
    """Add a POST operation that no FastAPI route serves to the app's OpenAPI document.

    Args:
        app: the application whose `openapi()` gains the operation.
        path: the URL path, answered by an ASGI front of the application.
        summary: one line for /docs.
        body: `request_body(...)` of the operation.
        answer: the model of a successful answer.
    """
    errors = {str(status): {"description": response["description"], "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}}
        for status, response in ERROR_RESPONSES.items()}
    operation = {"summary": summary, "operationId": path.strip("/").replace("-", "_"), **body,
                 "responses": {"200": {"description": "Successful Response", "content": {
                     "application/json": {"schema": {
                         "$ref": f"#/components/schemas/{answer.__name__}"}}}}, **errors}}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)  # builds and caches the routes' document
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            answer_schema = answer.model_json_schema(
                ref_template="#/components/schemas/{model}")
            # Nested models become components of their own, where the refs point.
            for name, definition in answer_schema.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas[answer.__name__] = answer_schema
            schemas.setdefault("ErrorAnswer", ErrorAnswer.model_json_schema(
                ref_template="#/components/schemas/{model}"))
            schemas.setdefault("ErrorDetail", ErrorDetail.model_json_schema())
            schema["paths"] = {path: {"post": operation}, **schema.get("paths", {})}
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


def document_bearer_auth(app: FastAPI, open_paths: Collection[str]) -> None:
    """Declare bearer tokens in the app's OpenAPI document (call after the other
    `document_*`): /docs then has an Authorize button, and each operation but those of
    `open_paths` needs a token and may answer 401 or 403."""
    build = app.openapi
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}}
    refusals = {"401": {"description": "No token, or an unknown or revoked one",
                        "content": error},
                "403": {"description": "The token lacks the scope", "content": error}}

    def openapi() -> dict[str, Any]:
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        if _BEARER not in schemes:  # the document is cached: change it once
            schemes[_BEARER] = {"type": "http", "scheme": "bearer", "description":
                                "a token from `featurestore token create`: scope `read` for "
                                "lookups and /registry, `push` for POST /push, `metrics` "
                                "for GET /metrics"}
            for path, operations in schema.get("paths", {}).items():
                if path in open_paths:
                    continue
                for operation in operations.values():
                    operation["security"] = [{_BEARER: []}]
                    operation.setdefault("responses", {}).update(refusals)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_BEARER = "bearer"


def lookup_example(registry: Registry, kernels: CompiledGraph) -> dict[str, Any]:
    """A valid lookup body for this registry: a service (or the first feature)."""
    if registry.services:
        service = next(iter(registry.services))
        refs = registry.service_features(service)
        body: dict[str, Any] = {"service": service}
    else:
        view = next(iter({**registry.feature_views, **registry.request_views}.items()), None)
        refs = ((view[0], next(iter(view[1].features))),) if view else ()
        body = {"features": [f"{v}:{f}" for v, f in refs]}
    views = {v for v, _ in refs if v in registry.feature_views}
    fields: dict[str, ColumnType] = {}
    for name in {v for v, _ in refs if v in kernels.request_views}:
        request_view = kernels.request_views[name]
        fields.update(request_view.request_fields)
        views.update(v for v, _ in request_view.dependencies)
    entities = {}
    for name in views:
        view = registry.feature_views[name]
        schema = kernels.graph.spec.schema(view.source)
        for key in registry.entities[view.entity].keys:
            entities[key] = [_EXAMPLE_KEYS.get(schema[key], 1)]
    body["entities"] = entities
    if fields:
        body["request"] = {name: [_EXAMPLE_FIELDS[kind]] for name, kind in fields.items()}
    return body


PUSH_DESCRIPTION = (
    "Pushed events are **permanent**: they are stored with the source's events, and every "
    "later training set and materialization reads them; there is no undo. The example "
    "is a placeholder (entity key 0 or 'example', the year 2000, zeros): **edit every "
    "value before you send it**."
)
_PLACEHOLDER_KEYS = {ColumnType.INT: 0, ColumnType.STRING: "example"}
_PLACEHOLDER_VALUES = {ColumnType.INT: 0, ColumnType.FLOAT: 0.0, ColumnType.BOOL: False,
                       ColumnType.STRING: "example",
                       ColumnType.TIMESTAMP: "2000-01-01T00:00:00Z"}


def push_request_body(registry: Registry, kernels: CompiledGraph) -> dict[str, Any]:
    """`openapi_extra` of POST /push: the body's shape and a placeholder example, marked
    as one in /docs (a push cannot be taken back)."""
    document = request_body(PushBody, push_example(registry, kernels))
    example = document["requestBody"]["content"]["application/json"]["examples"]["example"]
    example["summary"] = "Placeholder event: edit every value (pushes are permanent)"
    return document


def push_example(registry: Registry, kernels: CompiledGraph) -> dict[str, Any]:
    """A valid push body that no one would take for real data: one event of the first
    source a feature view reads, with placeholder values (see PUSH_DESCRIPTION)."""
    view = next(iter(registry.feature_views.values()), None)
    if view is None:
        return {"source": next(iter(registry.sources), ""), "rows": []}
    schema = kernels.graph.spec.schema(view.source)
    row: dict[str, Any] = {}
    for column, kind in schema.items():
        if column in registry.entities[view.entity].keys:
            row[column] = _PLACEHOLDER_KEYS.get(kind, 0)
        else:
            row[column] = _PLACEHOLDER_VALUES[kind]
    return {"source": view.source, "rows": [row]}
