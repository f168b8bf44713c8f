"""Targets answered inside the worker: the whole plugin chain around a ``handle``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest
from pydantic import Field

from quiver.errors import Answer, ConfigError, Forbidden, HTTPError
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


class Wayward(TargetType[TargetOptions]):
    """Answers what no target should: the proxy must hold its line on each."""

    name = "wayward"

    def handle(self, request: PluginRequest) -> Any:
        path = request.raw_path.decode()
        if path == "/none":
            return None
        if path == "/none-later":
            return self._later(None)
        if path == "/status":
            return Response(99, [], b"")
        if path == "/split-header":
            return self._later(Response(200, [(b"X-A", b"v\r\nSet-Cookie: evil=1")], b""))
        if path == "/str-header":
            return Response(200, [("X-A", "v")], b"")  # type: ignore[list-item]
        if path == "/framing":
            headers = [(b"Content-Length", b"2"), (b"Connection", b"close"), (b"X-Kept", b"1")]
            return Response(200, headers, b"ok")
        if path == "/stuck":
            return self._stuck()
        if path == "/stalls":
            return Response(200, [], self._stalling())
        if path == "/not-bytes":
            return Response(200, [], self._not_bytes())
        if path == "/no-headers":
            return Response(200, None, b"x")  # type: ignore[arg-type]
        if path == "/no-headers-later":
            return self._later(Response(200, None, b"x"))  # type: ignore[arg-type]
        if path == "/bad-aiter":
            return Response(200, [], _BadIterable())  # type: ignore[arg-type]
        if path == "/forever":
            return Response(200, [(b"Content-Type", b"text/event-stream")], self._forever())
        if path == "/slow":
            return self._slow()
        return Response(200, [], b"fine")

    async def _forever(self) -> AsyncIterator[bytes]:
        while True:
            await asyncio.sleep(0)
            yield b"data: tick\n\n"

    async def _slow(self) -> Response:
        await asyncio.sleep(0.2)  # within the global read timeout (0.3 s), not the target's
        return Response(200, [], b"slow")

    async def _later(self, answer: Any) -> Any:
        await asyncio.sleep(0)
        return answer

    async def _stuck(self) -> Response:
        await asyncio.Event().wait()  # never set
        raise AssertionError("unreachable")

    async def _stalling(self) -> AsyncIterator[bytes]:
        yield b"first "
        await asyncio.Event().wait()
        yield b"never"

    async def _not_bytes(self) -> AsyncIterator[bytes]:
        yield b"first "
        yield "second"  # type: ignore[misc]


class _BadIterable:
    def __aiter__(self) -> Any:
        raise RuntimeError("no iterator here")


def wayward(**target_settings: Any) -> RunningProxy:
    target = {"type": "wayward", **target_settings}
    route = {"name": "r", "paths": ["/"], "target": "t"}
    config = make_config({"t": target}, [route], timeouts={"read": 0.3})
    return RunningProxy(config, built_in().with_target_types(Wayward))


@pytest.mark.parametrize(
    "path",
    [
        "/none",
        "/none-later",
        "/status",
        "/split-header",
        "/str-header",
        "/no-headers",
        "/no-headers-later",
    ],
)
def test_what_is_not_a_well_formed_response_is_a_logged_fault(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with wayward() as proxy, Client(proxy.port) as client:
        response = client.request("GET", path)
        after = client.request("GET", "/fine")  # the connection goes on
    problem = assert_problem(response, 500)
    assert problem["type"] == "urn:quiver:problem:plugin-failed"
    assert b"evil" not in response.body and response.header("Set-Cookie") is None
    assert after.body == b"fine"
    assert "failed in its handle phase" in caplog.text


def test_framing_fields_a_target_sets_are_the_proxys_to_state() -> None:
    with wayward() as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/framing")
        after = client.request("GET", "/fine")  # its "Connection: close" was not obeyed
    assert (response.status, response.body) == (200, b"ok")
    assert [v for n, v in response.headers if n.lower() == "content-length"] == ["2"]
    assert response.header("Connection") is None
    assert response.header("X-Kept") == "1"
    assert after.body == b"fine"


def test_a_target_that_does_not_answer_in_time_is_a_504() -> None:
    with wayward() as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/stuck")
    problem = assert_problem(response, 504)
    assert problem["detail"] == "target 't' did not answer in time"


@pytest.mark.parametrize("path", ["/stalls", "/not-bytes"])
def test_a_body_that_stalls_or_is_not_bytes_cuts_the_response(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with wayward() as proxy, Client(proxy.port) as client:
        response = client.request("GET", path)
        assert not response.complete
        assert response.body.endswith(b"first ")
        assert client.closed
    if path == "/not-bytes":
        assert "failed in its handle phase" in caplog.text


def test_a_body_that_cannot_be_iterated_is_a_fault_not_a_hang(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with wayward() as proxy, Client(proxy.port, timeout=5) as client:
        response = client.request("GET", "/bad-aiter")
        assert not response.complete  # the head had left: the client is cut off
        assert client.closed
    assert "failed in its handle phase" in caplog.text


def test_an_endless_stream_is_not_read_for_head() -> None:
    with wayward() as proxy, Client(proxy.port, timeout=5) as client:
        head = client.request("HEAD", "/forever")
        after = client.request("GET", "/fine")  # the same connection goes on
    assert (head.status, head.body) == (200, b"")
    assert head.header("Content-Type") == "text/event-stream"
    assert after.body == b"fine"


def test_the_targets_own_read_timeout_bounds_its_answer() -> None:
    with wayward(timeouts={"read": 0.1}) as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/slow")
    assert_problem(response, 504)


def test_a_body_over_the_buffer_limit_is_refused_before_it_is_invited() -> None:
    target = {"type": "echo"}
    route = {"name": "r", "paths": ["/"], "target": "t"}
    config = make_config({"t": target}, [route], limits={"max_buffered_body": 10})
    with RunningProxy(config, CATALOG) as proxy, Client(proxy.port) as client:
        client.send(
            b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"
        )
        response = client.read_response()
    assert_problem(response, 413)  # and no "100 Continue" before it


class Counted(TargetType[EchoOptions]):
    """Counts how often it is built and closed; its close fails."""

    name = "counted"
    Options = EchoOptions
    built: list[Counted] = []
    closed = 0

    def __init__(self, options: EchoOptions, context: Any) -> None:
        super().__init__(options, context)
        Counted.built.append(self)

    def handle(self, request: PluginRequest) -> Response:
        return Response(200, [], self.options.prefix.encode())

    def close(self) -> None:
        Counted.closed += 1
        raise RuntimeError("cannot close")


def test_a_reload_keeps_an_unchanged_in_process_target_and_survives_a_failing_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    Counted.built.clear()
    Counted.closed = 0

    def config(prefix: str) -> Any:
        target = {"type": "counted", "options": {"prefix": prefix}}
        return make_config({"t": target}, [{"name": "r", "paths": ["/"], "target": "t"}])

    with RunningProxy(config("one"), built_in().with_target_types(Counted)) as proxy:
        assert proxy.server is not None
        server = proxy.server
        proxy.call(lambda: server.swap(config("one")))  # nothing about the target changed
        assert (len(Counted.built), Counted.closed) == (1, 0)
        with Client(proxy.port) as client:
            assert client.request("GET", "/").body == b"one"
        proxy.call(lambda: server.swap(config("two")))  # its options changed
        assert (len(Counted.built), Counted.closed) == (2, 1)
        with Client(proxy.port) as client:
            assert client.request("GET", "/").body == b"two"
    assert "in-process target 't' failed to close" in caplog.text


class Spoken(TargetType[TargetOptions]):
    """Speaks an API whose errors are ``{"fault": ...}``; its own errors included."""

    name = "spoken"

    def handle(self, request: PluginRequest) -> Response:
        if request.raw_path == b"/forbidden":
            raise Forbidden("not here")
        return Response(200, [], b"fine")

    def error_answer(self, request: PluginRequest, error: HTTPError) -> Answer | None:
        if request.raw_path == b"/plain":
            return None  # (a problem document)
        if request.raw_path == b"/wrong":
            raise LookupError("a bug in error_answer")
        body = b'{"fault": "%s", "id": "%s"}' % (error.detail.encode(), request.rid)
        headers = (*error.headers, (b"X-Spoken", b"yes"))
        return Answer(error.status_code, headers=headers, body=body, content_type=b"x/fault")


def spoken(plugins: dict[str, Any]) -> RunningProxy:
    consumers = [{"name": "alice", "credentials": {"key-auth": [{"key": "k" * 32}]}}]
    routes = [
        {"name": "r", "paths": ["/"], "target": "t", "plugins": plugins},
        {"name": "n", "paths": ["/node"], "target": "node", "plugins": plugins},
    ]
    targets: dict[str, str | dict[str, Any]] = {
        "t": {"type": "spoken"},
        "node": "http://127.0.0.1:9",
    }
    config = make_config(targets, routes, consumers=consumers)
    return RunningProxy(config, built_in().with_target_types(Spoken))


def test_a_target_type_may_state_the_gateways_errors_in_its_own_shape() -> None:
    plugins = {
        "key-auth": {},
        "response-transformer": {"add": {"headers": {"X-Shaped": "yes"}}},
    }
    with spoken(plugins) as proxy, Client(proxy.port) as client:
        refused = client.request("GET", "/x")
        forbidden = client.request("GET", "/forbidden", {"apikey": "k" * 32})
        plain = client.request("GET", "/plain")
        node = client.request("GET", "/node")
        head = client.request("HEAD", "/x")
    assert (refused.status, refused.header("Content-Type")) == (401, "x/fault")
    rid = refused.header("X-Request-ID")
    assert refused.json() == {"fault": "no API key in the request", "id": rid}
    assert refused.header("WWW-Authenticate")  # (the error's own fields are kept)
    assert refused.header("X-Spoken") == "yes"
    assert refused.header("X-Shaped") == "yes"  # (the route's plugins shape it too)
    assert forbidden.json()["fault"] == "not here"  # (what its handle raises, too)
    assert_problem(plain, 401)  # (None: a problem document)
    assert_problem(node, 401)  # (a route to nodes never asks it)
    assert (head.status, head.body, head.header("X-Spoken")) == (401, b"", "yes")


def test_a_fault_in_error_answer_leaves_the_problem_document(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with spoken({"key-auth": {}}) as proxy, Client(proxy.port) as client:
        response = client.request("GET", "/wrong")
        after = client.request("GET", "/x")
    assert assert_problem(response, 401)["detail"] == "no API key in the request"
    assert "failed in its error_answer phase" in caplog.text
    assert after.status == 401 and after.header("X-Spoken") == "yes"
