"""request-validator: config validation, the checks on their own, then through the proxy."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest

from quiver.errors import BadRequest, ConfigError
from quiver.plugins.base import PluginContext
from quiver.plugins.consumers import Consumers
from quiver.plugins.request_validator import RequestValidator
from quiver.plugins.request_validator.params import Param, coerce, gather
from quiver.plugins.request_validator.problems import (
    InvalidRequest,
    MethodNotAllowed,
    UnknownOperation,
)
from quiver.plugins.request_validator.schemas import pointer
from quiver.proxy.problem import problem_body
from tests.support.catalog import load_config_text
from tests.support.problems import assert_problem
from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Upstream, echo

ITEMS = Path(__file__).resolve().parent / "openapi" / "items.yaml"
ITEM = {
    "type": "object",
    "required": ["name", "price"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "price": {"type": "number", "minimum": 0},
    },
}
ORDER = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ITEM}},
    "additionalProperties": False,
}
LIMIT = {
    "type": "object",
    "required": ["limit"],
    "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 100}},
}
JSON_TYPE = [(b"Content-Type", b"application/json")]
TENANT = {
    "type": "object",
    "required": ["x-tenant"],
    "properties": {"x-tenant": {"type": "string", "pattern": "^[a-z]+$"}},
}


def document(paths: dict[str, Any], version: str = "3.1.0", **extra: Any) -> dict[str, Any]:
    return {"openapi": version, "info": {"title": "t", "version": "1"}, "paths": paths, **extra}


def path_param(style: str | None = None) -> dict[str, Any]:
    param: dict[str, Any] = {"name": "id", "in": "path", "required": True}
    param["schema"] = {"type": "integer"}
    if style:
        param["style"] = style
    return param


SIMPLE = document({"/items/{id}": {"get": {"parameters": [path_param()]}}})


# -- config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"body": ORDER},
        {"body": ORDER, "body_required": False},
        {"body": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}},
        {"body": {"$defs": {"n": {"type": "integer"}}, "items": {"$ref": "#/$defs/n"}}},
        {"query": LIMIT},
        {"headers": TENANT},
        {"body": ORDER, "query": LIMIT, "headers": TENANT},
        {"openapi": SIMPLE},
        {"openapi": str(ITEMS)},
        {"openapi": str(ITEMS), "base_path": "/v1/", "reject_unknown_operations": True},
        {"openapi": document({}, "3.0.3")},
        {"openapi": {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}}},
    ],
)
def test_valid_configs(settings: dict[str, Any]) -> None:
    RequestValidator.Config.model_validate(settings)


def bad_param(**changes: Any) -> dict[str, Any]:
    param = {"name": "q", "in": "query", "schema": {"type": "string"}, **changes}
    return document({"/x/{id}": {"get": {"parameters": [path_param(), param]}}})


@pytest.mark.parametrize(
    "settings, message",
    [
        ({}, "give 'openapi', or a schema in 'body', 'query' or 'headers'"),
        ({"body": {"type": "integr"}}, "body/type: not a valid JSON Schema"),
        ({"query": {"properties": {"limit": {"minimum": "0"}}}}, "query/properties/limit"),
        ({"body": {"$ref": "https://example.com/s.json"}}, "only references inside"),
        ({"body": {"$ref": "#/$defs/missing"}}, "'#/$defs/missing' refers to nothing"),
        ({"headers": {"properties": {"X-Tenant": {}}}}, "write header names in lowercase"),
        ({"headers": {"required": ["X-Tenant"]}}, "'X-Tenant' as 'x-tenant'"),
        ({"body": ORDER, "openapi": SIMPLE}, "give 'openapi' or 'body', not both"),
        ({"query": LIMIT, "base_path": "/v1"}, "'base_path' applies only with 'openapi'"),
        ({"query": LIMIT, "body_required": False}, "'body_required' applies only with 'body'"),
        ({"openapi": SIMPLE, "body_required": True}, "does not apply with 'openapi'"),
        ({"openapi": SIMPLE, "base_path": "v1"}, "write a plain path such as '/v1'"),
        ({"openapi": {"swagger": "2.0", "paths": {}}}, "Swagger 2.0 is not read"),
        ({"openapi": document({}, "3.2.0")}, "a 3.0.x or 3.1.x version"),
        ({"openapi": {**SIMPLE, "openapi": 3.0}}, "not 3.0"),
        ({"openapi": ["openapi"]}, "Input should be a valid dictionary"),
        ({"openapi": "no/such/openapi.yaml"}, "cannot read OpenAPI document"),
        ({"openapi": document({"items": {}})}, "path 'items' must start with '/'"),
        ({"openapi": bad_param(schema={"$ref": "#/components/schemas/Nope"})}, "refers to"),
        ({"openapi": bad_param(schema={"type": "strin"})}, "parameters/1/schema/type: not a"),
        ({"openapi": bad_param(**{"in": "body"})}, "needs a 'name' and an 'in'"),
        ({"openapi": bad_param(style="matrix")}, "style 'matrix' is not read in query"),
        ({"openapi": bad_param(schema={"type": "object"})}, "use style deepObject"),
        ({"openapi": bad_param(name="idd", **{"in": "path"})}, "'idd' is not in the path"),
        (
            {"openapi": document({}, "3.0.3", components={"schemas": {"A": {"minimum": "1"}}})},
            "#/components/schemas/A/minimum: not a valid JSON Schema",
        ),
        ({"openapi": SIMPLE, "schemas": {}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        RequestValidator.Config.model_validate(settings)


def test_an_unreadable_openapi_file_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "api.yaml"
    broken.write_text("openapi: [3.1.0\n")
    with pytest.raises(pydantic.ValidationError, match="not valid JSON or YAML"):
        RequestValidator.Config.model_validate({"openapi": str(broken)})
    as_json = tmp_path / "api.json"
    as_json.write_text(json.dumps(SIMPLE))
    RequestValidator.Config.model_validate({"openapi": str(as_json)})


def test_config_errors_name_the_plugin_and_the_problem() -> None:
    text = """
listen: 127.0.0.1:0
targets: [{name: b, url: "http://127.0.0.1:9"}]
routes:
  - name: r
    paths: [/]
    target: b
    plugins:
      request-validator:
        body: {type: object, properties: {price: {type: numbr}}}
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml")
    [issue] = caught.value.issues
    assert issue.location.startswith("routes[0].plugins.request-validator")
    assert "body/properties/price/type: not a valid JSON Schema" in issue.message


def routed_config(base_path: str, paths: list[str], *, level: str = "route") -> str:
    """A config whose request-validator (at ``level``) reads items.yaml with ``base_path``."""
    settings = json.dumps({"openapi": str(ITEMS), "base_path": base_path})
    on = {level: f"plugins: {{request-validator: {settings}}}"}
    return f"""
listen: 127.0.0.1:0
{on.get("global", "")}
targets:
  - name: b
    url: "http://127.0.0.1:9"
    {on.get("target", "")}
routes:
  - name: r
    paths: {json.dumps(paths)}
    target: b
    {on.get("route", "")}
"""


@pytest.mark.parametrize("level", ["route", "target", "global"])
@pytest.mark.parametrize(
    ("base_path", "paths"),
    [
        ("/v1", ["/api"]),  # requests of the route never start with the base path
        ("", ["/api"]),  # the document lists /items: a base path is needed
        ("/v1", ["=/v1/other"]),  # under it, but no operation has that path
        ("/v1", ["/v1/items/{id}/parts/{part}"]),  # deeper than any operation
    ],
)
def test_a_base_path_no_operation_can_match_under_is_a_config_error(
    base_path: str, paths: list[str], level: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(routed_config(base_path, paths, level=level), "quiver.yaml")
    [issue] = caught.value.issues
    prefix = {"route": "routes[0].", "target": "targets[0].", "global": ""}[level]
    assert issue.location == f"{prefix}plugins.request-validator.base_path"
    assert "every request would be let through unchecked" in issue.message
    assert issue.line is not None


@pytest.mark.parametrize(
    ("base_path", "paths"),
    [
        ("/v1", ["/v1"]),
        ("/v1", ["/"]),
        ("/v1", ["/api", "/v1/items"]),
        ("/v1", ["/v1/items/{id}"]),
        ("/v1", ["=/v1/items/mine"]),
        ("/v1", ["~^/(v1|v2)/"]),  # a regex: cannot tell, so trusted
        ("", ["/items"]),
        ("/v1/", ["/v1/items/"]),
    ],
)
def test_a_base_path_some_route_path_reaches_is_accepted(base_path: str, paths: list[str]) -> None:
    load_config_text(routed_config(base_path, paths), "quiver.yaml")


# -- the checks, on a request of our own ------------------------------------------------


@dataclass
class FakeRequest:
    """What the plugin reads of a request."""

    method: bytes = b"GET"
    raw_path: bytes = b"/"
    query: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes | None = None

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        values = [v for n, v in self.headers if n.lower() == name]
        return b", ".join(values) if values else default


def plugin(settings: dict[str, Any]) -> RequestValidator:
    config = RequestValidator.Config.model_validate(settings)
    return RequestValidator(config, PluginContext(consumers=Consumers([])))


def refusal(validator: RequestValidator, **request: Any) -> Exception:
    """What the plugin raises for the request (fails the test if it lets it pass)."""
    try:
        validator.access(FakeRequest(**request))  # type: ignore[arg-type]
    except Exception as exc:
        return exc
    raise AssertionError("the request passed")


def violations(settings: dict[str, Any] | RequestValidator, **request: Any) -> list[Any]:
    """The violations the plugin finds in the request ([] when it passes)."""
    validator = settings if isinstance(settings, RequestValidator) else plugin(settings)
    if "json" in request:
        request["body"] = json.dumps(request.pop("json")).encode()
        request.setdefault("headers", []).append((b"Content-Type", b"application/json"))
    try:
        validator.access(FakeRequest(**request))  # type: ignore[arg-type]
    except InvalidRequest as exc:
        return [(v["in"], v["pointer"], v["message"]) for v in exc.violations]
    return []


def test_every_body_violation_is_listed_with_its_pointer() -> None:
    order = {"items": [{"name": "", "price": -1}, {"price": "9"}], "coupon": "X"}
    assert violations({"body": ORDER}, method=b"POST", json=order) == [
        ("body", "/items/0/name", "must be at least 1 characters long"),
        ("body", "/items/0/price", "must be >= 0"),
        ("body", "/items/1/name", "is required"),
        ("body", "/items/1/price", "must be of type number"),
        ("body", "/coupon", "is not allowed"),
    ]
    assert violations({"body": ORDER}, method=b"POST", json={"items": []}) == []


def test_pointers_escape_tilde_and_slash_as_rfc_6901_says() -> None:
    assert pointer(["a/b", "m~n", 0]) == "/a~1b/m~0n/0"
    schema = {"additionalProperties": {"type": "integer"}}
    found = violations({"body": schema}, json={"a/b": "x", "m~n": 1})
    assert found == [("body", "/a~1b", "must be of type integer")]


@pytest.mark.parametrize(
    "headers, body, message",
    [
        ([(b"Content-Type", b"application/json")], b'{"items": [', "is not valid JSON"),
        ([(b"Content-Type", b"application/json")], b'{"items": NaN}', "is not valid JSON"),
        ([(b"Content-Type", b"application/json")], b"\xff", "is not valid JSON"),
        ([(b"Content-Type", b"text/plain")], b"{}", "has Content-Type text/plain; accepted"),
        ([], b"{}", "has no Content-Type; accepted: application/json, application/*+json"),
        ([(b"Content-Type", b"application/json")], b"", "is required"),
        ([], b"", "is required"),
        ([(b"Content-Type", b"application/json")], b"[" * 100_000, "nested too deeply"),
    ],
)
def test_a_body_that_cannot_be_checked_is_one_violation_of_the_whole(
    headers: list[tuple[bytes, bytes]], body: bytes, message: str
) -> None:
    [(where, at, text)] = violations({"body": ORDER}, headers=headers, body=body)
    assert (where, at) == ("body", "")
    assert message in text


def test_json_media_types_include_structured_suffixes_and_parameters() -> None:
    for media in (b"application/merge-patch+json", b"Application/JSON; charset=utf-8"):
        headers = [(b"Content-Type", media)]
        found = violations({"body": ORDER}, headers=headers, body=b'{"items": 1}')
        assert found == [("body", "/items", "must be of type array")]


def test_a_missing_body_passes_when_not_required() -> None:
    assert violations({"body": ORDER, "body_required": False}) == []


def test_a_body_schema_makes_the_plugin_read_bodies_and_others_do_not() -> None:
    assert plugin({"body": ORDER}).reads_body
    assert not plugin({"query": LIMIT, "headers": TENANT}).reads_body
    assert plugin({"openapi": str(ITEMS)}).reads_body
    assert not plugin({"openapi": SIMPLE}).reads_body


@pytest.mark.parametrize(
    "text, types, value",
    [
        ("10", {"integer"}, 10),
        ("-3", {"number"}, -3),
        ("2.5e3", {"number"}, 2500.0),
        ("2.5", {"integer"}, "2.5"),
        ("010", {"integer"}, "010"),
        ("nan", {"number"}, "nan"),
        ("1e999", {"number"}, "1e999"),
        ("true", {"boolean"}, True),
        ("True", {"boolean"}, "True"),
        ("", {"integer", "null"}, None),
        ("", {"string", "null"}, ""),
        ("7", {"string"}, "7"),
        ("7", {"string", "integer"}, 7),
        ("7", set(), "7"),
    ],
)
def test_parameter_text_is_converted_to_the_schema_type(
    text: str, types: set[str], value: Any
) -> None:
    assert coerce(text, frozenset(types)) == value
    assert type(coerce(text, frozenset(types))) is type(value)


def test_query_values_are_converted_and_checked() -> None:
    schema = {
        "type": "object",
        "required": ["limit"],
        "properties": {
            "limit": {"type": "integer", "maximum": 100},
            "ids": {"type": "array", "items": {"type": "integer"}},
            "$ok": {"type": "boolean"},
        },
    }
    settings = {"query": schema}
    assert violations(settings, query=b"limit=10&ids=1&ids=2&%24ok=true") == []
    assert violations(settings, query=b"limit=abc&ids=1&ids=x&%24ok=yes") == [
        ("query", "/limit", "must be of type integer"),
        ("query", "/ids/1", "must be of type integer"),
        ("query", "/$ok", "must be of type boolean"),
    ]
    assert violations(settings, query=b"limit=500") == [("query", "/limit", "must be <= 100")]
    assert violations(settings, query=b"") == [("query", "/limit", "is required")]
    assert violations(settings, query=b"limit=1&limit=2") == [
        ("query", "/limit", "must be given only once")
    ]


def test_header_names_are_lowercase_and_values_never_come_back() -> None:
    secret = b"Bearer s3cr3t-t0k3n"
    schema = {
        "type": "object",
        "required": ["x-tenant", "x-trace"],
        "properties": {
            "x-tenant": {"type": "string", "pattern": "^[a-z]+$"},
            "authorization": {"const": "Bearer expected"},
            "x-count": {"type": "integer", "maximum": 5},
        },
    }
    headers = [(b"X-Tenant", b"ACME-secret"), (b"Authorization", secret), (b"X-Count", b"9")]
    found = violations({"headers": schema}, headers=headers)
    assert found == [
        ("header", "/x-trace", "is required"),
        ("header", "/x-tenant", 'must match the pattern "^[a-z]+$"'),
        ("header", "/authorization", 'must be "Bearer expected"'),
        ("header", "/x-count", "must be <= 5"),
    ]
    shown = repr(found)
    assert "s3cr3t" not in shown and "ACME" not in shown


def test_repeated_header_fields_are_joined_and_split_for_arrays() -> None:
    schema = {"properties": {"x-ids": {"type": "array", "items": {"type": "integer"}}}}
    headers = [(b"X-Ids", b"1, 2"), (b"x-ids", b"3")]
    assert violations({"headers": schema}, headers=headers) == []
    headers = [(b"X-Ids", b"1,two")]
    found = violations({"headers": schema}, headers=headers)
    assert found == [("header", "/x-ids/1", "must be of type integer")]


def test_violations_are_capped_and_the_detail_counts_them_all() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    body = b"[" + b",".join([b'"x"'] * 150) + b"]"
    error = refusal(plugin({"body": schema}), body=body, headers=JSON_TYPE)
    assert isinstance(error, InvalidRequest)
    assert len(error.violations) == 100
    assert error.violations[99]["pointer"] == "/99"
    assert "150 places; the first 100 are listed" in error.detail


def test_formats_are_checked() -> None:
    schema = {
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "mail": {"format": "email"},
            "n": {"type": "integer", "format": "int32"},
        }
    }
    good = {"at": "2024-02-29T12:00:00.5+01:00", "mail": "a@example.com", "n": 2**31 - 1}
    assert violations({"body": schema}, json=good) == []
    bad = {"at": "2024-02-30T12:00:00Z", "mail": "nobody", "n": 2**31}
    assert violations({"body": schema}, json=bad) == [
        ("body", "/at", "must be a valid date-time"),
        ("body", "/mail", "must be a valid email"),
        ("body", "/n", "must be a valid int32"),
    ]


def test_the_problem_document_carries_the_violations_as_an_extension_member() -> None:
    error = InvalidRequest([{"in": "query", "pointer": "/limit", "message": "is required"}])
    problem = orjson.loads(problem_body(error, "rid-1"))
    assert problem == {
        "type": "urn:quiver:problem:invalid-request",
        "title": "Bad Request",
        "status": 400,
        "detail": "the request breaks its schema in 1 place",
        "request_id": "rid-1",
        "violations": [{"in": "query", "pointer": "/limit", "message": "is required"}],
    }
    clash = BadRequest("x", extensions={"status": 200, "title": "ok", "extra": [1]})
    assert orjson.loads(problem_body(clash, "r"))["status"] == 400  # never overridden
    assert orjson.loads(problem_body(clash, "r"))["extra"] == [1]


# -- OpenAPI ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def items() -> RequestValidator:
    return plugin({"openapi": str(ITEMS)})


GOOD_ITEM = {"name": "pen", "price": 1.5, "note": None, "color": None, "tags": ["a"]}


def test_an_operation_is_found_by_method_and_path_template(items: RequestValidator) -> None:
    tenant = [(b"X-Tenant", b"acme")]
    assert violations(items, raw_path=b"/items/7", headers=tenant) == []
    assert violations(items, raw_path=b"/items/0", headers=tenant) == [
        ("path", "/id", "must be >= 1")
    ]
    assert violations(items, raw_path=b"/items/seven", headers=tenant) == [
        ("path", "/id", "must be of type integer")
    ]
    # a concrete path comes before a template: "mine" is no id
    assert violations(items, raw_path=b"/items/mine") == []
    # the path is normalized first, parameters percent-decoded
    assert violations(items, raw_path=b"/items/./%37", headers=tenant) == []
    assert violations(items, raw_path=b"/items/%2D1", headers=tenant) == [
        ("path", "/id", "must be >= 1")
    ]
    # HEAD is checked as GET
    assert violations(items, method=b"HEAD", raw_path=b"/items/7") == [
        ("header", "/x-tenant", "is required")
    ]


def test_parameters_and_bodies_resolve_their_references(items: RequestValidator) -> None:
    assert violations(items, raw_path=b"/items", query=b"tag=a&tag=toolongtag") == [
        ("query", "/tag/1", "must be at most 8 characters long"),
        ("query", "/limit", "is required"),
    ]
    assert violations(items, method=b"POST", raw_path=b"/items", json=GOOD_ITEM) == []
    bad = {"name": "pen", "price": -1, "tags": ["a", "much-too-long"]}
    assert violations(items, method=b"POST", raw_path=b"/items", json=bad) == [
        ("body", "/price", "must be >= 0"),
        ("body", "/tags/1", "must be at most 8 characters long"),
    ]


def test_openapi_30_nullable_allows_null(items: RequestValidator) -> None:
    put = {"method": b"PUT", "raw_path": b"/items/1"}
    assert violations(items, **put, json={"name": "a", "price": 0, "note": None}) == []
    found = violations(items, **put, json={"name": None, "price": 0, "color": "blue"})
    assert found == [
        ("body", "/name", "must be of type string"),
        ("body", "/color", 'must be one of ["red", "green", null]'),
    ]


def test_bodies_of_the_operation_are_checked_by_media_type(items: RequestValidator) -> None:
    put = {"method": b"PUT", "raw_path": b"/items/1"}
    text = [(b"Content-Type", b"text/plain")]
    assert violations(items, **put, headers=text, body=b"anything") == []
    xml = [(b"Content-Type", b"application/xml")]
    assert violations(items, **put, headers=xml, body=b"<a/>") == [
        ("body", "", "has Content-Type application/xml; accepted: application/json, text/plain")
    ]
    assert violations(items, **put, body=b"") == [("body", "", "is required")]
    # an operation without requestBody leaves bodies alone
    tenant = [(b"X-Tenant", b"acme"), (b"Content-Type", b"application/json")]
    assert violations(items, raw_path=b"/items/1", headers=tenant, body=b"{") == []


def test_unknown_operations_pass_or_are_refused() -> None:
    assert violations({"openapi": SIMPLE}, raw_path=b"/elsewhere") == []
    assert violations({"openapi": SIMPLE}, method=b"DELETE", raw_path=b"/items/1") == []
    strict = plugin({"openapi": SIMPLE, "reject_unknown_operations": True})
    missing = refusal(strict, raw_path=b"/elsewhere")
    assert isinstance(missing, UnknownOperation) and missing.status_code == 404
    wrong = refusal(strict, method=b"DELETE", raw_path=b"/items/1")
    assert isinstance(wrong, MethodNotAllowed) and wrong.status_code == 405
    assert wrong.headers == ((b"Allow", b"GET, HEAD"),)


def test_the_base_path_is_taken_off_before_matching() -> None:
    settings = {"openapi": SIMPLE, "base_path": "/v1", "reject_unknown_operations": True}
    validator = plugin(settings)
    assert violations(validator, raw_path=b"/v1/items/3") == []
    assert violations(validator, raw_path=b"/v1/items/x") == [
        ("path", "/id", "must be of type integer")
    ]
    for outside in (b"/items/3", b"/v10/items/3"):
        assert isinstance(refusal(validator, raw_path=outside), UnknownOperation)


def operation(*params: dict[str, Any], **more: Any) -> RequestValidator:
    return plugin({"openapi": document({"/x": {"post": {"parameters": list(params), **more}}})})


def test_parameter_styles_are_read_as_openapi_serializes_them() -> None:
    ints = {"type": "array", "items": {"type": "integer"}}
    validator = operation(
        {"name": "a", "in": "query", "schema": ints, "explode": False},
        {"name": "p", "in": "query", "schema": ints, "style": "pipeDelimited"},
        {
            "name": "f",
            "in": "query",
            "style": "deepObject",
            "schema": {"type": "object", "properties": {"min": {"type": "integer"}}},
        },
        {"name": "X-Pairs", "in": "header", "explode": True, "schema": {"type": "object"}},
        {"name": "session", "in": "cookie", "required": True, "schema": {"type": "integer"}},
        {"name": "j", "in": "query", "content": {"application/json": {"schema": ints}}},
    )
    request = {"method": b"POST", "raw_path": b"/x"}
    good = b"a=1,2&p=3|4&f[min]=5&j=%5B1%5D"
    cookie = [(b"Cookie", b"theme=dark; session=42"), (b"X-Pairs", b"k=v, n=1")]
    assert violations(validator, **request, query=good, headers=cookie) == []
    bad = b"a=1,x&p=3|y&f[min]=low&j=%5B"
    found = violations(validator, **request, query=bad, headers=[(b"X-Pairs", b"k")])
    assert found == [
        ("query", "/j", "is not valid JSON"),
        ("query", "/a/1", "must be of type integer"),
        ("query", "/p/1", "must be of type integer"),
        ("query", "/f/min", "must be of type integer"),
        ("header", "/x-pairs", "must be written as name=value pairs separated by ','"),
        ("cookie", "/session", "is required"),
    ]


def test_gather_keeps_undeclared_values_as_text() -> None:
    raw = {"n": ["1"], "other": ["a", "b"], "e": [""]}
    values, problems = gather({"n": Param("n", types=frozenset({"integer"}))}, raw, "query")
    assert values == {"n": 1, "other": ["a", "b"], "e": ""}
    assert problems == []


def test_openapi_31_schemas_are_json_schema_2020_12() -> None:
    schema = {"type": ["string", "null"], "$ref": "#/components/schemas/Short"}
    doc = document(
        {"/x": {"post": {"requestBody": {"content": {"application/*": {"schema": schema}}}}}},
        components={"schemas": {"Short": {"maxLength": 2}}},
    )
    validator = plugin({"openapi": doc})
    request = {"method": b"POST", "raw_path": b"/x"}
    assert violations(validator, **request, json=None) == []
    assert violations(validator, **request, json="abc") == [
        ("body", "", "must be at most 2 characters long")
    ]
    assert violations(validator, **request, body=b"") == []  # not required


# -- through the proxy --------------------------------------------------------------------


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo) as upstream:
        yield upstream


def running(node: Upstream, settings: dict[str, Any], **extra: Any) -> RunningProxy:
    plugins = {"request-validator": settings, **extra.pop("plugins", {})}
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}]
    return RunningProxy(make_config({"b": node.url}, routes, **extra))


def listed(response: Response) -> list[tuple[str, str, str]]:
    problem = assert_problem(response, 400)
    assert problem["type"] == "urn:quiver:problem:invalid-request"
    return [(v["in"], v["pointer"], v["message"]) for v in problem["violations"]]


def post_json(client: Client, path: str, body: bytes) -> Response:
    return client.request("POST", path, {"Content-Type": "application/json"}, body=body)


def test_a_valid_body_reaches_the_node_unchanged(node: Upstream) -> None:
    body = b'{"items": [{"name": "pen", "price": 1.5}],  "x-order": 1}'
    schema = {**ORDER, "additionalProperties": True}
    with running(node, {"body": schema}) as proxy, Client(proxy.port) as client:
        response = post_json(client, "/orders", body)
    assert response.status == 200
    [seen] = node.requests
    assert seen.body == body
    assert seen.header("Content-Length") == str(len(body))


def test_an_invalid_body_is_refused_with_every_violation(node: Upstream) -> None:
    body = b'{"items": [{"name": "", "price": -1}, {"price": "9"}], "coupon": "X"}'
    with running(node, {"body": ORDER}) as proxy, Client(proxy.port) as client:
        response = post_json(client, "/orders", body)
        after = post_json(client, "/orders", b'{"items": []}')
    assert listed(response) == [
        ("body", "/items/0/name", "must be at least 1 characters long"),
        ("body", "/items/0/price", "must be >= 0"),
        ("body", "/items/1/name", "is required"),
        ("body", "/items/1/price", "must be of type number"),
        ("body", "/coupon", "is not allowed"),
    ]
    assert response.header("Connection") != "close"  # the same connection goes on
    assert after.status == 200
    assert [request.body for request in node.requests] == [b'{"items": []}']


def test_a_chunked_body_is_checked_whole(node: Upstream) -> None:
    with running(node, {"body": ORDER}) as proxy:
        for chunks, status in (
            ([b'{"items": [{"name"', b': "a", "price": 2}]}'], 200),
            ([b'{"items": [{"name"', b': "a", "price": -2}]}'], 400),
        ):
            with Client(proxy.port) as client:
                client.send(
                    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                )
                for chunk in chunks:
                    client.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                client.send(b"0\r\n\r\n")
                response = client.read_response()
            assert response.status == status
    [seen] = node.requests
    assert seen.body == b'{"items": [{"name": "a", "price": 2}]}'


def test_query_and_headers_are_checked_without_buffering_the_body(node: Upstream) -> None:
    settings = {"query": LIMIT, "headers": TENANT}
    with running(node, settings) as proxy, Client(proxy.port) as client:
        refused = client.request("GET", "/list?limit=0", {"X-Tenant": "ACME"})
        client.send(
            b"POST /list?limit=5 HTTP/1.1\r\nHost: t\r\nX-Tenant: acme\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        passed = client.read_response()
    assert listed(refused) == [
        ("query", "/limit", "must be >= 1"),
        ("header", "/x-tenant", 'must match the pattern "^[a-z]+$"'),
    ]
    assert b"ACME" not in refused.body
    assert passed.status == 200
    [seen] = node.requests
    assert seen.header("Transfer-Encoding") == "chunked"  # streamed, not read whole
    assert seen.body == b"abc"


def test_a_query_that_is_not_utf8_is_checked_and_forwarded_byte_for_byte(node: Upstream) -> None:
    query = "limit=5&sig=%FF%00&flag&q=a+b%2B&%FE=1"
    with running(node, {"query": LIMIT}) as proxy, Client(proxy.port) as client:
        passed = client.request("GET", f"/list?{query}")
        refused = client.request("GET", "/list?limit=%FF")
    assert passed.status == 200
    assert listed(refused) == [("query", "/limit", "must be of type integer")]
    assert [request.path for request in node.requests] == [f"/list?{query}"]


def test_an_openapi_path_parameter_is_checked(node: Upstream) -> None:
    with running(node, {"openapi": str(ITEMS)}) as proxy, Client(proxy.port) as client:
        bad = client.request("GET", "/items/abc", {"X-Tenant": "acme"})
        good = client.request("GET", "/items/12", {"X-Tenant": "acme"})
    assert listed(bad) == [("path", "/id", "must be of type integer")]
    assert good.status == 200
    assert [request.path for request in node.requests] == ["/items/12"]


def test_a_missing_required_query_parameter_is_a_violation(node: Upstream) -> None:
    with running(node, {"openapi": str(ITEMS)}) as proxy, Client(proxy.port) as client:
        missing = client.request("GET", "/items?tag=a")
        given = client.request("GET", "/items?limit=5&tag=a")
    assert listed(missing) == [("query", "/limit", "is required")]
    assert given.status == 200


def test_a_body_is_required_even_on_a_get(node: Upstream) -> None:
    with running(node, {"body": ORDER}) as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/orders")
    assert listed(response) == [("body", "", "is required")]
    assert node.requests == []


def test_a_body_over_the_buffered_limit_is_refused_before_validation(node: Upstream) -> None:
    limits = {"max_buffered_body": 1000}
    with running(node, {"body": ORDER}, limits=limits) as proxy:
        with Client(proxy.port) as client:
            declared = post_json(client, "/", b"[" + b" " * 1000 + b"]")
        with Client(proxy.port) as client:
            client.send(
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            client.send(b"258\r\n" + b" " * 600 + b"\r\n" + b"258\r\n" + b" " * 600 + b"\r\n")
            streamed = client.read_response()
    assert_problem(declared, 413)
    assert_problem(streamed, 413)
    assert node.requests == []


def test_authentication_runs_before_validation(node: Upstream) -> None:
    key = "alice-key-0123456789"
    consumers = [{"name": "alice", "credentials": {"key-auth": [{"key": key}]}}]
    plugins: dict[str, dict[str, Any]] = {"key-auth": {}}
    with running(node, {"body": ORDER}, plugins=plugins, consumers=consumers) as proxy:
        with Client(proxy.port) as client:
            anonymous = post_json(client, "/", b"not json")
        with Client(proxy.port) as client:
            headers = {"X-API-Key": key, "Content-Type": "application/json"}
            known = client.request("POST", "/", headers, body=b"[]")
    assert_problem(anonymous, 401)
    assert listed(known) == [("body", "", "must be of type object")]


def test_unknown_operations_can_be_refused_through_the_proxy(node: Upstream) -> None:
    settings = {"openapi": str(ITEMS), "reject_unknown_operations": True}
    with running(node, settings) as proxy, Client(proxy.port) as client:
        unknown = client.request("GET", "/nothing")
        wrong = client.request("DELETE", "/items/3")
    assert assert_problem(unknown, 404)["type"] == "urn:quiver:problem:unknown-operation"
    assert_problem(wrong, 405)
    assert wrong.header("Allow") == "GET, PUT, HEAD"
    assert node.requests == []
