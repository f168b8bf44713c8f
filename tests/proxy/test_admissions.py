"""Each try a circuit breaker admits ends in exactly one outcome, or gives the admission back."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import Field

from quiver.errors import Forbidden
from quiver.plugins.base import Plugin, PluginConfig, PluginRequest
from quiver.plugins.response import ResponseHead
from tests.support.catalog import built_in
from tests.support.nodes import wait_until
from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream, echo


def fails_on_request(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        if request.path.startswith("/fail"):
            conn.respond(502, b"x", [("Connection", "close")])  # no idle connection stays
            conn.close()
            return
        conn.respond(200, b"x")


def test_a_trial_refused_by_a_full_pool_gives_its_admission_back() -> None:
    breaker = {"min_requests": 1, "open_for": 0.05, "half_open_probes": 1}
    target = {"circuit_breaker": breaker, "pool": {"max_connections": 1}, "retries": None}
    with (
        Upstream(fails_on_request) as node,
        RunningProxy(make_config({"b": {"url": node.url, **target}})) as proxy,
    ):
        assert proxy.server is not None
        runtime = proxy.server.state.snapshot.targets["b"].nodes[0]

        def state() -> tuple[str, int]:
            return proxy.call(lambda: (runtime.breaker.state, runtime.breaker._probes_out))

        with Client(proxy.port) as client:
            assert client.request("GET", "/fail").status == 502  # opens the breaker
        wait_until(lambda: state()[0] == "half_open", "the breaker is half-open")
        # the only connection is taken (say, by a slow request admitted earlier)
        proxy.call(lambda: setattr(runtime.pool, "_connecting", 1))
        with Client(proxy.port) as client:
            assert_problem(client.request("GET", "/trial"), 503)
        assert state() == ("half_open", 0)  # the trial slot is free again
        proxy.call(lambda: setattr(runtime.pool, "_connecting", 0))
        with Client(proxy.port) as client:
            assert client.request("GET", "/ok").status == 200
        assert state()[0] == "closed"


class Refuse(Plugin[Any]):
    name = "test-refuse-response"
    priority = 1

    class Config(PluginConfig):
        status: int = Field(403, description="Unused.")

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        raise Forbidden("response refused by policy")


def test_a_plugin_refusing_a_good_response_does_not_count_against_the_node(
    caplog: pytest.LogCaptureFixture,
) -> None:
    breaker = {"min_requests": 1, "failure_rate": 0.1, "open_for": 60}
    routes = [{"name": "r", "paths": ["/"], "target": "b", "plugins": {Refuse.name: {}}}]
    with Upstream(echo) as node:
        config = make_config({"b": {"url": node.url, "circuit_breaker": breaker}}, routes)
        with RunningProxy(config, built_in().with_plugins(Refuse)) as proxy:
            with Client(proxy.port) as client:
                responses = [client.request("GET", "/x") for _ in range(3)]
            assert proxy.server is not None
            runtime = proxy.server.state.snapshot.targets["b"].nodes[0]
            assert proxy.call(lambda: runtime.breaker.state) == "closed"
    for response in responses:
        assert assert_problem(response, 403)["detail"] == "response refused by policy"
    assert len(node.requests) == 3
    upstream_errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert upstream_errors == []
