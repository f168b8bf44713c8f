"""The OpenAPI 3.1 document of the declared resources, built from their fields.

OpenAPI 3.1 schemas are JSON Schema 2020-12, so a field's declaration is its
schema as written.  Each resource gets ``NAME`` (an item as read, with the key,
parent column and timestamps) and ``NAME-input`` (what a client sends).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import Field

from quiver.config.resources import OPENAPI_TARGET_TYPE, TIMESTAMPS, Resource, path_template
from quiver.errors import MethodNotAllowed
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType

_PROBLEM = {"$ref": "#/components/responses/problem"}
_LIST_PARAMETERS = [
    ("sort", "Sort keys, `-` for descending: `-price,name`."),
    ("fields", "Only these keys in each item: `id,name`."),
    ("limit", "Items per page."),
    ("page", "The page, from 1."),
    ("cursor", "Keyset pagination: empty for the first page, then the `next` link's."),
    ("count", "`true` adds X-Total-Count."),
]
_OPERATORS = "ne, lt, lte, gt, gte, in, nin, like, ilike, null"


def _schemas(resource: Resource) -> dict[str, Any]:
    key = resource.primary_key
    properties: dict[str, Any] = {key: {"type": "integer", "readOnly": True}}
    required = [key, *resource.required]
    if resource.parent is not None:
        properties[resource.parent.field] = {"type": "integer", "readOnly": True}
        required.append(resource.parent.field)
    properties.update(resource.fields)
    if resource.timestamps:
        for name in TIMESTAMPS:
            properties[name] = {"type": "string", "format": "date-time", "readOnly": True}
        required.extend(TIMESTAMPS)
    item = {"type": "object", "properties": properties, "required": required}
    given: dict[str, Any] = {
        "type": "object",
        "properties": resource.fields,
        "additionalProperties": False,
    }
    if resource.required:
        given["required"] = list(resource.required)
    return {resource.name: item, f"{resource.name}-input": given}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operations(resource: Resource, template: str) -> dict[str, Any]:
    name = resource.name
    item = {"$ref": f"#/components/schemas/{name}"}
    given = {"$ref": f"#/components/schemas/{name}-input"}
    path_parameters = [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "integer"}}
        for part in template.split("/")
        if part.startswith("{")
    ]
    filters = [
        {
            "name": f"{field}[op]",
            "in": "query",
            "required": False,
            "description": f"Filter on {field}: `{field}=v` or `{field}[op]=v` ({_OPERATORS}).",
            "schema": {"type": "string"},
        }
        for field in resource.fields
    ]
    listing = [
        {
            "name": key,
            "in": "query",
            "required": False,
            "description": text,
            "schema": {"type": "string"},
        }
        for key, text in _LIST_PARAMETERS
    ]
    errors = {status: _PROBLEM for status in ("400", "404", "415", "422")}
    collection = {
        "parameters": path_parameters,
        "get": {
            "operationId": f"list-{name}",
            "parameters": listing + filters,
            "responses": {
                "200": {
                    "description": "A page of items.",
                    "content": _json({"type": "array", "items": item}),
                },
                "400": _PROBLEM,
                "404": _PROBLEM,
            },
        },
        "post": {
            "operationId": f"create-{name}",
            "requestBody": {"required": True, "content": _json(given)},
            "responses": {
                "201": {"description": "Created; Location names it.", "content": _json(item)},
                "409": _PROBLEM,
                **errors,
            },
        },
    }
    key = {
        "name": resource.primary_key,
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    }
    patch = {
        "application/merge-patch+json": {"schema": {"type": "object"}},
        "application/json-patch+json": {"schema": {"type": "array", "items": {"type": "object"}}},
    }
    conditional = {"409": _PROBLEM, "412": _PROBLEM, "428": _PROBLEM, **errors}
    one = {
        "parameters": [*path_parameters, key],
        "get": {
            "operationId": f"get-{name}",
            "responses": {
                "200": {"description": "The item.", "content": _json(item)},
                "304": {"description": "Not modified."},
                "404": _PROBLEM,
            },
        },
        "put": {
            "operationId": f"replace-{name}",
            "requestBody": {"required": True, "content": _json(given)},
            "responses": {
                "200": {"description": "Replaced.", "content": _json(item)},
                **conditional,
            },
        },
        "patch": {
            "operationId": f"patch-{name}",
            "requestBody": {"required": True, "content": patch},
            "responses": {
                "200": {"description": "Patched.", "content": _json(item)},
                **conditional,
            },
        },
        "delete": {
            "operationId": f"delete-{name}",
            "responses": {"204": {"description": "Deleted."}, **conditional},
        },
    }
    return {template: collection, f"{template}/{{{resource.primary_key}}}": one}


def openapi_document(resources: Sequence[Resource]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing every resource's endpoints."""
    by_name = {resource.name: resource for resource in resources}
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for resource in resources:
        paths.update(_operations(resource, path_template(resource, by_name)))
        schemas.update(_schemas(resource))
    problem = {
        "description": "A problem document (RFC 9457); `errors` lists `{pointer, detail}`.",
        "content": {"application/problem+json": {"schema": {"type": "object"}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Resources", "version": "1"},
        "paths": paths,
        "components": {"schemas": schemas, "responses": {"problem": problem}},
    }


class OpenAPIOptions(TargetOptions):
    resources: list[Resource] = Field(description="Every declared resource.")


class ResourcesOpenAPI(TargetType[OpenAPIOptions]):
    """Serves the resources' OpenAPI document, rendered once per config."""

    name = OPENAPI_TARGET_TYPE
    Options = OpenAPIOptions
    listed = False

    def __init__(self, options: OpenAPIOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        self.body = orjson.dumps(openapi_document(options.resources))

    def handle(self, request: PluginRequest) -> Response:
        if request.method not in (b"GET", b"HEAD"):
            raise MethodNotAllowed(headers=((b"Allow", b"GET, HEAD"),))
        return Response(200, [(b"Content-Type", b"application/json")], self.body)
