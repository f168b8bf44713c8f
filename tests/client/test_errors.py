"""Errors: one typed hierarchy, Quiver's problem documents read from a running gateway."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from quiver.client import (
    NO_RETRY,
    AsyncClient,
    Client,
    ClientProblem,
    ClientStatusError,
    DecodingError,
    HTTPStatusError,
    InvalidURL,
    ProblemError,
    QuiverClientError,
    RateLimited,
    RateLimitedProblem,
    ServerProblem,
    ServerStatusError,
)
from quiver.errors import QuiverError
from tests.client.scripted import Waits, closed_port, in_turn, json_answer
from tests.support.proxy import RunningProxy
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(30)

GATEWAY = """\
listen: 127.0.0.1:0
consumers:
  - name: alice
    credentials:
      key-auth: [{key: alice-key-0123456789}]
targets:
  - {name: backend, url: "BACKEND"}
  - {name: nowhere, url: "NOWHERE"}
routes:
  - {name: broken, paths: ["/broken"], target: nowhere}
  - name: keys
    paths: ["/keys"]
    target: backend
    plugins: {key-auth: {}}
  - name: limited-httpx
    paths: ["/limited/httpx"]
    target: backend
    plugins: {rate-limit: {limit: 1, window: 60, by: ip}}
  - name: limited-http11
    paths: ["/limited/http11"]
    target: backend
    plugins: {rate-limit: {limit: 1, window: 60, by: ip}}
"""  # a limited route per transport: the gateway serves the tests of both


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with Upstream() as backend:
        config = GATEWAY.replace("BACKEND", backend.url)
        config = config.replace("NOWHERE", f"http://127.0.0.1:{closed_port()}")
        with RunningProxy(config) as proxy:
            yield f"http://127.0.0.1:{proxy.port}"


def test_a_502_problem_from_the_gateway_is_a_retryable_server_problem(gateway: str) -> None:
    with Client(gateway, retry=NO_RETRY) as client, pytest.raises(ServerProblem) as caught:
        client.get("/broken")
    error = caught.value
    assert isinstance(error, ServerStatusError) and isinstance(error, ProblemError)
    assert error.retryable
    assert (error.status, error.type, error.title) == (
        502,
        "urn:quiver:problem:bad-gateway",
        "Bad Gateway",
    )
    assert "'nowhere'" in error.detail
    assert re.fullmatch("[0-9a-f]{32}", error.request_id or "")
    assert error.request_id == error.response.headers["X-Request-ID"]
    assert "answered 502" in str(error) and error.detail in str(error)


def test_a_401_problem_is_a_client_problem_that_is_not_retried(gateway: str) -> None:
    with Client(gateway) as client, pytest.raises(ClientProblem) as caught:
        client.get("/keys")
    error = caught.value
    assert isinstance(error, ClientStatusError) and not error.retryable
    assert (error.status, error.type) == (401, "urn:quiver:problem:unauthorized")
    assert error.response.headers.get("WWW-Authenticate")
    with Client(gateway, headers={"apikey": "alice-key-0123456789"}) as client:
        assert client.get("/keys").status == 200


def test_the_gateway_s_429_is_retried_after_the_time_it_asks_for(
    gateway: str, transport: str
) -> None:
    waits = Waits()
    with Client(
        gateway, sleep=waits.sleep, clock=waits.clock, wall_clock=waits.clock, breaker=None
    ) as client:
        assert client.get(f"/limited/{transport}").status == 200
        assert waits.slept == []
        with pytest.raises(RateLimitedProblem) as caught:
            client.get(f"/limited/{transport}")
    error = caught.value
    assert isinstance(error, RateLimited) and error.type == "urn:quiver:problem:rate-limited"
    assert error.retry_after is not None and error.retry_after >= 1
    assert ";r=0;" in error.response.headers["RateLimit"]
    # held first by the RateLimit field of the 200 (r=0), then three retries
    assert len(waits.slept) == 4 and all(s >= 1 for s in waits.slept)


def test_every_error_is_a_quiver_client_error_and_a_quiver_error(gateway: str) -> None:
    async def main() -> QuiverClientError:
        async with AsyncClient(gateway, retry=NO_RETRY) as client:
            try:
                await client.get("/broken")
            except QuiverClientError as error:
                return error
        raise AssertionError("no error")

    error = asyncio.run(main())
    assert isinstance(error, ServerProblem) and isinstance(error, QuiverError)


def test_a_plain_error_status_is_typed_by_its_class_without_a_problem() -> None:
    answers = [json_answer({"x": 1}, 404), json_answer({}, 429), json_answer({}, 500)]
    with in_turn(*answers) as server, Client(server.url, retry=NO_RETRY) as client:
        caught = []
        for _ in answers:
            with pytest.raises(HTTPStatusError) as error:
                client.get("/")
            caught.append(error.value)
    assert [type(e) for e in caught] == [ClientStatusError, RateLimited, ServerStatusError]
    assert [e.retryable for e in caught] == [False, True, True]
    assert not any(isinstance(e, ProblemError) for e in caught)


def test_a_body_that_is_not_json_and_a_bad_url_are_typed_too() -> None:
    with in_turn((200, [], b"<html>")) as server, Client(server.url) as client:
        with pytest.raises(DecodingError):
            client.get("/").json()
        with pytest.raises(InvalidURL):
            client.get("ftp://example.invalid/")
