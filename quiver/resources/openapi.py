"""The OpenAPI 3.1 document of the declared resources, built from their fields.

OpenAPI 3.1 schemas are JSON Schema 2020-12, so a field's declaration is its
schema as written.  Each resource gets four schemas: ``NAME`` (an item as read,
with the key, parent column and timestamps), ``NAME-listed`` (an item of a list,
which ``fields`` may cut down), ``NAME-input`` (what a client sends: the fields,
and the store's own keys as ``readOnly`` since PUT takes a fetched item back as it
came) and ``NAME-patch`` (a merge patch).  Every error answer is a ``Problem``
(RFC 9457).

The list parameters are those :mod:`quiver.resources.query` reads, and only
those: a documented parameter the server refused would send clients astray.
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
from quiver.resources.examples import example_item, example_value
from quiver.resources.storage import Table, tables_of
from quiver.resources.validate import ItemSchema

_JSON = "application/json"
_PROBLEM_JSON = "application/problem+json"
_MERGE_PATCH = "application/merge-patch+json"
_JSON_PATCH = "application/json-patch+json"
_SCALARS = ("string", "number", "integer", "boolean")

#: the problem document every refusal carries (quiver.proxy.problem)
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A problem document (RFC 9457).",
    "properties": {
        "type": {
            "type": "string",
            "format": "uri-reference",
            "description": "What kind of problem, e.g. `urn:quiver:problem:validation-failed`.",
        },
        "title": {"type": "string", "description": "The status's reason phrase."},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What was wrong with this request."},
        "instance": {"type": "string", "format": "uri-reference"},
        "request_id": {"type": "string", "description": "The request's X-Request-ID."},
        "errors": {
            "type": "array",
            "description": "Each part of the request that was refused.",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {
                        "type": "string",
                        "description": "Where in the body (RFC 6901), `/price` or `/0/price`.",
                    },
                    "parameter": {"type": "string", "description": "Which query parameter."},
                    "detail": {"type": "string", "description": "What is wrong with it."},
                },
                "required": ["detail"],
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}
#: the refusals of resource routes (quiver.resources.errors), by status
_ERRORS = {
    "400": ("bad-request", "A query parameter or a body that cannot be read."),
    "404": ("not-found", "No such item, or no such parent item."),
    "405": ("method-not-allowed", "The path does not take this method (Allow lists those)."),
    "409": ("conflict", "A unique value is taken, the item has children, or a test failed."),
    "412": ("precondition-failed", "If-Match names another version of the item."),
    "415": ("unsupported-media-type", "The body is not in a content type the method takes."),
    "422": ("unprocessable", "The item breaks its fields; `errors` points at each failure."),
    "428": ("precondition-required", "The resource requires If-Match on writes."),
}
_HEADERS: dict[str, Any] = {
    "ETag": {
        "description": "A strong validator of the representation (RFC 9110 §8.8.3), for "
        "If-None-Match on reads and If-Match on writes.",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'The pages around this one (RFC 8288): rel="first", and "prev" and '
        '"next" when there are such pages.',
        "schema": {"type": "string"},
    },
    "X-Total-Count": {
        "description": "How many items match the filters, when `count=true` was sent.",
        "schema": {"type": "integer", "minimum": 0},
    },
    "Location": {"description": "The created item's URL.", "schema": {"type": "string"}},
}


def _problems(*statuses: str) -> dict[str, Any]:
    return {status: {"$ref": f"#/components/responses/{_ERRORS[status][0]}"} for status in statuses}


def _headers(*names: str, required: tuple[str, ...] = ("ETag",)) -> dict[str, Any]:
    return {name: {**_HEADERS[name], "required": name in required} for name in names}


def _json(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if example is not None:
        media["example"] = example
    return {_JSON: media}


# -- schemas -------------------------------------------------------------------------


def _managed(table: Table) -> dict[str, Any]:
    """The properties the store keeps: the key (unless given), parent and timestamps."""
    resource, key = table.resource, table.key
    properties: dict[str, Any] = {}
    if key.type != "given":  # (a given key is a field, as declared)
        properties[key.name] = {**key.schema(), "readOnly": True}
    if resource.parent is not None and table.parent is not None:
        properties[resource.parent.field] = {**table.parent.key.schema(), "readOnly": True}
    if resource.timestamps:
        for name in TIMESTAMPS:
            properties[name] = {"type": "string", "format": "date-time", "readOnly": True}
    return properties


def _schemas(table: Table) -> dict[str, Any]:
    resource = table.resource
    managed = _managed(table)
    properties = {**managed, **resource.fields}
    required = [table.key.name, *(name for name in resource.required if name != table.key.name)]
    required += [name for name in managed if name not in required]
    item = {"type": "object", "properties": properties, "required": required}
    listed = {
        "type": "object",
        "description": "An item of a list: only the keys `fields` names when it is sent.",
        "properties": properties,
    }
    ignored = "Kept by the store: ignored when an item is sent back (PUT), refused on create."
    given: dict[str, Any] = {
        "type": "object",
        "description": "The fields of an item. A field left out is stored empty or takes "
        "its default; null is no value of a typed field.",
        "properties": {
            **{name: {**schema, "description": ignored} for name, schema in managed.items()},
            **resource.fields,
        },
        "additionalProperties": False,
    }
    written = ItemSchema(resource).required
    if written:
        given["required"] = written
    # RFC 7396: a member set to null is removed (which a required field cannot be);
    # anything else replaces the field's value
    merged = {
        name: schema if name in written else {"anyOf": [schema, {"type": "null"}]}
        for name, schema in resource.fields.items()
    }
    patch = {
        "type": "object",
        "description": "JSON Merge Patch (RFC 7396): the fields to change; null empties one.",
        "properties": merged,
        "additionalProperties": False,
    }
    return {
        resource.name: item,
        f"{resource.name}-listed": listed,
        f"{resource.name}-input": given,
        f"{resource.name}-patch": patch,
    }


def _examples(table: Table) -> tuple[dict[str, Any], dict[str, Any]]:
    """An item as sent, and the same item as the server answers it."""
    sent = example_item(table.resource.fields)
    managed = {name: example_value(schema, name) for name, schema in _managed(table).items()}
    if table.key.type == "auto":
        managed[table.key.name] = 1
    return sent, {**managed, **sent}


# -- parameters ----------------------------------------------------------------------


def _query(name: str, description: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **more,
    }


def _listing(table: Table) -> list[dict[str, Any]]:
    """sort, fields, limit, page, cursor and count, as query.read_query takes them."""
    resource = table.resource
    columns = "|".join(table.types)
    sortable = "|".join(name for name, kind in table.types.items() if kind in _SCALARS)
    sort_key = f"[-+]?(?:{sortable})"
    return [
        _query(
            "sort",
            "Sort keys, comma-separated, `-` before one for descending: `-price,name`. "
            "Ties are broken by the key, ascending.",
            {"type": "string", "pattern": f"^{sort_key}(?:,{sort_key})*$"},
        ),
        _query(
            "fields",
            "Only these keys in each item, comma-separated: `id,name`.",
            {"type": "string", "pattern": f"^,*(?:{columns})(?:,+(?:{columns}))*,*$"},
        ),
        _query(
            "limit",
            f"Items per page ({resource.limit.default} when not sent).",
            {"type": "integer", "minimum": 1, "maximum": resource.limit.max},
        ),
        _query("page", "The page, from 1.", {"type": "integer", "minimum": 1}),
        _query(
            "cursor",
            "Keyset pagination, instead of `page`: empty for the first page, then the one "
            "in the `next` link. Sort only by fields that are never empty.",
            {"type": "string"},
        ),
        _query("count", "`true` adds X-Total-Count.", {"type": "boolean"}),
    ]


def _operators(kind: str) -> dict[str, str]:
    """The operators that filter a scalar field of type ``kind``, as query._filter has them."""
    operators = {"ne": "is not this"}
    if kind != "boolean":
        operators |= {"lt": "is below", "lte": "is at most", "gt": "is above", "gte": "is at least"}
    operators |= {"in": "is one of these", "nin": "is none of these"}
    if kind == "string":
        operators |= {
            "like": "matches this LIKE pattern (`%` any text, `_` one character)",
            "ilike": "matches this LIKE pattern, ignoring case",
        }
    return operators


def _filters(table: Table) -> list[dict[str, Any]]:
    """A parameter per scalar field and operator.  ``name[null]=true|false`` and the
    filters of array and object fields (which take only ``[null]``) are described in the
    list's text instead: they take true or false whatever the field's type, so a tool
    trying each parameter with a value of the field's type would be refused."""
    parameters = []
    for name, field in table.resource.fields.items():
        kind = field.get("type")
        if kind not in _SCALARS:
            continue
        typed = {"type": kind}
        parameters.append(_query(name, f"Only items whose {name} is this.", typed))
        for op, text in _operators(kind).items():
            schema, more = typed, {}
            if op in ("in", "nin"):  # comma-separated: name[in]=a,b
                schema, more = (
                    {"type": "array", "items": typed},
                    {"style": "form", "explode": False},
                )
            elif op in ("like", "ilike"):
                schema = {"type": "string"}
            described = f"Only items whose {name} {text}."
            parameters.append(_query(f"{name}[{op}]", described, schema, **more))
    return parameters


def _path_parameters(table: Table) -> list[dict[str, Any]]:
    """Each parent's parameter, typed by the key of the resource it names, root first."""
    parameters: list[dict[str, Any]] = []
    above = table
    while above.parent is not None and above.resource.parent is not None:
        parameter = {"name": above.resource.parent.field, "in": "path", "required": True}
        parameters.insert(0, {**parameter, "schema": above.parent.key.schema()})
        above = above.parent
    return parameters


# -- operations ----------------------------------------------------------------------

_LIST_TEXT = (
    "Filters combine with AND: `name=v` (equality) or `name[op]=v` for a scalar field. "
    "`name[null]=true` keeps only items without a value for the field, `name[null]=false` "
    "those with one; that is the only filter of an array or object field. The key, the "
    "parent column and the timestamps filter and sort as fields of their type do. "
    "Any other parameter is refused (400): a misspelt filter never passes for none."
)


def _collection(table: Table) -> dict[str, Any]:
    name = table.resource.name
    item = {"$ref": f"#/components/schemas/{name}"}
    listed = {"$ref": f"#/components/schemas/{name}-listed"}
    given = {"$ref": f"#/components/schemas/{name}-input"}
    sent, answered = _examples(table)
    bulk_body = {"oneOf": [given, {"type": "array", "items": given}]}
    created = {"oneOf": [item, {"type": "array", "items": item}]}
    return {
        "get": {
            "operationId": f"list-{name}",
            "description": _LIST_TEXT,
            "parameters": _listing(table) + _filters(table),
            "responses": {
                "200": {
                    "description": "A page of items.",
                    "headers": _headers("ETag", "Link", "X-Total-Count", required=("ETag", "Link")),
                    "content": _json({"type": "array", "items": listed}, [answered]),
                },
                "304": {"description": "Not modified.", "headers": _headers("ETag")},
                **_problems("400", "404"),
            },
        },
        "post": {
            "operationId": f"create-{name}",
            "description": "One item, or an array of items created all or none.",
            "requestBody": {
                "required": True,
                "content": {
                    _JSON: {
                        "schema": bulk_body,
                        "examples": {
                            "one": {"summary": "One item", "value": sent},
                            "many": {"summary": "Several items at once", "value": [sent]},
                        },
                    }
                },
            },
            "responses": {
                "201": {
                    "description": "Created: the item (Location names it), or the array of "
                    "items when an array was sent.",
                    "headers": _headers("ETag", "Location"),
                    "content": _json(created, answered),
                },
                **_problems("400", "404", "409", "415", "422"),
            },
        },
    }


#: RFC 6902 §4: one operation of a JSON Patch
_JSON_PATCH_OPERATION = {
    "type": "object",
    "properties": {
        "op": {"enum": ["add", "remove", "replace", "move", "copy", "test"]},
        "path": {"type": "string", "pattern": "^(/.*)?$", "description": "RFC 6901: `/tags/0`."},
        "from": {"description": "For move and copy: the location taken from (RFC 6901)."},
        "value": {"description": "For add, replace and test."},
    },
    "required": ["op", "path"],
}


def _patches(table: Table, sent: dict[str, Any]) -> dict[str, Any]:
    """The two patch media types, with an example changing one field (not a given key,
    which never changes)."""
    changeable = [name for name in sent if name != table.key.name]
    merge = {changeable[0]: sent[changeable[0]]} if changeable else {}
    operations = [{"op": "replace", "path": f"/{name}", "value": sent[name]} for name in merge]
    return {
        _MERGE_PATCH: {
            "schema": {"$ref": f"#/components/schemas/{table.resource.name}-patch"},
            "example": merge,
        },
        _JSON_PATCH: {
            "schema": {
                "type": "array",
                "description": "JSON Patch (RFC 6902): operations applied all or none.",
                "items": _JSON_PATCH_OPERATION,
            },
            "example": operations,
        },
    }


def _one(table: Table) -> dict[str, Any]:
    name = table.resource.name
    item = {"$ref": f"#/components/schemas/{name}"}
    given = {"$ref": f"#/components/schemas/{name}-input"}
    sent, answered = _examples(table)
    patches = _patches(table, sent)
    changed = {
        "description": "The item as stored now.",
        "headers": _headers("ETag"),
        "content": _json(item, answered),
    }
    writes = _problems("400", "404", "409", "412", "415", "422", "428")
    return {
        "get": {
            "operationId": f"get-{name}",
            "responses": {
                "200": {
                    "description": "The item.",
                    "headers": _headers("ETag"),
                    "content": _json(item, answered),
                },
                "304": {"description": "Not modified.", "headers": _headers("ETag")},
                **_problems("400", "404"),
            },
        },
        "put": {
            "operationId": f"replace-{name}",
            "description": "The whole item: a field left out is emptied (or takes its "
            "default). An item as fetched may be sent back: the store's keys are ignored.",
            "requestBody": {"required": True, "content": _json(given, sent)},
            "responses": {"200": changed, **writes},
        },
        "patch": {
            "operationId": f"patch-{name}",
            "requestBody": {"required": True, "content": patches},
            "responses": {"200": changed, **writes},
        },
        "delete": {
            "operationId": f"delete-{name}",
            "responses": {
                "204": {"description": "Deleted."},
                **_problems("400", "404", "409", "412", "428"),
            },
        },
    }


def _paths(table: Table, template: str) -> dict[str, Any]:
    parents = _path_parameters(table)
    key = {"name": table.key.name, "in": "path", "required": True, "schema": table.key.schema()}
    return {
        template: {"parameters": parents, **_collection(table)},
        f"{template}/{{{table.key.name}}}": {"parameters": [*parents, key], **_one(table)},
    }


def _components(schemas: dict[str, Any]) -> dict[str, Any]:
    problem = {"$ref": "#/components/schemas/Problem"}
    responses = {
        name: {"description": text, "content": {_PROBLEM_JSON: {"schema": problem}}}
        for name, text in _ERRORS.values()
    }
    return {
        "schemas": {**schemas, "Problem": PROBLEM_SCHEMA},
        "responses": responses,
    }


def openapi_document(resources: Sequence[Resource]) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing every resource's endpoints."""
    by_name = {resource.name: resource for resource in resources}
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    tables = tables_of(resources)
    for resource in resources:
        table = tables[resource.name]
        paths.update(_paths(table, path_template(resource, by_name)))
        schemas.update(_schemas(table))
    return {
        "openapi": "3.1.0",
        "info": {"title": "Resources", "version": "1"},
        "paths": paths,
        "components": _components(schemas),
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
