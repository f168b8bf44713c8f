"""Retries: which errors, which methods, how long between tries; through real sockets."""

from __future__ import annotations

import asyncio
import email.utils

import pytest

from quiver.client import (
    AsyncClient,
    Client,
    ConnectError,
    Headers,
    ReadTimeout,
    RequestSpec,
    RetryPolicy,
    ServerStatusError,
    Timeouts,
)
from quiver.client.errors import RateLimited
from quiver.client.headers import rate_limit_wait, retry_after
from tests.client.scripted import Events, Waits, closed_port, in_turn, json_answer
from tests.support.upstream import Upstream, silent

pytestmark = pytest.mark.timeout(20)

OK = json_answer({"ok": True})
BUSY = json_answer({"busy": True}, 503)


def client(base_url: str, waits: Waits, **options: object) -> Client:
    """A client whose waits are recorded, not slept, and whose jitter draws 1.0."""
    options.setdefault("breaker", None)
    return Client(
        base_url,
        sleep=waits.sleep,
        clock=waits.clock,
        wall_clock=waits.clock,
        random=lambda: 1.0,
        **options,  # type: ignore[arg-type]
    )


# -- the policy alone ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("draw", "retry", "expected"),
    [(1.0, 0, 0.5), (1.0, 1, 1.0), (1.0, 2, 2.0), (0.5, 2, 1.0), (0.0, 2, 0.0), (1.0, 9, 30.0)],
)
def test_backoff_is_a_full_jitter_draw_under_a_capped_exponential(
    draw: float, retry: int, expected: float
) -> None:
    policy = RetryPolicy(attempts=10)
    with (
        in_turn(BUSY) as server,
        Client(server.url, breaker=None, retry=RetryPolicy(0)) as api,
        pytest.raises(ServerStatusError) as caught,
    ):
        api.get("/")
    assert policy.delay(RequestSpec(), caught.value, retry, lambda: draw, 0.0) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "Thu, 01 Jan 1970 00:16:50 GMT"}, 10.0),  # now is 1000
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:01 GMT"}, 0.0),  # past
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(
    headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after(Headers(headers.items()), now=1000.0) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"RateLimit": '"second";r=0;t=4'}, 4.0),
        ({"RateLimit": '"second";r=3;t=1, "day";r=0;t=600'}, 600.0),
        ({"RateLimit": '"second";r=3;t=1'}, None),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "12"}, 12.0),
        ({"RateLimit-Remaining": "5", "RateLimit-Reset": "12"}, None),
        ({}, None),
    ],
)
def test_an_exhausted_ratelimit_quota_says_how_long_to_wait(
    headers: dict[str, str], expected: float | None
) -> None:
    assert rate_limit_wait(Headers(headers.items())) == expected


# -- through real sockets --------------------------------------------------------------------


def test_flaky_5xx_are_retried_with_growing_backoff_until_an_answer() -> None:
    waits = Waits()
    with in_turn(BUSY, BUSY, OK) as server, client(server.url, waits) as api:
        response = api.get("/items")
    assert response.json() == {"ok": True}
    assert len(server.requests) == 3
    assert waits.slept == [0.5, 1.0]


def test_retries_stop_at_the_policy_s_attempts_with_the_last_error() -> None:
    waits, events = Waits(), Events()
    with (
        in_turn(BUSY) as server,
        client(server.url, waits, retry=RetryPolicy(attempts=2), on_event=events) as api,
        pytest.raises(ServerStatusError) as caught,
    ):
        api.get("/items")
    assert caught.value.status == 503 and caught.value.retryable
    assert len(server.requests) == 3
    assert [e.fields["retry"] for e in events.named("retry")] == [1, 2]


def test_429_waits_the_seconds_of_retry_after() -> None:
    waits = Waits()
    limited = json_answer({}, 429, [("Retry-After", "3")])
    with in_turn(limited, OK) as server, client(server.url, waits) as api:
        assert api.get("/").status == 200
    assert waits.slept == [3.0]


def test_429_waits_until_the_http_date_of_retry_after() -> None:
    waits = Waits()
    date = email.utils.formatdate(waits.now + 42, usegmt=True)
    limited = json_answer({}, 429, [("Retry-After", date)])
    with in_turn(limited, OK) as server, client(server.url, waits) as api:
        assert api.get("/").status == 200
    assert waits.slept == [42.0]


def test_429_without_retry_after_waits_for_the_ratelimit_reset() -> None:
    waits = Waits()
    limited = json_answer({}, 429, [("RateLimit", '"minute";r=0;t=17')])
    with in_turn(limited, OK) as server, client(server.url, waits) as api:
        assert api.get("/").status == 200
    assert waits.slept == [17.0]


def test_a_server_asking_for_too_long_a_wait_gets_the_error_at_once() -> None:
    waits = Waits()
    limited = json_answer({}, 429, [("Retry-After", "3600")])
    with (
        in_turn(limited, OK) as server,
        client(server.url, waits) as api,
        pytest.raises(RateLimited) as caught,
    ):
        api.get("/")
    assert caught.value.retry_after == 3600.0
    assert waits.slept == [] and len(server.requests) == 1


def test_a_post_is_not_sent_twice_unless_it_carries_an_idempotency_key() -> None:
    waits = Waits()
    with in_turn(BUSY, BUSY, OK) as server, client(server.url, waits) as api:
        with pytest.raises(ServerStatusError):
            api.post("/orders", json={"item": 1})
        assert len(server.requests) == 1
        keyed = api.post("/orders", json={"item": 1}, headers={"Idempotency-Key": "k-1"})
    assert keyed.status == 200
    assert len(server.requests) == 3


def test_a_refused_connection_is_retried_whatever_the_method() -> None:
    waits = Waits()
    with (
        client(f"http://127.0.0.1:{closed_port()}", waits) as api,
        pytest.raises(ConnectError) as caught,
    ):
        api.post("/orders", json={})
    assert caught.value.retryable and caught.value.unsent
    assert waits.slept == [0.5, 1.0, 2.0]
    assert caught.value.__cause__ is not None  # the transport's error, kept as the cause


def test_a_slow_server_times_out_and_an_idempotent_request_is_retried() -> None:
    waits = Waits()
    timeouts = Timeouts(read=0.2)
    retry = RetryPolicy(attempts=1)
    with (
        Upstream(silent) as server,
        client(server.url, waits, timeouts=timeouts, retry=retry) as api,
    ):
        with pytest.raises(ReadTimeout):
            api.get("/slow")
        assert len(server.requests) == 2
        with pytest.raises(ReadTimeout):
            api.post("/slow")
        assert len(server.requests) == 3  # sent once: it may have done its work


def test_the_async_client_retries_the_same_way() -> None:
    waits = Waits()

    async def main(url: str) -> int:
        async with AsyncClient(
            url, sleep=waits.async_sleep, clock=waits.clock, random=lambda: 1.0, breaker=None
        ) as api:
            return (await api.get("/")).status

    with in_turn(BUSY, json_answer({}, 429, [("Retry-After", "2")]), OK) as server:
        assert asyncio.run(main(server.url)) == 200
    assert waits.slept == [0.5, 2.0]


def test_raise_for_status_off_returns_the_last_answer_after_retries() -> None:
    waits = Waits()
    with in_turn(BUSY) as server, client(server.url, waits, raise_for_status=False) as api:
        response = api.get("/")
    assert response.status == 503
    assert len(server.requests) == 4
