"""Targets answered inside the worker: the whole plugin chain around a ``handle``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from pydantic import Field

from quiver.errors import ConfigError, Forbidden
from quiver.plugins.base import PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType
from tests.support.catalog import built_in
from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy, make_config


class EchoOptions(TargetOptions):
    prefix: str = Field("", description="Put before the echoed body.")


class Echo(TargetType[EchoOptions]):
    name = "echo"
    Options = EchoOptions

    def handle(self, request: PluginRequest) -> Response | Awaitable[Response]:
        path = request.raw_path
        if path == b"/forbidden":
            raise Forbidden("not here")
        if path == b"/broken":
            raise LookupError("a bug")
        if path == b"/later":
            return self._later(request)
        if path == b"/stream":
            return Response(200, [(b"Content-Type", b"text/plain")], self._pieces())
        body = self.options.prefix.encode() + (request.body or b"")
        return Response(201, [(b"Content-Type", b"text/plain"), (b"X-Seen", path)], body)

    async def _later(self, request: PluginRequest) -> Response:
        await asyncio.sleep(0)
        return Response(200, [], b"waited")

    async def _pieces(self) -> AsyncIterator[bytes]:
        for piece in (b"one ", b"two ", b"three"):
            await asyncio.sleep(0)
            yield piece


CATALOG = built_in().with_target_types(Echo)


def in_process(plugins: dict[str, Any] | None = None, **options: Any) -> RunningProxy:
    target = {"type": "echo", "options": options}
    route = {"name": "r", "paths": ["/"], "target": "t", "plugins": plugins or {}}
    return RunningProxy(make_config({"t": target}, [route]), CATALOG)


def test_an_in_process_target_answers_with_the_whole_request_body() -> None:
    with in_process(prefix="got: ") as proxy, Client(proxy.port) as client:
        chunked = {"Transfer-Encoding": "chunked"}
        response = client.request("POST", "/x", chunked, b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        again = client.request("GET", "/y")  # keep-alive goes on
        head = client.request("HEAD", "/z")
    assert (response.status, response.body) == (201, b"got: abcde")
    assert response.header("Content-Length") == "10"
    assert response.header("X-Seen") == "/x"
    assert response.header("X-Request-ID")
    assert response.header("Via") == "1.1 quiver"
    assert (again.status, again.body) == (201, b"got: ")
    assert (head.status, head.body, head.header("Content-Length")) == (201, b"", "5")


def test_awaitable_and_streamed_answers() -> None:
    with in_process() as proxy, Client(proxy.port) as client:
        later = client.request("GET", "/later")
        stream = client.request("GET", "/stream")
        after = client.request("GET", "/after")
    assert (later.status, later.body) == (200, b"waited")
    assert stream.header("Transfer-Encoding") == "chunked"
    assert stream.body == b"one two three"
    assert after.status == 201


def test_refusals_and_faults_of_the_target_are_problems() -> None:
    with in_process() as proxy, Client(proxy.port) as client:
        forbidden = client.request("GET", "/forbidden")
        broken = client.request("GET", "/broken")
        assert client.request("GET", "/fine").status == 201
    assert assert_problem(forbidden, 403)["detail"] == "not here"
    assert assert_problem(broken, 500)["type"] == "urn:quiver:problem:plugin-failed"
    assert b"a bug" not in broken.body


def test_plugins_run_around_an_in_process_target() -> None:
    plugins = {
        "key-auth": {},
        "response-transformer": {"add": {"headers": {"X-Shaped": "yes"}}},
    }
    consumers = [{"name": "alice", "credentials": {"key-auth": [{"key": "k" * 32}]}}]
    target = {"type": "echo"}
    route = {"name": "r", "paths": ["/"], "target": "t", "plugins": plugins}
    config = make_config({"t": target}, [route], consumers=consumers)
    with RunningProxy(config, CATALOG) as proxy, Client(proxy.port) as client:
        refused = client.request("GET", "/x")
        allowed = client.request("GET", "/x", {"apikey": "k" * 32})
    assert_problem(refused, 401)
    assert allowed.status == 201
    assert allowed.header("X-Shaped") == "yes"


def test_a_config_may_name_only_the_target_types_of_its_catalog() -> None:
    text = """
    listen: 127.0.0.1:0
    targets: [{name: t, type: echo, options: {prefix: "got: "}}]
    routes: [{name: r, paths: ["/"], target: t}]
    """
    with RunningProxy(text, CATALOG) as proxy, Client(proxy.port) as client:
        assert client.request("POST", "/", body=b"x").body == b"got: x"
    with pytest.raises(ConfigError, match=r"targets\[0\]\.type: unknown target type 'echo'"):
        RunningProxy(text)  # the built-in catalog has no echo type


def test_a_config_built_without_validation_is_still_checked_when_compiled() -> None:
    route = [{"name": "r", "paths": ["/"], "target": "t"}]
    with pytest.raises(ConfigError, match=r"targets\[0\]\.type: unknown target type 'nope'"):
        RunningProxy(make_config({"t": {"type": "nope"}}, route), CATALOG)
    bad = {"type": "echo", "options": {"prefx": "x"}}
    with pytest.raises(ConfigError, match=r"targets\[0\]\.options\.prefx"):
        RunningProxy(make_config({"t": bad}, route), CATALOG)
