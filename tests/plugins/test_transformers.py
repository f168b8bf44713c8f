"""request-transformer and response-transformer: config validation, then edits seen
through the running proxy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from quiver.plugins.request_transformer import RequestTransformer
from quiver.plugins.response_transformer import ResponseTransformer
from quiver.proxy.request import SPECIAL_REQUEST_HEADERS
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream, echo

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
    ],
)
def test_invalid_response_transformer_configs(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=re.escape(message)):
        ResponseTransformer.Config.model_validate(settings)


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


def answering(*headers: tuple[str, str]) -> Any:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            conn.respond(200, b"body", [("Content-Type", "text/plain"), *headers])

    return handler


def transformed(settings: dict[str, Any], *headers: tuple[str, str], method: str = "GET") -> Any:
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
