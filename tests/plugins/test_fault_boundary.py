"""A plugin that raises something other than an HTTPError is a fault, handled in one place.

Each phase, sync and async where the phase may wait: logged once with the plugin's
name and the request id, answered 500 problem+json before the response began or
cut after it, never run twice, never counted against the node.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import Field

from quiver.plugins.base import AccessResult, Plugin, PluginConfig, PluginRequest
from quiver.plugins.response import ResponseHead
from tests.support.catalog import built_in
from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Upstream, echo

CALLS: dict[str, int] = {}


class FaultConfig(PluginConfig):
    phase: str = Field(description="The phase that raises.")
    wait: bool = Field(False, description="Raise from an awaitable (access only).")


class Faulty(Plugin[FaultConfig]):
    """Raises a plain exception in the configured phase."""

    name = "test-faulty"
    priority = 500
    Config = FaultConfig

    def _count(self, phase: str) -> None:
        CALLS[phase] = CALLS.get(phase, 0) + 1

    def access(self, request: PluginRequest) -> AccessResult:
        self._count("access")
        if self.config.phase == "access":
            if self.config.wait:
                return self._later()
            raise ValueError("boom in access")
        return None

    async def _later(self) -> None:
        raise ValueError("boom after waiting")

    async def _async_access(self, request: PluginRequest) -> None:
        raise ValueError("boom in a coroutine")

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        self._count("response_headers")
        if self.config.phase == "response_headers":
            raise KeyError("boom in response_headers")

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        self._count("response_body")
        if self.config.phase == "response_body":
            raise RuntimeError("boom in response_body")
        return chunk

    def log(self, request: PluginRequest) -> None:
        self._count("log")
        if self.config.phase == "log":
            raise ZeroDivisionError("boom in log")


class CoroutineFaulty(Plugin[FaultConfig]):
    """An ``async def access`` that raises."""

    name = "test-coroutine-faulty"
    priority = 500
    Config = FaultConfig

    async def access(self, request: PluginRequest) -> None:
        raise ValueError("boom in a coroutine")


CATALOG = built_in().with_plugins(Faulty, CoroutineFaulty)


@pytest.fixture(autouse=True)
def fresh_counts() -> Iterator[None]:
    CALLS.clear()
    yield


def faulty_proxy(node: Upstream, plugin: str, **settings: Any) -> RunningProxy:
    passive = {"passive": {"failures": 1, "statuses": [500, 502, 503, 504], "cooldown": 60}}
    target = {"url": node.url, "health_check": passive, "retries": None}
    route = {"name": "r", "paths": ["/"], "target": "backend", "plugins": {plugin: settings}}
    return RunningProxy(make_config({"backend": target}, [route]), CATALOG)


def fault_logs(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "failed in its" in r.getMessage()]


@pytest.mark.parametrize(
    ("plugin", "settings"),
    [
        ("test-faulty", {"phase": "access"}),
        ("test-faulty", {"phase": "access", "wait": True}),
        ("test-coroutine-faulty", {"phase": "access"}),
        ("test-faulty", {"phase": "response_headers"}),
    ],
    ids=["access-sync", "access-awaitable", "access-coroutine", "response_headers"],
)
def test_a_fault_before_the_response_is_a_500_problem_logged_once(
    plugin: str, settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with (
        Upstream(echo) as node,
        faulty_proxy(node, plugin, **settings) as proxy,
        Client(proxy.port) as client,
    ):
        first = client.request("GET", "/a")
        # the connection is still usable, and the node was not ejected
        second = client.request("GET", "/b")
    for response in (first, second):
        problem = assert_problem(response, 500)
        assert problem["type"] == "urn:quiver:problem:plugin-failed"
        assert plugin in problem["detail"]
        assert "boom" not in response.body.decode()  # nothing internal reaches the client
    records = fault_logs(caplog)
    assert len(records) == 2  # once per request
    rid = first.header("X-Request-ID")
    assert rid is not None and rid in records[0].getMessage()
    assert plugin in records[0].getMessage()
    assert records[0].exc_info is not None
    if settings["phase"] == "response_headers":
        assert CALLS["response_headers"] == 2  # once per request, never on the 500 too
        assert len(node.requests) == 2  # the node answered; it was not counted as failing


def test_a_fault_in_response_body_cuts_the_connection_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Upstream(echo) as node, faulty_proxy(node, "test-faulty", phase="response_body") as proxy:
        for attempt in (1, 2):  # the worker goes on: the second request meets it again
            with Client(proxy.port) as client:
                try:
                    response = client.request("GET", "/")
                except ConnectionError:
                    pass  # cut before the head left: nothing at all
                else:
                    assert not response.complete  # cut after the head
                assert client.closed
            assert len(fault_logs(caplog)) == attempt
    assert CALLS["response_body"] == 2


def test_a_fault_in_the_log_phase_is_logged_and_the_response_is_untouched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Upstream(echo) as node, faulty_proxy(node, "test-faulty", phase="log") as proxy:
        with Client(proxy.port) as client:
            assert client.request("GET", "/").status == 200
            assert client.request("GET", "/").status == 200
        proxy.call(lambda: None)  # the log phases ran (scheduled before this call)
    records = fault_logs(caplog)
    assert len(records) == 2
    assert "'test-faulty' failed in its log phase" in records[0].getMessage()
