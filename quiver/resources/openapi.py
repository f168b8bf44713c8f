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
from quiver.resources.storage import Table, tables_of
from quiver.resources.validate import ItemSchema

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


def _schemas(table: Table) -> dict[str, Any]:
    resource, key = table.resource, table.key
    properties: dict[str, Any] = {}
    if key.type != "given":  # (a given key is a field, as declared)
        properties[key.name] = {**key.schema(), "readOnly": True}
    required = [key.name, *(name for name in resource.required if name != key.name)]
    if resource.parent is not None and table.parent is not None:
        properties[resource.parent.field] = {**table.parent.key.schema(), "readOnly": True}
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
    written = ItemSchema(resource).required
    if written:
        given["required"] = written
    return {resource.name: item, f"{resource.name}-input": given}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operations(table: Table, template: str) -> dict[str, Any]:
    resource = table.resource
    name = resource.name
    item = {"$ref": f"#/components/schemas/{name}"}
    given = {"$ref": f"#/components/schemas/{name}-input"}
    # each parent parameter is typed by the key of the resource it names
    path_parameters: list[dict[str, Any]] = []
    above = table
    while above.parent is not None and above.resource.parent is not None:
        parameter = {"name": above.resource.parent.field, "in": "path", "required": True}
        path_parameters.insert(0, {**parameter, "schema": above.parent.key.schema()})
        above = above.parent
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
    key = {"name": table.key.name, "in": "path", "required": True, "schema": table.key.schema()}
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
    return {template: collection, f"{template}/{{{table.key.name}}}": one}


def openapi_document(resources: Sequence[Resource]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing every resource's endpoints."""
    by_name = {resource.name: resource for resource in resources}
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    tables = tables_of(resources)
    for resource in resources:
        table = tables[resource.name]
        paths.update(_operations(table, path_template(resource, by_name)))
        schemas.update(_schemas(table))
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
