"""The client-side rate limiter, a server's reported quota, and the breaker per host."""

from __future__ import annotations

import pytest

from quiver.client import (
    NO_RETRY,
    BreakerPolicy,
    CircuitOpenError,
    Client,
    ConnectError,
    RateLimiter,
    ServerStatusError,
)
from quiver.client.breaker import Breakers
from tests.client.scripted import Events, Waits, closed_port, in_turn, json_answer
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(20)

OK = json_answer({"ok": True})


def test_the_limiter_spaces_requests_after_its_burst() -> None:
    limiter = RateLimiter(rate=4, burst=2)
    assert [limiter.reserve(10.0) for _ in range(5)] == [0.0, 0.0, 0.25, 0.5, 0.75]
    assert limiter.reserve(12.0) == 0.0  # time passed: the burst is back


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_limiter_without_a_positive_rate_and_burst_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        RateLimiter(rate, burst)


def test_the_client_holds_requests_to_its_rate_over_real_sockets() -> None:
    waits, events = Waits(), Events()
    limiter = RateLimiter(rate=10)
    with (
        Upstream() as server,
        Client(
            server.url, rate_limit=limiter, sleep=waits.sleep, clock=waits.clock, on_event=events
        ) as api,
    ):
        for _ in range(3):
            assert api.get("/").status == 200
    assert waits.slept == [0.1, 0.1]
    assert len(server.requests) == 3
    assert [e.name for e in events.named("wait")] == ["wait", "wait"]


def test_an_exhausted_ratelimit_quota_holds_the_next_request_to_that_host() -> None:
    waits = Waits()
    spent = json_answer({}, 200, [("RateLimit", '"hour";r=0;t=30')])
    with (
        in_turn(spent, OK, OK) as server,
        Client(server.url, sleep=waits.sleep, clock=waits.clock) as api,
    ):
        for _ in range(3):
            assert api.get("/").status == 200
    assert waits.slept == [30.0]  # before the second request only


def test_a_breaker_opens_after_its_threshold_and_lets_one_probe_through_after_cooldown() -> None:
    breakers = Breakers(BreakerPolicy(threshold=2, cooldown=5))
    assert breakers.record("h", failed=True, now=0) == "closed"
    assert breakers.record("h", failed=True, now=1) == "open"
    assert not breakers.allow("h", now=5.9)
    assert breakers.allow("h", now=6.0)  # the probe
    assert not breakers.allow("h", now=6.0)  # only one
    assert breakers.record("h", failed=True, now=6.1) == "open"
    assert breakers.allow("h", now=11.1)
    assert breakers.record("h", failed=False, now=11.2) == "closed"
    assert breakers.allow("other", now=0)


def test_the_breaker_of_a_dead_host_refuses_without_connecting() -> None:
    waits, events = Waits(), Events()
    port = closed_port()
    breaker = BreakerPolicy(threshold=2, cooldown=30)
    with Client(
        f"http://127.0.0.1:{port}",
        retry=NO_RETRY,
        breaker=breaker,
        clock=waits.clock,
        on_event=events,
    ) as api:
        for _ in range(2):
            with pytest.raises(ConnectError):
                api.get("/")
        with pytest.raises(CircuitOpenError) as caught:
            api.get("/")
        assert not caught.value.retryable
        [opened] = events.named("breaker")
        assert opened.fields == {"host": f"127.0.0.1:{port}", "state": "open"}
        assert len(events.named("request")) == 2  # the third was never sent
        waits.now += 30
        with pytest.raises(ConnectError):  # the probe goes out, and fails
            api.get("/")
        assert len(events.named("request")) == 3


def test_5xx_count_against_a_host_and_a_success_closes_its_breaker() -> None:
    waits = Waits()
    busy = json_answer({}, 500)
    breaker = BreakerPolicy(threshold=1, cooldown=10)
    with (
        in_turn(busy, OK) as server,
        Client(server.url, retry=NO_RETRY, breaker=breaker, clock=waits.clock) as api,
    ):
        with pytest.raises(ServerStatusError):
            api.get("/")
        with pytest.raises(CircuitOpenError):
            api.get("/")
        waits.now += 10
        assert api.get("/").status == 200
        assert api.get("/").status == 200
    assert len(server.requests) == 3
