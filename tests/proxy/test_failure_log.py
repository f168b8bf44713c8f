"""Failures of a node are logged with its address, at most a line a second per node."""

from __future__ import annotations

import logging
import socket

import pytest

from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy, make_config


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_node_that_keeps_failing_is_logged_once_a_second_not_once_a_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port()
    config = make_config({"b": {"url": f"http://127.0.0.1:{port}", "retries": None}})
    with RunningProxy(config) as proxy, Client(proxy.port) as client:
        responses = [client.request("GET", f"/{i}") for i in range(10)]
    for response in responses:
        problem = assert_problem(response, 502)
        assert str(port) not in problem["detail"]  # the client reads the target's name
        assert "target 'b'" in problem["detail"]
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "quiver.exchange" and r.levelno == logging.WARNING
    ]
    assert len(lines) == 1  # (ten failures well within a second)
    assert f"127.0.0.1:{port}" in lines[0]
    first_id = responses[0].header("X-Request-ID")
    assert first_id is not None and first_id in lines[0]
