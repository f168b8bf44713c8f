"""request-size-limit: bodies over the limit are refused with 413."""

from __future__ import annotations

import pydantic
import pytest

from quiver.plugins.request_size_limit import RequestSizeLimit
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Upstream, echo


@pytest.mark.parametrize("value, size", [(10, 10), ("1k", 1024), ("2MB", 2 * 1024 * 1024)])
def test_valid_configs(value: object, size: int) -> None:
    assert RequestSizeLimit.Config.model_validate({"max_size": value}).max_size == size


@pytest.mark.parametrize("settings", [{}, {"max_size": 0}, {"max_size": "lots"}, {"max": 5}])
def test_invalid_configs(settings: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        RequestSizeLimit.Config.model_validate(settings)


def proxy(url: str, max_size: str) -> RunningProxy:
    route = {
        "name": "r",
        "paths": ["/"],
        "target": "b",
        "plugins": {"request-size-limit": {"max_size": max_size}},
    }
    return RunningProxy(make_config({"b": url}, [route]))


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent() -> None:
    with Upstream(echo) as node, proxy(node.url, "1k") as running:
        with Client(running.port) as client:
            client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
            response = client.read_response()
        assert response.status == 413
        assert node.requests == []


def test_a_chunked_body_growing_over_the_limit_is_cut_off() -> None:
    with Upstream(echo) as node, proxy(node.url, "1k") as running:
        with Client(running.port) as client:
            chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
            client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            client.send(chunk + chunk)
            response = client.read_response()
        assert response.status == 413


def test_bodies_within_the_limit_pass() -> None:
    with Upstream(echo) as node, proxy(node.url, "1k") as running:
        with Client(running.port) as client:
            response = client.request("POST", "/", body=b"y" * 1000)
        assert response.status == 200
        assert response.json()["body_length"] == 1000
