"""The phases that see bodies (whole request bodies in ``access``, streaming
``response_body``) and plugins attached to consumers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import Field

from quiver.errors import ConfigError, Forbidden
from quiver.plugins.base import AccessResult, Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.catalog import Catalog
from quiver.plugins.response import ResponseHead
from tests.support.catalog import built_in, load_config_text
from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Conn, Handler, Upstream, echo


class ShoutConfig(PluginConfig):
    read: bool = Field(True, description="Read (and upper-case) the body.")


class Shout(Plugin[ShoutConfig]):
    """Upper-cases the request body and says how long it was."""

    name = "test-shout"
    priority = 500
    Config = ShoutConfig

    def __init__(self, config: ShoutConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.reads_body = config.read

    def access(self, request: PluginRequest) -> None:
        body = request.body
        if body is None:
            request.set_header(b"X-Body-Seen", b"no")
            return
        request.set_header(b"X-Body-Seen", b"%d" % len(body))
        request.set_body(body.upper())


class RefuseConfig(PluginConfig):
    header: str = Field("x-refuse", description="Requests with this header are refused.")


class Refuse(Plugin[RefuseConfig]):
    """Refuses requests carrying a header, on the head alone."""

    name = "test-refuse"
    priority = 2000
    Config = RefuseConfig

    def access(self, request: PluginRequest) -> None:
        if request.get(self.config.header.encode()) is not None:
            raise Forbidden("refused on sight")


class TailConfig(PluginConfig):
    tail: str = Field("!", description="Appended to every response body.")


class Tail(Plugin[TailConfig]):
    """Upper-cases response bodies as they stream and appends a tail at the end;
    counts the pieces it saw in ``request.ctx``."""

    name = "test-tail"
    priority = 100
    Config = TailConfig

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        seen = request.ctx.setdefault(self.name, [])
        seen.append(len(chunk))
        if last:
            return chunk.upper() + self.config.tail.encode() + b"%d" % len(seen)
        return chunk.upper()


class Slow(Plugin[RefuseConfig]):
    """Decides only once the whole request has arrived (an awaitable access phase)."""

    name = "test-slow"
    priority = 1500
    Config = RefuseConfig

    def access(self, request: PluginRequest) -> AccessResult:
        return self._after_the_body(request)

    async def _after_the_body(self, request: Any) -> None:
        while not request.request_done:  # (the proxy's exchange: yield until it is in)
            await asyncio.sleep(0)


class Stamp(Plugin[TailConfig]):
    """Adds X-Stamp to responses (a response_headers phase to see which chain ran)."""

    name = "test-stamp"
    priority = 50
    Config = TailConfig

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        response.set(b"X-Stamp", self.config.tail.encode())


CATALOG = built_in().with_plugins(Shout, Refuse, Tail, Stamp, Slow)


def proxy(
    url: str, plugins: dict[str, Any], catalog: Catalog = CATALOG, **extra: Any
) -> RunningProxy:
    route = {"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}
    return RunningProxy(make_config({"b": url}, [route], **extra), catalog)


def seen_by_node(response: Response) -> tuple[dict[str, str], str]:
    data = response.json()
    return {name.lower(): value for name, value in data["headers"]}, data["body"]


# -- whole request bodies ------------------------------------------------------------


def test_a_body_reader_sees_the_whole_body_and_its_replacement_goes_upstream() -> None:
    with Upstream(echo) as node, proxy(node.url, {"test-shout": {}}) as running:
        with Client(running.port) as client:
            response = client.request("POST", "/", body=b"hello there")
        headers, body = seen_by_node(response)
        assert headers["x-body-seen"] == "11"
        assert body == "HELLO THERE"
        assert headers["content-length"] == "11"


def test_a_chunked_body_is_read_whole_and_sent_with_a_length() -> None:
    with Upstream(echo) as node, proxy(node.url, {"test-shout": {}}) as running:
        with Client(running.port) as client:
            client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            client.send(b"3\r\nabc\r\n")
            client.send(b"4\r\ndefg\r\n0\r\n\r\n")
            response = client.read_response()
        headers, body = seen_by_node(response)
        assert body == "ABCDEFG"
        assert headers["content-length"] == "7"
        assert "transfer-encoding" not in headers


def test_a_request_without_a_body_gives_readers_an_empty_one() -> None:
    with Upstream(echo) as node, proxy(node.url, {"test-shout": {}}) as running:
        with Client(running.port) as client:
            response = client.request("GET", "/")
        headers, body = seen_by_node(response)
        assert headers["x-body-seen"] == "0"
        assert "content-length" not in headers and body == ""


def test_plugins_that_do_not_read_bodies_leave_them_streaming() -> None:
    with Upstream(echo) as node, proxy(node.url, {"test-shout": {"read": False}}) as running:
        with Client(running.port) as client:
            client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            client.send(b"3\r\nabc\r\n0\r\n\r\n")
            response = client.read_response()
        headers, body = seen_by_node(response)
        assert headers["x-body-seen"] == "no"
        assert body == "abc" and headers["transfer-encoding"] == "chunked"


def test_a_body_over_the_buffered_limit_is_refused() -> None:
    limits = {"max_buffered_body": 1000}
    with Upstream(echo) as node, proxy(node.url, {"test-shout": {}}, limits=limits) as running:
        with Client(running.port) as client:
            declared = client.request("POST", "/", body=b"x" * 1001)
        with Client(running.port) as client:
            client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            client.send(b"200\r\n" + b"y" * 512 + b"\r\n" + b"200\r\n" + b"y" * 512 + b"\r\n")
            streamed = client.read_response()
        with Client(running.port) as client:
            within = client.request("POST", "/", body=b"z" * 1000)
        assert declared.status == 413 and streamed.status == 413
        assert declared.header("content-type") == "application/problem+json"
        assert within.status == 200
        assert len(node.requests) == 1


def test_a_body_that_arrives_while_an_earlier_phase_waits_is_read_whole() -> None:
    with Upstream(echo) as node, proxy(node.url, {"test-slow": {}, "test-shout": {}}) as p:
        with Client(p.port) as client:
            client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            client.send(b"5\r\nhello\r\n0\r\n\r\n")
            response = client.read_response()
        assert seen_by_node(response)[1] == "HELLO"


def test_a_refusal_on_the_head_comes_before_the_body_is_invited() -> None:
    plugins: dict[str, dict[str, Any]] = {"test-refuse": {}, "test-shout": {}}
    with Upstream(echo) as node, proxy(node.url, plugins) as running:
        with Client(running.port) as client:
            client.send(
                b"POST / HTTP/1.1\r\nHost: t\r\nX-Refuse: 1\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            refused = client.read_response()
        with Client(running.port) as client:
            client.send(
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
            )
            interim = client.read_response()
            client.send(b"hello")
            accepted = client.read_response()
        assert refused.status == 403  # with no 100 Continue before it
        assert interim.status == 100
        assert accepted.status == 200 and seen_by_node(accepted)[1] == "HELLO"


PIPELINED = (
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
)


def test_pipelined_requests_with_bodies_are_each_read_whole() -> None:
    with Upstream(echo) as node, proxy(node.url, {"test-shout": {}}) as running:
        with Client(running.port) as client:
            client.send(PIPELINED)
            bodies = [seen_by_node(client.read_response())[1] for _ in range(3)]
        assert bodies == ["ABC", "DE", ""]


def test_pipelined_bodies_on_a_streaming_route_are_forwarded_intact() -> None:
    with Upstream(echo) as node, proxy(node.url, {"test-shout": {"read": False}}) as running:
        with Client(running.port) as client:
            client.send(PIPELINED + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            bodies = [seen_by_node(client.read_response())[1] for _ in range(4)]
        assert bodies == ["abc", "de", "", ""]


# -- response bodies -----------------------------------------------------------------


def answer(*parts: bytes) -> Handler:
    """A node that answers every request with ``parts`` sent as they are."""

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            for part in parts:
                conn.send(part)

    return handler


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"5\r\nhello\r\n",
    b"6\r\n world\r\n0\r\n\r\n",
)
SIZED = (b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",)


@pytest.mark.parametrize("parts", [CHUNKED, SIZED], ids=["chunked", "content-length"])
def test_response_body_phases_change_the_body_which_is_sent_chunked(
    parts: tuple[bytes, ...],
) -> None:
    with Upstream(answer(*parts)) as node, proxy(node.url, {"test-tail": {}}) as running:
        with Client(running.port) as client:
            first = client.request("GET", "/")
            second = client.request("GET", "/")  # the connection stays usable
        for response in (first, second):
            assert response.status == 200
            assert response.body.startswith(b"HELLO WORLD!")
            assert response.header("transfer-encoding") == "chunked"
            assert response.header("content-length") is None


def test_a_response_ended_by_closing_is_filtered_too() -> None:
    def close_delimited(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n\r\nabc")
        conn.close()

    with Upstream(close_delimited) as node, proxy(node.url, {"test-tail": {}}) as running:
        with Client(running.port) as client:
            response = client.request("GET", "/")
        assert response.body.startswith(b"ABC!")


def test_an_http10_client_gets_the_filtered_body_ended_by_close() -> None:
    with Upstream(answer(*CHUNKED)) as node, proxy(node.url, {"test-tail": {}}) as running:
        with Client(running.port) as client:
            client.send(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
            raw = client.read_until_close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"chunked" not in head.lower() and b"content-length" not in head.lower()
        assert body.startswith(b"HELLO WORLD!")


def test_responses_without_a_body_do_not_run_the_body_phase() -> None:
    no_content = (b"HTTP/1.1 204 No Content\r\n\r\n",)
    with Upstream(answer(*no_content)) as node, proxy(node.url, {"test-tail": {}}) as running:
        with Client(running.port) as client:
            response = client.request("GET", "/")
            head = client.request("HEAD", "/")
        assert response.status == 204 and response.body == b""
        assert head.status == 204


def test_a_failing_body_phase_cuts_the_client_off() -> None:
    class Broken(Tail):
        name = "test-broken"

        def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
            if request.get(b"x-break") is not None:
                raise RuntimeError("broken")
            return chunk

    catalog = CATALOG.with_plugins(Broken)
    with (
        Upstream(answer(*SIZED)) as node,
        proxy(node.url, {"test-broken": {}}, catalog) as running,
    ):
        with Client(running.port) as client:
            client.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Break: 1\r\n\r\n")
            raw = client.read_until_close()
        assert b"hello world" not in raw  # no complete response reached the client
        with Client(running.port) as client:  # the worker goes on serving
            response = client.request("GET", "/")
        assert response.status == 200 and response.body == b"hello world"


# -- consumer plugins ----------------------------------------------------------------

ALICE_KEY = "alice-key-0123456789"
BOB_KEY = "bob-key-9876543210"


def consumers(alice_plugins: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": "alice",
            "credentials": {"key-auth": [{"key": ALICE_KEY}]},
            "plugins": alice_plugins,
        },
        {"name": "bob", "credentials": {"key-auth": [{"key": BOB_KEY}]}},
    ]


def test_a_consumer_plugin_replaces_the_route_one_once_the_consumer_is_known() -> None:
    plugins = {"key-auth": {}, "test-stamp": {"tail": "route"}, "test-shout": {"read": False}}
    alice = {"test-stamp": {"tail": "alice"}, "test-shout": {}}
    with Upstream(echo) as node, proxy(node.url, plugins, consumers=consumers(alice)) as running:
        with Client(running.port) as client:
            as_alice = client.request("POST", "/", {"apikey": ALICE_KEY}, body=b"hi")
            as_bob = client.request("POST", "/", {"apikey": BOB_KEY}, body=b"hi")
        assert as_alice.header("x-stamp") == "alice"
        assert seen_by_node(as_alice)[1] == "HI"  # alice's test-shout reads bodies
        assert as_bob.header("x-stamp") == "route"
        assert seen_by_node(as_bob)[1] == "hi"


def test_a_consumer_plugin_adds_to_the_route_chain() -> None:
    alice = {"test-refuse": {"header": "x-alice-refused"}}
    with Upstream(echo) as node, proxy(node.url, {"key-auth": {}}, consumers=consumers(alice)) as p:
        with Client(p.port) as client:
            headers = {"apikey": ALICE_KEY, "x-alice-refused": "1"}
            refused = client.request("GET", "/", headers)
            bob = client.request("GET", "/", {"apikey": BOB_KEY, "x-alice-refused": "1"})
        # test-refuse ranks above key-auth: on a consumer it would never run, so the
        # consumer chain only takes plugins that come after authentication
        assert refused.status == 200 and bob.status == 200


def test_consumer_plugins_below_authentication_run_for_that_consumer() -> None:
    alice = {"test-stamp": {"tail": "alice"}, "test-tail": {"tail": "?"}}
    with Upstream(echo) as node, proxy(node.url, {"key-auth": {}}, consumers=consumers(alice)) as p:
        with Client(p.port) as client:
            as_alice = client.request("GET", "/", {"apikey": ALICE_KEY})
            as_bob = client.request("GET", "/", {"apikey": BOB_KEY})
        assert as_alice.header("x-stamp") == "alice" and b"?" in as_alice.body
        assert as_bob.header("x-stamp") is None and as_bob.json()["method"] == "GET"


def test_authentication_plugins_cannot_be_attached_to_consumers() -> None:
    text = """\
targets: [{name: b, url: "http://127.0.0.1:9"}]
routes: [{name: r, paths: ["/"], target: b}]
consumers:
  - name: alice
    plugins:
      key-auth: {}
      test-stamp: {tail: 3}
"""
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "quiver.yaml", catalog=CATALOG)
    by_location = {issue.location: issue.message for issue in caught.value.issues}
    assert "cannot be attached" in by_location["consumers[0].plugins.key-auth"]
    assert "consumers[0].plugins.test-stamp.tail" in by_location


def test_a_body_reader_on_a_consumer_leaves_other_routes_streaming() -> None:
    alice: dict[str, dict[str, Any]] = {"test-shout": {}}
    routes: list[dict[str, Any]] = [
        {"name": "open", "paths": ["/open"], "target": "b"},
        {"name": "keyed", "paths": ["/keyed"], "target": "b", "plugins": {"key-auth": {}}},
    ]
    with Upstream(echo) as node:
        config = make_config({"b": node.url}, routes, consumers=consumers(alice))
        with RunningProxy(config, CATALOG) as running, Client(running.port) as client:
            chunked = {"Transfer-Encoding": "chunked"}
            open_route = client.request("POST", "/open", chunked, body=b"2\r\nhi\r\n0\r\n\r\n")
            as_bob = client.request(
                "POST", "/keyed", {**chunked, "apikey": BOB_KEY}, body=b"2\r\nhi\r\n0\r\n\r\n"
            )
            as_alice = client.request(
                "POST", "/keyed", {**chunked, "apikey": ALICE_KEY}, body=b"2\r\nhi\r\n0\r\n\r\n"
            )
        assert seen_by_node(open_route)[1] == "hi"
        assert seen_by_node(open_route)[0]["transfer-encoding"] == "chunked"
        assert seen_by_node(as_bob)[1] == "hi"
        assert seen_by_node(as_bob)[0]["transfer-encoding"] == "chunked"
        assert seen_by_node(as_alice)[1] == "HI"
        assert seen_by_node(as_alice)[0]["content-length"] == "2"
