"""OpenAPI operations as MCP tools: reading documents, making requests, reading answers."""

from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from mcp import types

from quiver.mcp.contract import INVALID_PARAMS, McpError
from quiver.mcp.openapi_tools import (
    Operation,
    Operations,
    build_request,
    tool_result,
    tools_from_openapi,
)


def doc(paths: dict[str, Any], version: str = "3.1.0", **components: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"openapi": version, "info": {"title": "t", "version": "1"}}
    document["paths"] = paths
    if components:
        document["components"] = components
    return document


def one(operation: dict[str, Any], path: str = "/x", method: str = "get", **kw: Any) -> Operation:
    """The one tool of a document holding ``operation``; path variables the operation
    does not declare get string parameters."""
    declared = {p.get("name") for p in operation.get("parameters", [])}
    variables = re.findall(r"\{(\w+)\}", path)
    extra = [param(v, "path") for v in variables if v not in declared]
    if extra:
        operation = {**operation, "parameters": [*operation.get("parameters", []), *extra]}
    operations = tools_from_openapi(doc({path: {method: operation}}, **kw))
    assert len(operations) == 1, operations.skipped
    return operations[0]


def param(name: str, where: str = "query", schema: Any = None, **kw: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "schema": schema or {"type": "string"}, **kw}


def json_body(schema: Any, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def ok(schema: Any, code: str = "200") -> dict[str, Any]:
    return {code: {"description": "ok", "content": {"application/json": {"schema": schema}}}}


def assert_valid_tool(operation: Operation) -> None:
    tool = operation.tool()
    Draft202012Validator.check_schema(tool["inputSchema"])
    if "outputSchema" in tool:
        Draft202012Validator.check_schema(tool["outputSchema"])
    types.Tool.model_validate(tool)


# -- documents refused --------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a JSON object, not list"),
        ({"swagger": "2.0", "paths": {}}, "Swagger 2.0 documents are not supported"),
        ({"openapi": "2.0", "paths": {}}, "openapi version '2.0' is not supported"),
        ({"openapi": "3.2.0", "paths": {}}, "openapi version '3.2.0' is not supported"),
        ({"openapi": 3.1, "paths": {}}, "openapi version 3.1 is not supported"),
        ({"openapi": "3.1.0"}, "has no 'paths' object"),
        ({"openapi": "3.0.3", "paths": []}, "has no 'paths' object"),
    ],
)
def test_a_document_that_is_not_openapi_3_is_refused(document: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tools_from_openapi(document)


def test_a_remote_reference_is_refused_naming_it() -> None:
    document = doc({"/x": {"get": {"responses": ok({"$ref": "other.yaml#/Thing"})}}})
    with pytest.raises(ValueError, match=r"GET /x: \$ref 'other.yaml#/Thing' points outside"):
        tools_from_openapi(document)


def test_a_reference_that_does_not_resolve_is_refused() -> None:
    document = doc({"/x": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}}})
    with pytest.raises(ValueError, match="'#/components/parameters/Nope' does not resolve"):
        tools_from_openapi(document)


def test_a_reference_chain_that_loops_is_refused() -> None:
    parameters = {
        "A": {"$ref": "#/components/parameters/B"},
        "B": {"$ref": "#/components/parameters/A"},
    }
    document = doc(
        {"/x": {"get": {"parameters": [{"$ref": "#/components/parameters/A"}]}}},
        parameters=parameters,
    )
    with pytest.raises(ValueError, match="refers to itself"):
        tools_from_openapi(document)


def test_a_path_item_reference_is_followed_and_checked() -> None:
    items = {"get": {"operationId": "listItems"}}
    document = doc({"/items": {"$ref": "#/components/pathItems/Items"}}, pathItems={"Items": items})
    assert [o.name for o in tools_from_openapi(document)] == ["listItems"]
    document = doc({"/items": {"$ref": "#/components/pathItems/Nope"}})
    with pytest.raises(ValueError, match=r"path /items: .*does not resolve"):
        tools_from_openapi(document)


def test_an_operation_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match="GET /x is not an object"):
        tools_from_openapi(doc({"/x": {"get": ["no"]}}))


def test_an_empty_document_has_no_tools() -> None:
    assert tools_from_openapi(doc({})) == []


# -- operations and their names -----------------------------------------------------


def test_every_method_of_a_path_item_is_one_operation() -> None:
    methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]
    item: dict[str, Any] = {m: {"responses": {}} for m in methods}
    item["summary"] = "not an operation"
    operations = tools_from_openapi(doc({"/things": item, "x-extension": {}}))
    assert [o.method for o in operations] == [m.upper() for m in methods]
    assert [o.name for o in operations] == [f"{m}_things" for m in methods]


@pytest.mark.parametrize(
    ("operation_id", "method", "path", "name"),
    [
        ("listItems", "get", "/items", "listItems"),
        ("a.b-c_d", "get", "/items", "a.b-c_d"),
        (None, "get", "/items/{id}", "get_items_id"),
        (None, "post", "/a/{b}/c.json", "post_a_b_c.json"),
        (None, "get", "/", "get"),
        ("get items/{id}", "get", "/x", "get_items_id"),
        ("ünïcode", "get", "/x", "n_code"),
        ("日本", "delete", "/y/{z}", "delete_y_z"),
        ("a" * 200, "get", "/x", "a" * 128),
    ],
)
def test_a_tool_is_named_after_the_operation(
    operation_id: str | None, method: str, path: str, name: str
) -> None:
    operation: dict[str, Any] = {"responses": {}}
    if operation_id is not None:
        operation["operationId"] = operation_id
    assert one(operation, path, method).name == name


def test_a_generated_name_is_cut_to_128_characters_without_an_edge_underscore() -> None:
    path = "/" + "/".join(["abcdefghi"] * 20)
    name = one({"responses": {}}, path).name
    assert len(name) <= 128 and not name.endswith("_")


def test_two_operations_with_one_tool_name_are_refused_naming_both() -> None:
    document = doc(
        {
            "/a": {"get": {"operationId": "same"}},
            "/b": {"post": {"operationId": "same"}},
        }
    )
    with pytest.raises(ValueError, match=r"GET /a and POST /b would both be the tool 'same'"):
        tools_from_openapi(document)


def test_a_generated_name_clashing_with_an_operation_id_is_refused() -> None:
    document = doc({"/a": {"get": {}}, "/b": {"get": {"operationId": "get_a"}}})
    with pytest.raises(ValueError, match="GET /a and GET /b"):
        tools_from_openapi(document)


def test_description_joins_summary_and_description() -> None:
    operation = one({"summary": "List", "description": "Every item.", "responses": {}})
    assert operation.description == "List\n\nEvery item."
    assert one({"description": "Only this."}).description == "Only this."
    assert one({}, "/items/{id}").description == "GET /items/{id}"


def test_annotations_follow_the_method() -> None:
    methods = ["get", "head", "put", "delete", "post", "patch", "options"]
    item = {m: {"summary": f"{m} it"} for m in methods}
    tools = {o.method: o.tool()["annotations"] for o in tools_from_openapi(doc({"/x": item}))}
    assert tools["GET"] == {"title": "get it", "readOnlyHint": True, "idempotentHint": True}
    assert tools["HEAD"] == {"title": "head it", "readOnlyHint": True, "idempotentHint": True}
    assert tools["PUT"] == {"title": "put it", "idempotentHint": True}
    assert tools["DELETE"] == {
        "title": "delete it",
        "destructiveHint": True,
        "idempotentHint": True,
    }
    assert tools["POST"] == {"title": "post it"}
    assert tools["PATCH"] == {"title": "patch it"}
    assert tools["OPTIONS"]["readOnlyHint"] is True  # a safe method (RFC 9110 §9.2.1)


def test_a_tool_has_the_mcp_tool_shape() -> None:
    operation = one({"operationId": "getX", "summary": "Get", "responses": ok({"type": "object"})})
    tool = operation.tool()
    assert set(tool) == {"name", "description", "inputSchema", "outputSchema", "annotations"}
    assert tool["inputSchema"] == {"type": "object", "properties": {}}
    assert "outputSchema" not in one({"responses": ok({"type": "array"})}).tool()
    assert_valid_tool(operation)


# -- include and exclude ----------------------------------------------------------


NAMED = doc(
    {
        "/items": {"get": {"operationId": "listItems"}, "post": {"operationId": "createItem"}},
        "/items/{id}": {
            "parameters": [param("id", "path", required=True)],
            "get": {"operationId": "getItem"},
            "delete": {"operationId": "deleteItem"},
        },
        "/users": {"get": {"operationId": "list users"}},
    }
)


@pytest.mark.parametrize(
    ("include", "exclude", "names"),
    [
        (None, (), ["listItems", "createItem", "getItem", "deleteItem", "list_users"]),
        (["getItem"], (), ["getItem"]),
        (["list users"], (), ["list_users"]),  # the operationId as written
        (["GET /items/{id}"], (), ["getItem"]),
        (["get /items"], (), ["listItems"]),
        (["GET /items*"], (), ["listItems", "getItem"]),
        (["*Item*"], ["DELETE *"], ["listItems", "createItem", "getItem"]),
        (None, ["*Item*", "listItems"], ["list_users"]),
        (["getItem"], ["getItem"], []),
    ],
)
def test_include_and_exclude_pick_operations(
    include: list[str] | None, exclude: list[str], names: list[str]
) -> None:
    operations = tools_from_openapi(NAMED, include=include, exclude=exclude)
    assert [o.name for o in operations] == names


@pytest.mark.parametrize(
    ("include", "exclude", "message"),
    [
        (["getItems"], (), "include entry 'getItems' matches no operation"),
        (None, ["PUT /items"], "exclude entry 'PUT /items' matches no operation"),
        ("getItem", (), "include must be a list of patterns, not a string"),
    ],
)
def test_an_entry_matching_nothing_is_refused(
    include: Any, exclude: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        tools_from_openapi(NAMED, include=include, exclude=exclude)


def test_an_excluded_operation_is_not_read() -> None:
    document = copy.deepcopy(NAMED)
    document["paths"]["/items"]["post"]["requestBody"] = {"$ref": "http://elsewhere/body"}
    assert len(tools_from_openapi(document, exclude=["createItem"])) == 4
    with pytest.raises(ValueError, match="http://elsewhere/body"):
        tools_from_openapi(document)


# -- parameters ----------------------------------------------------------------------


def test_parameters_become_properties_and_path_ones_are_required() -> None:
    operation = one(
        {
            "parameters": [
                param("id", "path"),  # required although it does not say so
                param("limit", "query", {"type": "integer"}, description="at most"),
                param("X-Trace", "header", required=True),
                param("session", "cookie"),
                param("Authorization", "header"),
                param("accept", "header"),
            ]
        },
        "/items/{id}",
    )
    schema = operation.input_schema
    assert schema["properties"] == {
        "id": {"type": "string"},
        "limit": {"type": "integer", "description": "at most"},
        "X-Trace": {"type": "string"},
    }
    assert schema["required"] == ["id", "X-Trace"]
    assert "additionalProperties" not in schema


def test_operation_parameters_override_path_item_ones() -> None:
    document = doc(
        {
            "/items": {
                "parameters": [param("q", schema={"type": "string"}), param("page")],
                "get": {"parameters": [param("q", schema={"type": "integer"}, required=True)]},
            }
        }
    )
    [operation] = tools_from_openapi(document)
    assert operation.input_schema["properties"]["q"] == {"type": "integer"}
    assert operation.input_schema["properties"]["page"] == {"type": "string"}
    assert operation.input_schema["required"] == ["q"]


def test_parameters_of_one_name_in_two_locations_are_prefixed_by_location() -> None:
    operation = one(
        {"parameters": [param("id", "path"), param("id", "query"), param("other", "header")]},
        "/items/{id}",
    )
    assert list(operation.input_schema["properties"]) == ["path_id", "query_id", "other"]
    request = build_request(operation, {"path_id": "a", "query_id": "b"})
    assert request.target == "/items/a?id=b"


def test_parameters_resolve_through_references() -> None:
    document = doc(
        {"/items/{id}": {"get": {"parameters": [{"$ref": "#/components/parameters/Id"}]}}},
        parameters={"Id": param("id", "path", {"$ref": "#/components/schemas/Id"})},
        schemas={"Id": {"type": "integer", "minimum": 1}},
    )
    [operation] = tools_from_openapi(document)
    assert operation.input_schema["properties"]["id"] == {"type": "integer", "minimum": 1}


def test_a_path_variable_without_a_parameter_skips_the_operation() -> None:
    operations = tools_from_openapi(doc({"/items/{id}": {"get": {}}, "/ok": {"get": {}}}))
    assert [o.name for o in operations] == ["get_ok"]
    assert operations.skipped == [
        ("get_items_id", "GET /items/{id}: path variable {id} has no path parameter")
    ]


def test_a_path_parameter_missing_from_the_template_is_left_out() -> None:
    operation = one({"parameters": [param("ghost", "path")]}, "/items")
    assert operation.input_schema["properties"] == {}


def test_a_parameter_with_content_is_sent_as_json() -> None:
    content = {"application/json": {"schema": {"type": "object"}}}
    operation = one({"parameters": [{"name": "where", "in": "query", "content": content}]})
    request = build_request(operation, {"where": {"a": [1, "x y"]}})
    assert request.query == "where=%7B%22a%22%3A%5B1%2C%22x%20y%22%5D%7D"


# -- request bodies ------------------------------------------------------------------

ITEM = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
}


def test_a_json_object_body_is_spread_beside_the_parameters() -> None:
    operation = one(
        {"parameters": [param("id", "path")], "requestBody": json_body(ITEM)},
        "/items/{id}",
        "put",
    )
    assert operation.input_schema["properties"] == {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "size": {"type": "integer"},
    }
    assert operation.input_schema["required"] == ["id", "name"]
    request = build_request(operation, {"id": "7", "name": "x", "size": 2})
    assert request.body == b'{"name":"x","size":2}'
    assert request.content_type == "application/json"


def test_a_body_clashing_with_a_parameter_is_one_body_argument() -> None:
    operation = one(
        {"parameters": [param("name", "query")], "requestBody": json_body(ITEM)}, method="post"
    )
    assert operation.input_schema["properties"]["body"] == ITEM
    assert operation.input_schema["required"] == ["body"]
    request = build_request(operation, {"name": "q", "body": {"name": "b"}})
    assert (request.query, request.body) == ("name=q", b'{"name":"b"}')


def test_an_optional_body_with_required_properties_is_not_spread() -> None:
    operation = one({"requestBody": json_body(ITEM, required=False)}, method="post")
    assert operation.input_schema == {"type": "object", "properties": {"body": ITEM}}
    assert build_request(operation, {}).body == b""


def test_an_optional_body_without_required_properties_is_spread_and_sent_when_given() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    operation = one({"requestBody": json_body(schema, required=False)}, method="patch")
    assert operation.input_schema == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert build_request(operation, {}).body == b""
    assert build_request(operation, {"a": "x"}).body == b'{"a":"x"}'


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "array", "items": {"type": "string"}},
        {**ITEM, "additionalProperties": {"type": "string"}},
        {"allOf": [ITEM]},
        {"type": "string"},
    ],
)
def test_a_body_that_is_not_a_plain_object_is_one_body_argument(schema: dict[str, Any]) -> None:
    operation = one({"requestBody": json_body(schema)}, method="post")
    assert operation.input_schema["properties"] == {"body": schema}
    assert operation.body is not None and operation.body.argument == "body"


def test_the_body_argument_gives_way_to_a_parameter_named_body() -> None:
    operation = one(
        {"parameters": [param("body")], "requestBody": json_body({"type": "array"})},
        method="post",
    )
    assert list(operation.input_schema["properties"]) == ["body", "request_body"]
    request = build_request(operation, {"body": "q", "request_body": [1]})
    assert (request.query, request.body) == ("body=q", b"[1]")


def test_a_body_reference_and_its_description_are_followed() -> None:
    document = doc(
        {"/x": {"post": {"requestBody": {"$ref": "#/components/requestBodies/Tags"}}}},
        requestBodies={
            "Tags": {
                "description": "the tags",
                "content": {"application/json": {"schema": {"type": "array"}}},
            }
        },
    )
    [operation] = tools_from_openapi(document)
    assert operation.input_schema["properties"]["body"] == {
        "description": "the tags",
        "type": "array",
    }
    assert "required" not in operation.input_schema


def test_json_is_preferred_among_several_media_types() -> None:
    body = {
        "content": {
            "text/plain": {},
            "application/vnd.api+json": {"schema": {"type": "object"}},
        }
    }
    operation = one({"requestBody": body}, method="post")
    assert operation.body is not None
    assert operation.body.media_type == "application/vnd.api+json"


def test_a_text_body_is_a_string() -> None:
    body = {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}
    operation = one({"requestBody": body}, method="post")
    assert operation.input_schema["properties"]["body"] == {"type": "string"}
    request = build_request(operation, {"body": "héllo"})
    assert request.body == "héllo".encode()
    assert request.content_type == "text/plain; charset=utf-8"


def test_a_form_body_is_an_object_sent_url_encoded() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "array"}}}
    body = {"content": {"application/x-www-form-urlencoded": {"schema": schema}}}
    operation = one({"requestBody": body}, method="post")
    assert operation.input_schema["properties"]["body"] == schema
    request = build_request(operation, {"body": {"a": "x y&z", "b": [1, True]}})
    assert request.body == b"a=x%20y%26z&b=1&b=true"
    assert request.content_type == "application/x-www-form-urlencoded"


@pytest.mark.parametrize("media_type", ["multipart/form-data", "application/octet-stream"])
def test_a_body_a_tool_call_cannot_carry_skips_the_operation(media_type: str) -> None:
    document = doc(
        {
            "/upload": {"post": {"requestBody": {"content": {media_type: {}}}}},
            "/ok": {"get": {}},
        }
    )
    operations = tools_from_openapi(document)
    assert isinstance(operations, Operations)
    assert [o.name for o in operations] == ["get_ok"]
    assert operations.skipped == [
        ("post_upload", f"POST /upload: a tool call cannot carry a {media_type} request body")
    ]


# -- schemas: references, recursion, dialects ----------------------------------------


def test_references_with_pointer_escapes_resolve() -> None:
    document = doc(
        {"/x": {"get": {"responses": ok({"$ref": "#/components/schemas/a~1b~0c"})}}},
        schemas={
            "a/b~c": {
                "type": "object",
                "properties": {"n": {"$ref": "#/components/schemas/N%20M"}},
            },
            "N M": {"type": "integer"},
        },
    )
    [operation] = tools_from_openapi(document)
    assert operation.output_schema == {"type": "object", "properties": {"n": {"type": "integer"}}}


TREE = {
    "Node": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
        },
    }
}


def test_a_recursive_schema_becomes_a_reference_into_defs() -> None:
    node = {"$ref": "#/components/schemas/Node"}
    document = doc(
        {"/tree": {"post": {"requestBody": json_body(node), "responses": ok(node)}}},
        schemas=TREE,
    )
    [operation] = tools_from_openapi(document)
    for schema in (operation.input_schema, operation.output_schema):
        assert schema is not None
        Draft202012Validator.check_schema(schema)
        assert schema["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
        assert schema["$defs"]["Node"]["properties"]["children"]["items"] == {
            "$ref": "#/$defs/Node"
        }
    validator = Draft202012Validator(operation.input_schema)
    validator.validate({"name": "a", "children": [{"name": "b", "children": [{"name": "c"}]}]})
    with pytest.raises(ValidationError):
        validator.validate({"name": "a", "children": [{"children": [{"name": 3}]}]})
    request = build_request(operation, {"name": "a", "children": [{"name": "b"}]})
    assert json.loads(request.body) == {"name": "a", "children": [{"name": "b"}]}
    with pytest.raises(McpError, match="'children'"):
        build_request(operation, {"name": "a", "children": [{"name": 1}]})


def test_mutually_recursive_schemas_end() -> None:
    schemas = {
        "Person": {
            "type": "object",
            "properties": {"employer": {"$ref": "#/components/schemas/Company"}},
        },
        "Company": {
            "type": "object",
            "properties": {
                "staff": {"type": "array", "items": {"$ref": "#/components/schemas/Person"}}
            },
        },
    }
    operation = one({"responses": ok({"$ref": "#/components/schemas/Person"})}, schemas=schemas)
    schema = operation.output_schema
    assert schema is not None
    Draft202012Validator.check_schema(schema)
    assert set(schema["$defs"]) == {"Person"}
    validator = Draft202012Validator(schema)
    validator.validate({"employer": {"staff": [{"employer": {"staff": []}}]}})
    with pytest.raises(ValidationError):
        validator.validate({"employer": {"staff": [{"employer": {"staff": 1}}]}})


def test_openapi_30_keywords_become_json_schema() -> None:
    schema = {
        "type": "object",
        "discriminator": {"propertyName": "kind"},
        "xml": {"name": "thing"},
        "externalDocs": {"url": "https://example.com"},
        "x-internal": True,
        "properties": {
            "a": {"type": "string", "nullable": True, "example": "x"},
            "b": {"type": "string", "enum": ["x", "y"], "nullable": True},
            "c": {"allOf": [{"type": "integer"}], "nullable": True},
            "d": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "e": {"type": "number", "maximum": 9, "exclusiveMaximum": False},
            "id": {"type": "integer", "readOnly": True},
            "secret": {"type": "string", "writeOnly": True},
        },
        "required": ["id", "secret"],
    }
    operation = one(
        {"requestBody": json_body(schema), "responses": ok(schema)},
        method="post",
        version="3.0.3",
    )
    assert operation.input_schema["properties"] == {
        "a": {"type": ["string", "null"], "examples": ["x"]},
        "b": {"type": ["string", "null"], "enum": ["x", "y", None]},
        "c": {"anyOf": [{"allOf": [{"type": "integer"}]}, {"type": "null"}]},
        "d": {"type": "number", "exclusiveMinimum": 0},
        "e": {"type": "number", "maximum": 9},
        "secret": {"type": "string", "writeOnly": True},
    }
    assert operation.input_schema["required"] == ["secret"]
    output = operation.output_schema
    assert output is not None
    assert set(output["properties"]) == {"a", "b", "c", "d", "e", "id"}
    assert output["required"] == ["id"]
    assert set(output) == {"type", "properties", "required"}
    assert_valid_tool(operation)
    validator = Draft202012Validator(operation.input_schema)
    validator.validate({"a": None, "b": None, "c": None, "d": 1, "secret": "s"})
    with pytest.raises(ValidationError):
        validator.validate({"d": 0, "secret": "s"})


def test_openapi_31_schemas_are_kept_as_json_schema() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"const": 1, "examples": [1]},
            "c": {"$ref": "#/components/schemas/C", "description": "the c"},
            "d": {"$ref": "#/components/schemas/C", "minimum": 3},
        },
    }
    operation = one(
        {"responses": ok(schema)}, schemas={"C": {"type": "integer", "description": "a c"}}
    )
    assert operation.output_schema == {
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": {"const": 1, "examples": [1]},
            "c": {"type": "integer", "description": "the c"},
            "d": {"minimum": 3, "allOf": [{"type": "integer", "description": "a c"}]},
        },
    }


def test_openapi_30_ignores_the_siblings_of_a_reference() -> None:
    schema = {"$ref": "#/components/schemas/C", "description": "ignored"}
    operation = one(
        {"responses": ok(schema)},
        version="3.0.0",
        schemas={"C": {"type": "object", "description": "kept"}},
    )
    assert operation.output_schema == {"type": "object", "description": "kept"}


def test_data_keywords_are_not_read_as_schemas() -> None:
    schema = {
        "type": "object",
        "default": {"properties": {"$ref": "#/nowhere"}},
        "enum": [{"$ref": "#/nowhere"}],
    }
    assert one({"responses": ok(schema)}).output_schema == schema


# -- output schemas --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("responses", "expected"),
    [
        (ok({"type": "object"}), {"type": "object"}),
        (ok({"type": "object"}, "201"), {"type": "object"}),
        (ok({"type": "object"}, "2XX"), {"type": "object"}),
        ({**ok({"type": "array"}, "200"), **ok({"type": "object"}, "201")}, None),
        ({**ok({"type": "object"}, "2XX"), **ok({"type": "string"}, "204")}, None),
        ({"204": {"description": "none"}, **ok({"type": "object"}, "201")}, {"type": "object"}),
        ({**ok({"type": "object"}, "404"), **ok({"type": "object"}, "default")}, None),
        ({"200": {"content": {"text/plain": {"schema": {"type": "object"}}}}}, None),
        ({"200": {"content": {"application/json": {}}}}, None),
        (ok({"type": "object", "nullable": True}), {"type": "object"}),  # 3.1: not a keyword
    ],
)
def test_the_output_schema_is_the_first_2xx_json_object(
    responses: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    assert one({"responses": responses}).output_schema == expected


def test_a_nullable_object_in_openapi_30_has_no_output_schema() -> None:
    operation = one({"responses": ok({"type": "object", "nullable": True})}, version="3.0.1")
    assert operation.output_schema is None


def test_responses_resolve_through_references() -> None:
    document = doc(
        {"/x": {"get": {"responses": {"200": {"$ref": "#/components/responses/Ok"}}}}},
        responses={"Ok": ok({"type": "object", "properties": {"n": {"type": "integer"}}})["200"]},
    )
    [operation] = tools_from_openapi(document)
    assert operation.output_schema == {"type": "object", "properties": {"n": {"type": "integer"}}}


# -- building requests ---------------------------------------------------------------


PATHS = one(
    {"parameters": [param("a", "path"), param("b", "path", {"type": "integer"})]}, "/x/{a}/y/{b}"
)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("plain", "plain"),
        ("a/b", "a%2Fb"),
        ("a b?c#d", "a%20b%3Fc%23d"),
        ("~-._", "~-._"),
        ("é", "%C3%A9"),
        ("%2F", "%252F"),
        ("a;b=c,d", "a%3Bb%3Dc%2Cd"),
        ("...", "..."),
    ],
)
def test_path_values_are_percent_encoded(value: str, encoded: str) -> None:
    request = build_request(PATHS, {"a": value, "b": 3})
    assert request.path == f"/x/{encoded}/y/3"


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_a_path_value_that_would_change_the_path_is_refused(value: str) -> None:
    with pytest.raises(McpError, match="argument 'a'") as caught:
        build_request(PATHS, {"a": value, "b": 1})
    assert caught.value.code == INVALID_PARAMS


def test_a_null_path_value_is_refused() -> None:
    operation = one(
        {"parameters": [param("a", "path", {"type": "string", "nullable": True})]},
        "/x/{a}",
        version="3.0.3",
    )
    with pytest.raises(McpError, match="argument 'a' cannot be null"):
        build_request(operation, {"a": None})


def test_path_styles() -> None:
    operation = one(
        {
            "parameters": [
                param("s", "path", {"type": "array"}),
                param("l", "path", {"type": "array"}, style="label"),
                param("m", "path", {"type": "array"}, style="matrix", explode=True),
                param("o", "path", {"type": "object"}, explode=True),
            ]
        },
        "/{s}/{l}/{m}/{o}",
    )
    request = build_request(
        operation, {"s": ["a", "b/c"], "l": [1, 2], "m": [True], "o": {"k": "v w"}}
    )
    assert request.path == "/a,b%2Fc/.1,2/;m=true/k=v%20w"


QUERY = one(
    {
        "parameters": [
            param("tags", schema={"type": "array"}),
            param("ids", schema={"type": "array"}, explode=False),
            param("words", schema={"type": "array"}, style="spaceDelimited"),
            param("flag", schema={"type": "boolean"}),
            param("n", schema={"type": "number"}),
            param("filter", schema={"type": "object"}, style="deepObject", explode=True),
            param("where", schema={"type": "object"}),
            param("raw", allowReserved=True),
            param("maybe", schema={"type": ["string", "null"]}),
        ]
    }
)


@pytest.mark.parametrize(
    ("arguments", "query"),
    [
        ({}, ""),
        ({"tags": ["a", "b c"]}, "tags=a&tags=b%20c"),
        ({"tags": []}, ""),
        ({"ids": [1, 2, 3]}, "ids=1,2,3"),
        ({"words": ["x", "y"]}, "words=x%20y"),
        ({"flag": True, "n": 1.5}, "flag=true&n=1.5"),
        ({"flag": False}, "flag=false"),
        ({"filter": {"tag": "a&b", "n": 2}}, "filter%5Btag%5D=a%26b&filter%5Bn%5D=2"),
        ({"where": {"a": 1}}, "where=%7B%22a%22%3A1%7D"),
        ({"raw": "a/b?c=d"}, "raw=a/b?c=d"),
        ({"maybe": None}, ""),
        ({"tags": ["x"], "flag": True}, "tags=x&flag=true"),
    ],
)
def test_query_strings_are_encoded_by_style(arguments: dict[str, Any], query: str) -> None:
    request = build_request(QUERY, arguments)
    assert request.query == query
    assert request.target == (f"/x?{query}" if query else "/x")


HEADERS = one(
    {
        "parameters": [
            param("X-Id", "header", {"type": "integer"}),
            param("X-Tags", "header", {"type": "array"}),
            param("X-Flag", "header", {"type": "boolean"}),
            param("X-Text", "header"),
        ]
    }
)


def test_header_parameters_become_fields() -> None:
    request = build_request(
        HEADERS, {"X-Id": 5, "X-Tags": ["a", "b"], "X-Flag": False, "X-Text": "  hi\tthere "}
    )
    assert request.headers == [
        ("X-Id", "5"),
        ("X-Tags", "a,b"),
        ("X-Flag", "false"),
        ("X-Text", "hi\tthere"),
    ]
    assert (request.body, request.content_type) == (b"", None)


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\x00b", "a\x7fb"])
def test_a_header_value_with_a_control_character_is_refused(value: str) -> None:
    with pytest.raises(McpError, match="argument 'X-Text' holds a control character") as caught:
        build_request(HEADERS, {"X-Text": value})
    assert caught.value.code == INVALID_PARAMS


def test_a_header_array_item_with_a_line_break_is_refused() -> None:
    with pytest.raises(McpError, match="X-Tags"):
        build_request(HEADERS, {"X-Tags": ["ok", "bad\r\nX: y"]})


def test_a_header_parameter_with_an_invalid_name_skips_the_operation() -> None:
    operations = tools_from_openapi(
        doc({"/x": {"get": {"parameters": [param("X Bad", "header")]}}})
    )
    assert operations == []
    assert "header parameter 'X Bad' is not a valid field name" in operations.skipped[0][1]


def test_the_method_is_the_operation_method() -> None:
    operation = one({}, method="delete")
    assert build_request(operation, {}).method == "DELETE"


# -- arguments checked --------------------------------------------------------------


CHECKED = one(
    {
        "parameters": [
            param("id", "path", {"type": "integer", "minimum": 1}),
            param("limit", schema={"type": "integer", "maximum": 10}),
        ],
        "requestBody": json_body(ITEM),
    },
    "/items/{id}",
    "put",
)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": "x"}, "argument 'id' of put_items_id is required"),
        ({"id": 1}, "argument 'name' of put_items_id is required"),
        ({"id": 0, "name": "x"}, "argument 'id' of put_items_id: 0 is less than the minimum of 1"),
        ({"id": "1", "name": "x"}, "argument 'id' of put_items_id: '1' is not of type 'integer'"),
        ({"id": 1, "name": "x", "limit": 11}, "argument 'limit'"),
        ({"id": 1, "name": 2}, "argument 'name'"),
        ({"id": 1, "name": "x", "extra": 1}, "put_items_id has no argument 'extra'"),
    ],
)
def test_arguments_that_do_not_fit_are_refused_naming_the_argument(
    arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(McpError) as caught:
        build_request(CHECKED, arguments)
    assert caught.value.code == INVALID_PARAMS
    assert message in caught.value.message


def test_arguments_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(McpError, match="must be an object"):
        build_request(CHECKED, ["id"])  # type: ignore[arg-type]


def test_a_fitting_call_is_built() -> None:
    request = build_request(CHECKED, {"id": 3, "name": "n", "size": 1, "limit": 2})
    assert (request.method, request.target) == ("PUT", "/items/3?limit=2")
    assert json.loads(request.body) == {"name": "n", "size": 1}


# -- results ------------------------------------------------------------------------------


PLAIN = one({"operationId": "plain"})
TYPED = one({"operationId": "typed", "responses": ok({"type": "object"})})


def result_of(
    operation: Operation, status: int, content_type: str | None, body: bytes
) -> dict[str, Any]:
    result = tool_result(operation, status, content_type, body)
    types.CallToolResult.model_validate(result)
    return result


def test_a_json_object_answer_is_text_and_structured_content() -> None:
    result = result_of(TYPED, 200, "application/json; charset=utf-8", b'{"a": [1, 2]}')
    assert result == {
        "content": [{"type": "text", "text": '{"a": [1, 2]}'}],
        "structuredContent": {"a": [1, 2]},
        "isError": False,
    }


def test_a_json_array_answer_is_text_only() -> None:
    result = result_of(PLAIN, 200, "application/vnd.x+json", b"[1,2]")
    assert result == {"content": [{"type": "text", "text": "[1,2]"}], "isError": False}


def test_a_non_object_answer_to_a_tool_with_an_output_schema_is_an_error() -> None:
    result = result_of(TYPED, 200, "application/json", b"[1]")
    assert result["isError"] is True
    assert "structuredContent" not in result
    assert result["content"][0]["text"].endswith("not the object its document describes:\n[1]")


def test_invalid_json_is_answered_as_text() -> None:
    result = result_of(PLAIN, 200, "application/json", b"{nope")
    assert result == {"content": [{"type": "text", "text": "{nope"}], "isError": False}


def test_an_empty_answer_is_one_empty_text() -> None:
    expected = {"content": [{"type": "text", "text": ""}], "isError": False}
    assert result_of(PLAIN, 204, None, b"") == expected
    assert result_of(PLAIN, 200, "application/json", b"") == expected


@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/plain", b"hello", "hello"),
        ("text/html; charset=iso-8859-1", "café".encode("latin-1"), "café"),
        ("application/xml", b"<a/>", "<a/>"),
        ("text/plain; charset=nonsense", b"ok", "ok"),
        (None, "plain ü".encode(), "plain ü"),
    ],
)
def test_a_text_answer_is_one_text_content(
    content_type: str | None, body: bytes, text: str
) -> None:
    result = result_of(PLAIN, 200, content_type, body)
    assert result == {"content": [{"type": "text", "text": text}], "isError": False}


def test_an_image_answer_is_image_content() -> None:
    png = b"\x89PNG\r\n\x1a\nrest"
    result = result_of(PLAIN, 200, "image/png", png)
    assert result["content"] == [
        {"type": "image", "data": base64.b64encode(png).decode(), "mimeType": "image/png"}
    ]


def test_an_audio_answer_is_audio_content() -> None:
    result = result_of(PLAIN, 200, "audio/wav", b"RIFF")
    assert result["content"][0]["type"] == "audio"


@pytest.mark.parametrize(
    ("content_type", "mime"),
    [("application/pdf", "application/pdf"), (None, "application/octet-stream")],
)
def test_other_binary_answers_are_embedded_resources(content_type: str | None, mime: str) -> None:
    data = b"\xff\xfe\x00binary"
    result = result_of(PLAIN, 200, content_type, data)
    assert result["content"] == [
        {
            "type": "resource",
            "resource": {
                "uri": "openapi://plain/result",
                "mimeType": mime,
                "blob": base64.b64encode(data).decode(),
            },
        }
    ]
    assert result["isError"] is False


def test_a_problem_document_answer_is_an_error_with_its_title_and_detail() -> None:
    problem = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no item 7"}
    result = result_of(TYPED, 404, "application/problem+json", json.dumps(problem).encode())
    assert result == {
        "isError": True,
        "content": [{"type": "text", "text": "HTTP 404: Not Found: no item 7"}],
        "structuredContent": problem,
    }


def test_a_json_error_without_title_is_its_text() -> None:
    result = result_of(PLAIN, 422, "application/json", b'{"errors": ["bad"]}')
    assert result["content"] == [{"type": "text", "text": 'HTTP 422: {"errors": ["bad"]}'}]
    assert result["structuredContent"] == {"errors": ["bad"]}


def test_a_long_error_body_is_cut() -> None:
    result = result_of(PLAIN, 500, "text/plain", b"x" * 20000)
    text = result["content"][0]["text"]
    assert text.startswith("HTTP 500: xxx") and text.endswith(" [cut]")
    assert len(text) < 8300
    assert "structuredContent" not in result


def test_an_empty_or_binary_error_body_says_the_status() -> None:
    assert result_of(PLAIN, 503, None, b"")["content"] == [{"type": "text", "text": "HTTP 503"}]
    result = result_of(PLAIN, 502, "application/octet-stream", b"\x00\x01")
    assert result["content"] == [
        {"type": "text", "text": "HTTP 502: 2 bytes of application/octet-stream"}
    ]


def test_a_redirect_is_an_error() -> None:
    assert result_of(PLAIN, 302, "text/plain", b"moved")["isError"] is True
