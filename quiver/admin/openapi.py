"""The OpenAPI 3.1 document of the admin API.

FastAPI describes the endpoints from their pydantic models; this adds what it
cannot know: the problem document every error answers (as
``application/problem+json``), and the config models (quiver.config) that entity
bodies follow.  Entity bodies are taken as plain objects and validated by
``quiver.config.validate`` so that messages are a config file's, hence their
schemas are added here rather than derived from the endpoint signatures.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from quiver.admin.problems import Problem
from quiver.admin.schemas import NewCredential
from quiver.config.apis import Api
from quiver.config.consumers import Consumer
from quiver.config.models import Route, Target

_REF = "#/components/schemas/{model}"
_DOCUMENTED: tuple[type[BaseModel], ...] = (
    Problem,
    Target,
    Route,
    Consumer,
    Api,
    NewCredential,
)
_MERGE_PATCH = "application/merge-patch+json"


def install_openapi(app: FastAPI, version: str) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build(app, version)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def build(app: FastAPI, version: str) -> dict[str, Any]:
    document = get_openapi(
        title="Quiver admin API",
        version=version,
        openapi_version="3.1.0",
        summary="Targets, routes, consumers, plugins, revisions, teams and tokens of Quiver.",
        description="Every call but /health, /openapi.json and /docs needs "
        "`Authorization: Bearer <token>`. Errors are application/problem+json (RFC 9457).",
        routes=app.routes,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in _DOCUMENTED:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    schemas["MergePatch"] = {
        "type": "object",
        "description": "A JSON merge patch (RFC 7396): keys to set; null removes a key.",
    }
    for path in document.get("paths", {}).values():
        for operation in path.values():
            _tidy_body(operation)
    return document


def _tidy_body(operation: dict[str, Any]) -> None:
    """Keep only the documented schema of an entity body (FastAPI's generic
    ``object`` is merged beside it), and only the merge-patch media type of a PATCH."""
    content = operation.get("requestBody", {}).get("content", {})
    if _MERGE_PATCH in content:
        content.pop("application/json", None)
    for media in content.values():
        schema = media.get("schema", {})
        if "$ref" in schema and len(schema) > 1:
            media["schema"] = {"$ref": schema["$ref"]}
