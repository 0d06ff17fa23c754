"""The shapes of the HTTP API, for the OpenAPI document at /docs.

Bodies are parsed with orjson and checked by the lookup and push code, which already
names every problem precisely; these models only describe the shapes (and give examples
built from the registry), so FastAPI's validation stays off the hot path.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from featurestore.registry import Registry
from transforms import CompiledGraph
from transforms.spec import ColumnType

_EXAMPLE_KEYS = {ColumnType.INT: 1, ColumnType.STRING: "a"}
_EXAMPLE_FIELDS = {ColumnType.INT: 1, ColumnType.FLOAT: 10.0, ColumnType.BOOL: True,
                   ColumnType.TIMESTAMP: "2024-01-01T00:00:00Z"}


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


class LookupAnswer(BaseModel):
    """Entity key columns, then one column per feature in request order; null = None."""

    features: dict[str, list[Any]]


class PushBody(BaseModel):
    """POST /push: events of one source (at most 10,000 rows)."""

    source: str
    rows: list[dict[str, Any]] = Field(description="one object per event, source columns")


class PushAnswer(BaseModel):
    """What a push stored; `online` is false when nothing is materialized yet."""

    source: str
    rows: int
    online: bool
    entities: int


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
    413: {"model": ErrorAnswer, "description": "Body, entities or rows over the limit"},
    503: {"model": ErrorAnswer, "description": "Online store unreachable or not loaded"},
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
            schemas[answer.__name__] = answer.model_json_schema()
            schemas.setdefault("ErrorAnswer", ErrorAnswer.model_json_schema(
                ref_template="#/components/schemas/{model}"))
            schemas.setdefault("ErrorDetail", ErrorDetail.model_json_schema())
            schema["paths"] = {path: {"post": operation}, **schema.get("paths", {})}
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]


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


def push_example(registry: Registry, kernels: CompiledGraph) -> dict[str, Any]:
    """A valid push body: one event of the first source a feature view reads."""
    view = next(iter(registry.feature_views.values()), None)
    if view is None:
        return {"source": next(iter(registry.sources), ""), "rows": []}
    schema = kernels.graph.spec.schema(view.source)
    timestamp = registry.sources[view.source].timestamp
    row: dict[str, Any] = {}
    for column, kind in schema.items():
        if column == timestamp:
            row[column] = "2024-01-01T00:00:00Z"
        elif column in registry.entities[view.entity].keys:
            row[column] = _EXAMPLE_KEYS.get(kind, 1)
        elif kind is not ColumnType.TIMESTAMP:
            row[column] = "a" if kind is ColumnType.STRING else _EXAMPLE_FIELDS[kind]
    return {"source": view.source, "rows": [row]}
