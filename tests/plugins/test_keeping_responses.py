"""The contract pieces a plugin that keeps responses uses: ``tap_body``, answers
rendered whole (``Answer(status, head=..., body=...)``) and the worker's
what plugins keep in the worker's stores beyond a config."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import Field

from quiver.errors import Answer
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from tests.support.catalog import built_in
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream

pytestmark = pytest.mark.timeout(30)


class Memo:
    """What the test plugins share with the test (one per worker, kept in its stores)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.builds = 0


class KeepConfig(PluginConfig):
    answer: bool = Field(False, description="Answer with the last body kept instead.")


class Keep(Plugin[KeepConfig]):
    """Keeps every response body it is handed whole; answers with the last one."""

    name = "test-keep"
    priority = 100
    Config = KeepConfig

    def __init__(self, config: KeepConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.memo = context.stores.keep("test-keep", Memo)
        self.memo.builds += 1

    def access(self, request: PluginRequest) -> None:
        if self.config.answer and self.memo.bodies:
            body = self.memo.bodies[-1]
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/x-kept\r\nX-Kept: yes\r\n"
            raise Answer(200, head=head + b"Content-Length: %d\r\n" % len(body), body=body)
        pieces: list[bytes] = []

        def receive(chunk: bytes, last: bool) -> None:
            pieces.append(chunk)
            if last:
                self.memo.bodies.append(b"".join(pieces))

        request.tap_body(receive)


class Upper(Plugin[PluginConfig]):
    """Upper-cases response bodies (a response_body phase before the tap)."""

    name = "test-upper"
    priority = 500
    Config = PluginConfig

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        return chunk.upper()


CATALOG = built_in().with_plugins(Keep, Upper)


def node(framing: str) -> Upstream:
    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            if framing == "chunked":
                headers = [("Transfer-Encoding", "chunked")]
                conn.respond(200, b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", headers)
            else:
                conn.respond(200, b"abcdefg", [("Content-Type", "text/plain")])

    return Upstream(handler)


def proxy(url: str, plugins: dict[str, Any]) -> RunningProxy:
    route = {"name": "r", "paths": ["/"], "target": "b", "plugins": plugins}
    return RunningProxy(make_config({"b": url}, [route]), CATALOG)


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_tap_gets_the_decoded_body_and_the_response_keeps_its_framing(framing: str) -> None:
    with node(framing) as upstream, proxy(upstream.url, {"test-keep": {}}) as running:
        with Client(running.port) as client:
            response = client.request("GET", "/")
        memo = running.server.stores.keep("test-keep", Memo)  # type: ignore[union-attr]
        assert response.body == b"abcdefg"
        assert memo.bodies == [b"abcdefg"]
        if framing == "length":
            assert response.header("Content-Length") == "7"
        else:
            assert response.header("Transfer-Encoding") == "chunked"


def test_a_tap_gets_what_the_response_body_phases_made() -> None:
    plugins: dict[str, Any] = {"test-keep": {}, "test-upper": {}}
    with node("length") as upstream, proxy(upstream.url, plugins) as running:
        with Client(running.port) as client:
            assert client.request("GET", "/").body == b"ABCDEFG"
        memo = running.server.stores.keep("test-keep", Memo)  # type: ignore[union-attr]
        assert memo.bodies == [b"ABCDEFG"]


def test_an_answer_rendered_whole_is_sent_as_given() -> None:
    with node("length") as upstream, proxy(upstream.url, {"test-keep": {}}) as running:
        with Client(running.port) as client:
            client.request("GET", "/")
        memo = running.server.stores.keep("test-keep", Memo)  # type: ignore[union-attr]
        config = make_config(
            {"b": upstream.url},
            [
                {
                    "name": "r",
                    "paths": ["/"],
                    "target": "b",
                    "plugins": {"test-keep": {"answer": True}},
                }
            ],
        )
        running.call(running.server.swap, config)  # type: ignore[union-attr]
        with Client(running.port) as client:
            response = client.request("GET", "/")
            head = client.request("HEAD", "/")
        assert (response.status, response.body) == (200, b"abcdefg")
        assert response.header("Content-Type") == "text/x-kept"  # its own, not text/plain
        assert [name for name, _ in response.headers].count("Content-Type") == 1
        assert response.header("X-Kept") == "yes"
        assert response.header("Content-Length") == "7"
        assert response.header("X-Request-ID")
        assert (head.body, head.header("Content-Length")) == (b"", "7")
        # the new config's plugin found the same stores: built twice, one memo
        assert memo.builds == 2
        assert running.server.stores.keep("test-keep", Memo) is memo  # type: ignore[union-attr]
