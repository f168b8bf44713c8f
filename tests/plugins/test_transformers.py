"""request-transformer and response-transformer: config validation, JSON body edits,
then edits seen through the running proxy."""

from __future__ import annotations

import datetime
import gzip
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
import yaml

from quiver.config.models import Limits
from quiver.http.fields import SPECIAL_REQUEST_HEADERS
from quiver.plugins.base import PluginContext
from quiver.plugins.consumers import Consumers
from quiver.plugins.json_body import JsonEdits, is_identity, is_json
from quiver.plugins.request_transformer import RequestTransformer
from quiver.plugins.response_transformer import ResponseTransformer
from tests.support.catalog import load_config_text
from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Conn, Handler, Upstream, echo

CONTEXT = PluginContext(consumers=Consumers([]))

# -- config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"remove": {"headers": ["X-Debug"]}},
        {"remove": {"query": ["debug"]}},
        {"rename": {"headers": {"X-Old": "X-New"}, "query": {"q": "Q"}}},
        {"replace": {"headers": {"Accept": "application/json"}, "query": {"v": ""}}},
        {"add": {"headers": {"X-Empty": ""}, "query": {"lang": "en gb/ü"}}},
        {"remove": {"headers": ["X-A"]}, "add": {"headers": {"X-A": "forced"}}},
        {"rename": {"query": {"a": "A"}}},  # query names are case-sensitive
        {"remove": {"json": ["debug", "Debug", "a.b"]}},  # exact names, dots and all
        {"rename": {"json": {"userId": "user_id", "a": "A"}}},
        {
            "replace": {
                "json": {
                    "s": "text",
                    "n": 1,
                    "f": -1.5,
                    "b": False,
                    "z": None,
                    "l": [1, "a", None],
                    "o": {"k": [{"deep": True}]},
                }
            }
        },
        {"add": {"json": {"max": 2**64 - 1, "min": -(2**63), "empty": {}, "none": []}}},
        {"remove": {"json": ["a"]}, "add": {"json": {"a": "forced"}}},
        {"remove": {"headers": ["X-A"], "query": ["a"], "json": ["a"]}},
    ],
)
def test_valid_request_transformer_configs(settings: dict[str, Any]) -> None:
    RequestTransformer.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({}, "nothing to change"),
        ({"remove": {}}, "nothing to change"),
        ({"add": {"headers": {"Host": "x"}}}, "'Host' cannot be changed by a plugin: the proxy"),
        ({"remove": {"headers": ["content-length"]}}, "it frames the message body"),
        ({"replace": {"headers": {"Transfer-Encoding": "gzip"}}}, "it frames the message body"),
        ({"rename": {"headers": {"X-Conn": "Connection"}}}, "a hop-by-hop field"),
        ({"rename": {"headers": {"Upgrade": "X-Upgrade"}}}, "a hop-by-hop field"),
        ({"add": {"headers": {"X-Forwarded-For": "1.2.3.4"}}}, "the proxy writes it"),
        ({"add": {"headers": {"Bad Name": "x"}}}, "is not a valid name"),
        ({"add": {"headers": {"X-A": "line\r\nX-Injected: 1"}}}, "not a valid header value"),
        ({"add": {"headers": {"X-A": " padded"}}}, "not a valid header value"),
        ({"add": {"headers": {"X-A": "café"}}}, "not a valid header value"),
        ({"add": {"headers": {"X-A": "1", "x-a": "2"}}}, "'X-A' and 'x-a' name the same"),
        ({"remove": {"headers": ["X-A", "X-A"]}}, "'X-A' is listed twice"),
        ({"remove": {"query": [""]}}, "at least 1 character"),
        ({"rename": {"headers": {"A": "B", "B": "C"}}}, "'B' is both renamed and a new name"),
        ({"rename": {"headers": {"A": "B", "b": "A"}}}, "is both renamed and a new name"),
        ({"rename": {"headers": {"X-A": "x-a"}}}, "'X-A' is renamed to itself"),
        ({"rename": {"headers": {"A": "C", "B": "c"}}}, "'A' and 'B' are both renamed to 'c'"),
        ({"rename": {"query": {"a": "b", "b": "a"}}}, "'b' is both renamed and a new name"),
        ({"add": {"headers": ["X-A"]}}, "valid dictionary"),
        ({"add": {"body": {"a": "b"}}}, "Extra inputs are not permitted"),
        ({"append": {"headers": {"X-A": "1"}}}, "Extra inputs are not permitted"),
        ({"remove": {"json": []}, "add": {"json": {}}}, "nothing to change"),
        ({"remove": {"json": [""]}}, "at least 1 character"),
        ({"remove": {"json": ["a", "b", "a"]}}, "'a' is listed twice"),
        ({"remove": {"json": "a"}}, "valid list"),
        ({"rename": {"json": {"": "a"}}}, "at least 1 character"),
        ({"rename": {"json": {"a": ""}}}, "at least 1 character"),
        ({"rename": {"json": {"a": "a"}}}, "'a' is renamed to itself"),
        ({"rename": {"json": {"a": "b", "b": "c"}}}, "'b' is both renamed and a new name"),
        ({"rename": {"json": {"a": "c", "b": "c"}}}, "'a' and 'b' are both renamed to 'c'"),
        ({"replace": {"json": {"": 1}}}, "at least 1 character"),
        ({"replace": {"json": {"n": float("nan")}}}, "cannot be sent as JSON"),
        ({"add": {"json": {"n": [1, {"x": float("inf")}]}}}, "cannot be sent as JSON"),
        ({"add": {"json": {"n": 2**64}}}, "integers between -2**63 and 2**64 - 1"),
        ({"add": {"json": {"d": datetime.date(2024, 1, 1)}}}, "not a valid JSON value"),
        ({"add": {"json": {"t": (1, 2)}}}, "not a valid JSON value"),
        ({"add": {"json": ["a"]}}, "valid dictionary"),
        ({"add": {"json_fields": {"a": 1}}}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_request_transformer_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        RequestTransformer.Config.model_validate(settings)


MANAGED = sorted(n.decode() for n in SPECIAL_REQUEST_HEADERS if not n.startswith(b"x-consumer-"))


@pytest.mark.parametrize("name", MANAGED)
def test_every_field_the_proxy_manages_is_refused_on_requests(name: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="cannot be changed by a plugin"):
        RequestTransformer.Config.model_validate({"remove": {"headers": [name.title()]}})


@pytest.mark.parametrize(
    "settings",
    [
        {"remove": {"headers": ["Server"]}},
        {"rename": {"headers": {"X-Old": "X-New"}}},
        {"replace": {"headers": {"Cache-Control": "no-store"}}},
        {"add": {"headers": {"X-Frame-Options": "DENY", "X-Request-ID": "fixed"}}},
        {"remove": {"json": ["internal_id"]}, "rename": {"json": {"userId": "user_id"}}},
        {"replace": {"json": {"status": "ok"}}, "add": {"json": {"links": {"self": "/"}}}},
    ],
)
def test_valid_response_transformer_configs(settings: dict[str, Any]) -> None:
    ResponseTransformer.Config.model_validate(settings)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({}, "nothing to change"),
        ({"remove": {"headers": ["Content-Length"]}}, "it frames the message body"),
        ({"add": {"headers": {"transfer-encoding": "chunked"}}}, "it frames the message body"),
        ({"replace": {"headers": {"Connection": "close"}}}, "a hop-by-hop field"),
        ({"rename": {"headers": {"X-A": "Keep-Alive"}}}, "a hop-by-hop field"),
        ({"add": {"headers": {"X-A": "a\nb"}}}, "not a valid header value"),
        ({"rename": {"headers": {"A": "B", "B": "A"}}}, "is both renamed and a new name"),
        ({"remove": {"headers": ["Server", "server"]}}, "name the same header field"),
        ({"remove": {"query": ["a"]}}, "Extra inputs are not permitted"),
        ({"remove": {"json": ["a", "a"]}}, "'a' is listed twice"),
        ({"rename": {"json": {"a": "b", "b": "a"}}}, "'b' is both renamed and a new name"),
        ({"add": {"json": {"": 1}}}, "at least 1 character"),
        ({"replace": {"json": {"x": float("-inf")}}}, "cannot be sent as JSON"),
    ],
)
def test_invalid_response_transformer_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        ResponseTransformer.Config.model_validate(settings)


def test_a_json_config_written_in_yaml_keeps_its_value_types() -> None:
    text = """
listen: 127.0.0.1:0
targets: [{name: b, url: "http://127.0.0.1:9"}]
routes:
  - name: r
    paths: [/]
    target: b
    plugins:
      request-transformer:
        add:
          json:
            count: 10
            label: "10"
            ratio: 0.5
            on: true
            off: no
            nothing: null
            tags: [a, 1]
            owner: {name: gateway, ids: [1, 2]}
"""
    settings = load_config_text(text).routes[0].plugins["request-transformer"]
    plugin = RequestTransformer(RequestTransformer.Config.model_validate(settings), CONTEXT)
    assert plugin.json is not None
    assert dict(plugin.json.add) == {
        "count": 10,
        "label": "10",
        "ratio": 0.5,
        "on": True,
        "off": False,  # YAML 1.1 reads "no" as false, as for any other setting
        "nothing": None,
        "tags": ["a", 1],
        "owner": {"name": "gateway", "ids": [1, 2]},
    }


@pytest.mark.parametrize("plugin", [RequestTransformer, ResponseTransformer], ids=str)
def test_the_documented_example_is_a_valid_config(plugin: type[Any]) -> None:
    example = re.search(r"e\.g\. `([^`]+)`", " ".join((plugin.__doc__ or "").split()))
    assert example is not None
    plugin.Config.model_validate(yaml.safe_load(example[1]))


def test_only_json_edits_make_the_plugins_handle_bodies() -> None:
    def request_plugin(settings: dict[str, Any]) -> RequestTransformer:
        return RequestTransformer(RequestTransformer.Config.model_validate(settings), CONTEXT)

    def response_plugin(settings: dict[str, Any]) -> ResponseTransformer:
        return ResponseTransformer(ResponseTransformer.Config.model_validate(settings), CONTEXT)

    headers_only = {"add": {"headers": {"X-A": "1"}}}
    with_json = {"add": {"headers": {"X-A": "1"}, "json": {"a": 1}}}
    assert request_plugin(headers_only).reads_body is False
    assert request_plugin(with_json).reads_body is True
    assert response_plugin(headers_only).response_body is None  # no re-framed responses
    assert response_plugin(with_json).response_body is not None
    assert "response_body" in ResponseTransformer.phases()


# -- JSON body edits -------------------------------------------------------------------


def json_edits(
    remove: list[str] | None = None,
    rename: dict[str, str] | None = None,
    replace: dict[str, Any] | None = None,
    add: dict[str, Any] | None = None,
) -> JsonEdits:
    return JsonEdits.build(remove or [], rename or {}, replace or {}, add or {})


def test_json_edits_run_remove_rename_replace_add_in_that_order() -> None:
    edits = json_edits(
        remove=["forced", "gone"],
        rename={"a": "b"},
        replace={"b": "replaced", "gone": "not again"},
        add={"forced": "gateway", "a": "re-added", "b": "not added"},
    )
    fields = {"forced": "client", "gone": 1, "a": "from a", "b": "from b", "kept": [1]}
    assert edits.apply(fields) == {
        "b": "replaced",  # the renamed a took b's place, then was replaced
        "kept": [1],
        "forced": "gateway",  # removed, then added
        "a": "re-added",  # gone after the rename, so add sets it
    }


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"x": 1, "old": 2, "y": 3}, ["x", "new", "y"]),  # keeps its place
        ({"new": 0, "x": 1, "old": 2}, ["x", "new"]),  # and replaces one of the new name
    ],
)
def test_a_renamed_json_field_keeps_its_place(fields: dict[str, Any], expected: list[str]) -> None:
    edited = json_edits(rename={"old": "new"}).apply(fields)
    assert edited is not None
    assert list(edited) == expected
    assert edited["new"] == 2


def test_a_json_field_with_a_null_or_false_value_is_present() -> None:
    edits = json_edits(replace={"z": "replaced"}, add={"f": "added"})
    assert edits.apply({"z": None, "f": False}) == {"z": "replaced", "f": False}


@pytest.mark.parametrize(
    "edits",
    [
        json_edits(remove=["absent"]),
        json_edits(rename={"absent": "other"}),
        json_edits(replace={"absent": 1}),
        json_edits(add={"present": 2}),
    ],
)
def test_json_edits_that_do_not_apply_leave_the_body_as_it_is(edits: JsonEdits) -> None:
    assert edits.apply({"present": 1}) is None
    assert edits.apply_to_body(b'{ "present" : 1 }') is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1',  # cut short
        b"[1, 2]",  # not an object
        b'"text"',
        b"null",
        b"   ",
        b"\xef\xbb\xbf{}",  # a byte order mark (RFC 8259 \u00a78.1: not in JSON text)
        b'{"a": "\xff"}',  # not UTF-8
        b'{"a": NaN}',  # not JSON
        b'{"a": 1e400}',  # out of range
        b'{"id": 123456789012345678901234567890, "a": Infinity}',  # not JSON, long digits
        b'{"id": 123456789012345678901234567890, "a": "\xff"}',
        b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}",  # nested deeper than read
        b'{"a": ' + b"[" * 300 + b"]" * 300 + b"}",  # deeper than orjson writes
    ],
)
def test_a_body_that_is_not_a_json_object_is_left_as_it_is(body: bytes) -> None:
    assert json_edits(add={"b": 2}).apply_to_body(body) is None


def test_an_empty_body_is_an_empty_object_only_when_asked() -> None:
    edits = json_edits(add={"a": 1})
    assert edits.apply_to_body(b"") is None
    assert edits.apply_to_body(b"", empty_is_object=True) == b'{"a":1}'
    assert json_edits(remove=["a"]).apply_to_body(b"", empty_is_object=True) is None


def test_an_edited_body_is_compact_utf8_json() -> None:
    edits = json_edits(add={"note": "déjà vu ✓", "nested": {"list": [1, 2.5, None, True]}})
    body = '{\n  "name": "Zoë",\n  "n": 1.10\n}'.encode()
    assert edits.apply_to_body(body) == (
        '{"name":"Zoë","n":1.1,"note":"déjà vu ✓","nested":{"list":[1,2.5,null,true]}}'.encode()
    )


@pytest.mark.parametrize(
    "body, expected",
    [
        (
            b'{"id": 123456789012345678901234567890, "neg": -98765432109876543210, "x": 1}',
            b'{"id":123456789012345678901234567890,"neg":-98765432109876543210}',
        ),
        (
            b'{"max": 18446744073709551615, "f": 1.5e300, "x": 1}',
            b'{"max":18446744073709551615,"f":1.5e300}',
        ),
        (
            '{"card": "12345678901234567890", "é": "\\u00e9", "x": 1}'.encode(),
            '{"card":"12345678901234567890","é":"é"}'.encode(),
        ),
    ],
)
def test_numbers_keep_their_value_however_long(body: bytes, expected: bytes) -> None:
    edited = json_edits(remove=["x"]).apply_to_body(body)
    assert edited is not None
    assert json.loads(edited) == json.loads(expected)  # exact integers, not floats


def test_duplicate_json_members_keep_the_last_value() -> None:
    assert json_edits(remove=["x"]).apply_to_body(b'{"a": 1, "a": 2, "x": 0}') == b'{"a":2}'


@pytest.mark.parametrize(
    "content_type, expected",
    [
        (b"application/json", True),
        (b"Application/JSON; charset=utf-8", True),
        (b"application/vnd.api+json", True),
        (b"application/problem+json ; charset=UTF-8", True),
        (b"application/json-seq", False),
        (b"text/json", False),
        (b"text/plain", False),
        (b"application/x-www-form-urlencoded", False),
        (b"", False),
        (None, False),
    ],
)
def test_which_content_types_are_json(content_type: bytes | None, expected: bool) -> None:
    assert is_json(content_type) is expected


@pytest.mark.parametrize(
    "encoding, expected",
    [(None, True), (b"identity", True), (b" Identity", True), (b"gzip", False), (b"br", False)],
)
def test_which_content_encodings_leave_the_body_as_it_is(
    encoding: bytes | None, expected: bool
) -> None:
    assert is_identity(encoding) is expected


# -- requests through the proxy --------------------------------------------------------


@pytest.fixture
def node() -> Iterator[Upstream]:
    with Upstream(echo) as upstream:
        yield upstream


def running(node: Upstream, plugins: dict[str, Any]) -> RunningProxy:
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}]
    return RunningProxy(make_config({"b": node.url}, routes))


def forwarded(node: Upstream, settings: dict[str, Any], path: str, **headers: str) -> Any:
    """What the node received for a request through a request-transformer."""
    with running(node, {"request-transformer": settings}) as proxy, Client(proxy.port) as client:
        response = client.request("GET", path, headers=headers)
    assert response.status == 200
    return response.json()


def header_map(seen: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in seen["headers"]}


def test_request_headers_are_removed_renamed_replaced_and_added(node: Upstream) -> None:
    settings = {
        "remove": {"headers": ["X-Debug"]},
        "rename": {"headers": {"X-Old": "X-New", "X-Missing": "X-Never"}},
        "replace": {"headers": {"Accept": "application/json", "X-Absent": "no"}},
        "add": {"headers": {"X-Added": "yes", "User-Agent": "not used"}},
    }
    sent = {"X-Debug": "1", "X-Old": "value", "Accept": "*/*", "User-Agent": "tests"}
    seen = header_map(forwarded(node, settings, "/", **sent))
    assert "x-debug" not in seen and "x-old" not in seen
    assert seen["x-new"] == "value"
    assert "x-never" not in seen
    assert seen["accept"] == "application/json"
    assert "x-absent" not in seen  # replace only changes what is there
    assert seen["x-added"] == "yes"
    assert seen["user-agent"] == "tests"  # add keeps what is there


def test_request_edits_run_remove_rename_replace_add_in_that_order(node: Upstream) -> None:
    settings = {
        "remove": {"headers": ["X-Forced", "X-Gone"]},
        "rename": {"headers": {"X-A": "X-B"}},
        "replace": {"headers": {"X-B": "replaced", "X-Gone": "not again"}},
        "add": {"headers": {"X-Forced": "gateway", "X-A": "re-added", "X-B": "not added"}},
    }
    sent = {"X-Forced": "client", "X-Gone": "1", "X-A": "from a", "X-B": "from b"}
    seen = header_map(forwarded(node, settings, "/", **sent))
    assert seen["x-forced"] == "gateway"  # removed, then added
    assert "x-gone" not in seen  # removed before replace could see it
    assert seen["x-b"] == "replaced"  # the renamed X-A took X-B's place, then was replaced
    assert seen["x-a"] == "re-added"  # gone after the rename, so add sets it


def test_a_renamed_header_replaces_one_of_the_new_name(node: Upstream) -> None:
    seen = forwarded(node, {"rename": {"headers": {"X-A": "X-B"}}}, "/", **{"X-A": "a", "x-b": "b"})
    assert [(n, v) for n, v in seen["headers"] if n.lower() in ("x-a", "x-b")] == [("X-B", "a")]


@pytest.mark.parametrize(
    "settings, path, expected",
    [
        ({"remove": {"query": ["debug"]}}, "/p?debug=1&a=1&debug=2", "/p?a=1"),
        ({"remove": {"query": ["debug"]}}, "/p?debug=1", "/p"),
        ({"remove": {"query": ["debug"]}}, "/p?a=%20b+c&flag&debug", "/p?a=%20b+c&flag"),
        ({"remove": {"query": ["debug"]}}, "/p?s=%FF%00&%FE&debug=%FF", "/p?s=%FF%00&%FE"),
        ({"remove": {"query": ["€"]}}, "/p?%E2%82%AC=1&%FF=2", "/p?%FF=2"),
        ({"remove": {"query": ["a b"]}}, "/p?a+b=1&a%20b=2&ab=3", "/p?ab=3"),
        ({"rename": {"query": {"q": "search"}}}, "/p?q=x%2By&b=2&q", "/p?search=x%2By&b=2&search"),
        ({"rename": {"query": {"q": "search"}}}, "/p?search=old&q=new", "/p?search=new"),
        ({"rename": {"query": {"q": "search"}}}, "/p?search=kept", "/p?search=kept"),
        ({"replace": {"query": {"v": "2"}}}, "/p?a=1&v=1&b=2&v=3", "/p?a=1&v=2&b=2"),
        ({"replace": {"query": {"v": "2"}}}, "/p?a=1", "/p?a=1"),
        ({"add": {"query": {"lang": "en gb/ü"}}}, "/p", "/p?lang=en+gb%2F%C3%BC"),
        ({"add": {"query": {"lang": "en"}}}, "/p?x=%7e&lang=fr", "/p?x=%7e&lang=fr"),
        ({"add": {"query": {"lang": "en"}}}, "/p?x=%7e", "/p?x=%7e&lang=en"),
        ({"add": {"query": {"é": "1"}}}, "/p?%C3%A9=2", "/p?%C3%A9=2"),
        (
            {
                "remove": {"query": ["token"]},
                "rename": {"query": {"page": "p"}},
                "replace": {"query": {"p": "1"}},
                "add": {"query": {"token": "gateway", "page": "re-added"}},
            },
            "/p?token=client&page=7",
            "/p?p=1&token=gateway&page=re-added",
        ),
    ],
)
def test_query_edits_are_visible_in_the_forwarded_path(
    node: Upstream, settings: dict[str, Any], path: str, expected: str
) -> None:
    assert forwarded(node, settings, path)["path"] == expected


def test_query_and_header_edits_apply_to_every_request_on_the_route(node: Upstream) -> None:
    settings = {"add": {"headers": {"X-Via-Gateway": "1"}, "query": {"v": "2"}}}
    with running(node, {"request-transformer": settings}) as proxy, Client(proxy.port) as client:
        for _ in range(3):
            seen = client.request("GET", "/x?a=1").json()
            assert seen["path"] == "/x?a=1&v=2"
            assert header_map(seen)["x-via-gateway"] == "1"


def test_the_transformer_sees_the_request_after_authentication(node: Upstream) -> None:
    key = "alice-key-0123456789"
    consumers = [{"name": "alice", "credentials": {"key-auth": [{"key": key}]}}]
    routes = [
        {
            "name": "r",
            "paths": ["/"],
            "target": "b",
            "plugins": {
                "key-auth": {},
                "request-transformer": {"rename": {"headers": {"X-Consumer-Username": "X-User"}}},
            },
        }
    ]
    config = make_config({"b": node.url}, routes, consumers=consumers)
    with RunningProxy(config) as proxy, Client(proxy.port) as client:
        seen = header_map(client.request("GET", f"/?apikey={key}").json())
    assert seen["x-user"] == "alice"
    assert "x-consumer-username" not in seen


# -- responses through the proxy -------------------------------------------------------


def answering(*headers: tuple[str, str]) -> Handler:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(200, b"body", [("Content-Type", "text/plain"), *headers])

    return handler


def transformed(
    settings: dict[str, Any], *headers: tuple[str, str], method: str = "GET"
) -> Response:
    """The client's response through a response-transformer from a node sending ``headers``."""
    plugins = {"response-transformer": settings}
    with (
        Upstream(answering(*headers)) as node,
        running(node, plugins) as proxy,
        Client(proxy.port) as client,
    ):
        response = client.request(method, "/")
        assert client.request("GET", "/").body == b"body"  # framing is intact
    return response


def test_response_headers_are_removed_renamed_replaced_and_added() -> None:
    settings = {
        "remove": {"headers": ["Server", "X-Powered-By"]},
        "rename": {"headers": {"X-Internal-Id": "X-Trace-Id", "X-Missing": "X-Never"}},
        "replace": {"headers": {"Cache-Control": "no-store", "X-Absent": "no"}},
        "add": {"headers": {"X-Frame-Options": "DENY", "Content-Type": "not used"}},
    }
    response = transformed(
        settings,
        ("Server", "node/1.0"),
        ("x-powered-by", "python"),
        ("X-Internal-Id", "abc"),
        ("Cache-Control", "max-age=60"),
        ("Cache-Control", "public"),
    )
    assert response.status == 200 and response.body == b"body"
    names = {name.lower() for name, _ in response.headers}
    assert not names & {"server", "x-powered-by", "x-internal-id", "x-never", "x-absent"}
    assert response.header("X-Trace-Id") == "abc"
    assert response.header("Cache-Control") == "no-store"  # every field replaced by one
    assert response.header("X-Frame-Options") == "DENY"
    assert response.header("Content-Type") == "text/plain"


def test_response_edits_run_remove_rename_replace_add_in_that_order() -> None:
    settings = {
        "remove": {"headers": ["X-Forced"]},
        "rename": {"headers": {"X-A": "X-B"}},
        "replace": {"headers": {"X-B": "replaced"}},
        "add": {"headers": {"X-Forced": "gateway", "X-A": "re-added"}},
    }
    response = transformed(settings, ("X-Forced", "node"), ("X-A", "a"), ("X-B", "b"))
    assert response.header("X-Forced") == "gateway"
    assert response.header("X-B") == "replaced"
    assert response.header("X-A") == "re-added"


def test_a_renamed_set_cookie_keeps_one_field_per_cookie() -> None:
    settings = {"rename": {"headers": {"Set-Cookie": "X-Upstream-Cookie"}}}
    response = transformed(settings, ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2"))
    values = [value for name, value in response.headers if name == "X-Upstream-Cookie"]
    assert values == ["a=1; Path=/", "b=2"]
    assert response.header("Set-Cookie") is None


def test_response_edits_apply_to_head_responses() -> None:
    response = transformed({"add": {"headers": {"X-Added": "1"}}}, method="HEAD")
    assert response.header("X-Added") == "1"


def test_answers_the_gateway_makes_itself_are_not_transformed(node: Upstream) -> None:
    plugins = {
        "cors": {"origins": ["*"]},
        "response-transformer": {"add": {"headers": {"X-Added": "1"}}},
    }
    with running(node, plugins) as proxy, Client(proxy.port) as client:
        preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"}
        answered = client.request("OPTIONS", "/", headers=preflight)
        relayed = client.request("GET", "/", headers={"Origin": "https://app.example"})
    assert (answered.status, answered.header("X-Added")) == (204, None)
    assert (relayed.status, relayed.header("X-Added")) == (200, "1")
    assert relayed.header("Access-Control-Allow-Origin") == "*"


# -- JSON bodies through the proxy -----------------------------------------------------

BODY_EDITS: dict[str, dict[str, Any]] = {
    "remove": {"json": ["debug"]},
    "rename": {"json": {"userId": "user_id"}},
    "replace": {"json": {"plan": "pro", "absent": "no"}},
    "add": {"json": {"source": "gateway", "plan": "not used", "tags": ["a", 1], "n": None}},
}
SENT = {"debug": True, "userId": 7, "user_id": "stale", "plan": "free", "note": "Zoë"}
EDITED = {"user_id": 7, "plan": "pro", "note": "Zoë", "source": "gateway", "tags": ["a", 1]}
EDITED["n"] = None


def received(
    node: Upstream, settings: dict[str, Any], body: bytes, **headers: str
) -> tuple[bytes, dict[str, str]]:
    """The body and headers the node received for a POST through a request-transformer."""
    with running(node, {"request-transformer": settings}) as proxy, Client(proxy.port) as client:
        response = client.request("POST", "/", headers=headers, body=body)
        assert response.status == 200
        assert client.request("GET", "/").status == 200  # the connection is still in step
    seen = node.requests[0]
    return seen.body, {name.lower(): value for name, value in seen.headers}


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.api+json"],
)
def test_request_json_fields_are_edited_with_a_new_content_length(
    node: Upstream, content_type: str
) -> None:
    sent = json.dumps(SENT, indent=2).encode()
    body, headers = received(node, BODY_EDITS, sent, **{"Content-Type": content_type})
    assert json.loads(body) == EDITED
    assert list(json.loads(body)) == list(EDITED)  # a renamed field keeps its place
    assert headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in headers


def test_a_chunked_request_body_is_edited(node: Upstream) -> None:
    sent = json.dumps(SENT).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (sent[:9], sent[9:]))
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    body, seen = received(node, BODY_EDITS, chunked + b"0\r\n\r\n", **headers)
    assert json.loads(body) == EDITED
    assert seen["content-length"] == str(len(body))
    assert "transfer-encoding" not in seen


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", b'{"debug": true}'),  # not said to be JSON
        ("application/x-www-form-urlencoded", b"debug=1"),
        ("application/json", b'{"debug": true'),  # invalid: the node says so, not the proxy
        ("application/json", b'[{"debug": true}]'),  # not an object
    ],
)
def test_request_bodies_the_edits_do_not_apply_to_are_sent_as_they_came(
    node: Upstream, content_type: str, body: bytes
) -> None:
    forwarded, headers = received(node, BODY_EDITS, body, **{"Content-Type": content_type})
    assert forwarded == body
    assert headers["content-length"] == str(len(body))


def test_a_request_body_too_large_to_hold_is_refused(node: Upstream) -> None:
    routes = [
        {"name": "r", "paths": ["/"], "target": "b", "plugins": {"request-transformer": BODY_EDITS}}
    ]
    config = make_config({"b": node.url}, routes, limits={"max_buffered_body": 64})
    with RunningProxy(config) as proxy, Client(proxy.port) as client:
        headers = {"Content-Type": "application/json"}
        refused = client.request("POST", "/", headers=headers, body=b'{"a": "%s"}' % (b"x" * 64))
    assert refused.status == 413
    assert node.requests == []


def test_a_request_body_no_edit_applies_to_keeps_its_bytes(node: Upstream) -> None:
    settings = {"remove": {"json": ["debug"]}, "replace": {"json": {"plan": "pro"}}}
    sent = b'{ "other" : 1 }'
    assert received(node, settings, sent, **{"Content-Type": "application/json"})[0] == sent


def test_a_compressed_request_body_is_sent_as_it_came(node: Upstream) -> None:
    sent = gzip.compress(json.dumps(SENT).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert received(node, BODY_EDITS, sent, **headers)[0] == sent


def test_an_empty_json_request_body_gets_the_added_fields(node: Upstream) -> None:
    body, headers = received(node, BODY_EDITS, b"", **{"Content-Type": "application/json"})
    assert json.loads(body) == BODY_EDITS["add"]["json"]
    assert headers["content-length"] == str(len(body))


def test_an_empty_request_body_stays_empty_without_fields_to_add(node: Upstream) -> None:
    settings = {"remove": {"json": ["debug"]}}
    body, headers = received(node, settings, b"", **{"Content-Type": "application/json"})
    assert body == b""
    assert headers.get("content-length", "0") == "0"


def test_request_json_edits_see_the_content_type_the_node_gets(node: Upstream) -> None:
    settings = {
        "replace": {"headers": {"Content-Type": "application/json"}},
        "add": {"json": {"source": "gateway"}},
    }
    body, _ = received(node, settings, b'{"a": 1}', **{"Content-Type": "text/plain"})
    assert json.loads(body) == {"a": 1, "source": "gateway"}


# -- JSON responses through the proxy --------------------------------------------------


def node_sending(
    body: bytes, *headers: tuple[str, str], status: int = 200, chunks: int = 0
) -> Handler:
    """A node answering every request with ``body``, in ``chunks`` chunks (0: with a
    Content-Length)."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            if status in (204, 304) or request.method == "HEAD" or not chunks:
                reason = "No Content" if status == 204 else "OK"
                payload = b"" if status in (204, 304) else body
                fields = list(headers)
                if request.method == "HEAD":
                    fields.append(("Content-Length", str(len(body))))
                    payload = b""
                conn.respond(status, payload, fields, reason=reason)
                continue
            size = -(-len(body) // chunks)
            parts = [body[i : i + size] for i in range(0, len(body), size)]
            framed = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
            conn.respond(
                status, framed + b"0\r\n\r\n", [*headers, ("Transfer-Encoding", "chunked")]
            )

    return handler


def through(settings: dict[str, Any], handler: Handler, *methods: str) -> list[Response]:
    """The client's responses, one per method, from a node running ``handler`` behind a
    response-transformer, on one connection."""
    with (
        Upstream(handler) as node,
        running(node, {"response-transformer": settings}) as proxy,
        Client(proxy.port) as client,
    ):
        return [client.request(method, "/") for method in methods or ("GET",)]


JSON_TYPE = ("Content-Type", "application/json")


@pytest.mark.parametrize("chunks", [0, 1, 3])
def test_response_json_fields_are_edited(chunks: int) -> None:
    handler = node_sending(json.dumps(SENT).encode(), JSON_TYPE, chunks=chunks)
    for response in through(BODY_EDITS, handler, "GET", "GET"):
        assert response.status == 200 and response.complete
        assert json.loads(response.body) == EDITED
        assert response.header("Content-Length") is None  # its length changed
        assert response.header("Transfer-Encoding") == "chunked"


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", b'{"debug": true}'),
        ("application/json", b'{"debug": true'),  # invalid
        ("application/json", b'[{"debug": true}]'),  # not an object
        ("application/json", b""),  # an empty response stays empty
    ],
)
def test_response_bodies_the_edits_do_not_apply_to_are_sent_as_they_came(
    content_type: str, body: bytes
) -> None:
    handler = node_sending(body, ("Content-Type", content_type), chunks=2 if body else 0)
    for response in through(BODY_EDITS, handler, "GET", "GET"):
        assert (response.status, response.body, response.complete) == (200, body, True)


def test_a_response_body_no_edit_applies_to_keeps_its_bytes() -> None:
    settings = {"remove": {"json": ["debug"]}, "replace": {"json": {"plan": "pro"}}}
    handler = node_sending(b'{ "other" : 1 }', JSON_TYPE, chunks=2)
    assert through(settings, handler)[0].body == b'{ "other" : 1 }'


def test_a_compressed_json_response_is_sent_as_it_came() -> None:
    body = gzip.compress(json.dumps(SENT).encode())
    handler = node_sending(body, JSON_TYPE, ("Content-Encoding", "gzip"))
    response = through(BODY_EDITS, handler)[0]
    assert response.body == body
    assert response.header("Content-Encoding") == "gzip"


def test_response_json_edits_see_the_content_type_the_client_gets() -> None:
    settings = {
        "replace": {"headers": {"Content-Type": "application/problem+json"}},
        "add": {"json": {"source": "gateway"}},
    }
    handler = node_sending(b'{"a": 1}', ("Content-Type", "text/plain"))
    assert json.loads(through(settings, handler)[0].body) == {"a": 1, "source": "gateway"}


@pytest.mark.parametrize("status", [204, 304])
def test_responses_without_a_body_are_unaffected(status: int) -> None:
    handler = node_sending(b"", JSON_TYPE, ("X-Node", "1"), status=status)
    settings = {**BODY_EDITS, "rename": {"headers": {"X-Node": "X-Renamed"}}}
    for response in through(settings, handler, "GET", "GET"):
        assert (response.status, response.body) == (status, b"")
        assert response.header("X-Renamed") == "1"


def test_head_responses_are_unaffected() -> None:
    body = json.dumps(SENT).encode()
    handler = node_sending(body, JSON_TYPE)
    settings = {**BODY_EDITS, "add": {**BODY_EDITS["add"], "headers": {"X-Added": "1"}}}
    head, get = through(settings, handler, "HEAD", "GET")
    assert (head.status, head.body, head.header("X-Added")) == (200, b"", "1")
    assert json.loads(get.body) == EDITED


def test_a_header_only_response_transformer_keeps_the_framing() -> None:
    handler = node_sending(b'{"debug": true}', JSON_TYPE)
    for response in through({"add": {"headers": {"X-Added": "1"}}}, handler, "GET", "GET"):
        assert response.header("X-Added") == "1"
        assert response.header("Content-Length") == "15"
        assert response.header("Transfer-Encoding") is None
        assert response.body == b'{"debug": true}'


def test_a_json_response_too_large_to_edit_streams_on_unchanged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    large = json.dumps({"debug": True, "data": "x" * Limits().max_buffered_body}).encode()
    small = json.dumps(SENT).encode()

    def handler(conn: Conn) -> None:
        for body in (large, small, large):
            if conn.read_request() is None:
                return
            conn.respond(200, body, [JSON_TYPE])

    with caplog.at_level(logging.WARNING, logger="quiver.plugins"):
        first, second, third = through(BODY_EDITS, handler, "GET", "GET", "GET")
    assert first.body == large and third.body == large
    assert json.loads(second.body) == EDITED  # the next response is edited again
    warnings = [r.getMessage() for r in caplog.records if r.name == "quiver.plugins"]
    assert len(warnings) == 1
    assert "GET /" in warnings[0] and "larger than 1048576 bytes" in warnings[0]
