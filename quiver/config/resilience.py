"""How a target copes with failing nodes: balancing, health checks, retries, breakers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from quiver.config.base import Duration, Strict

BalanceAlgorithm = Literal["round_robin", "least_conn", "p2c", "ewma", "consistent_hash"]
HashOn = Literal["header", "cookie", "ip", "path"]
RetryOn = Literal["connect_error", "timeout", "reset", "502", "503", "504"]
_DEFAULT_RETRY_ON: tuple[RetryOn, ...] = ("connect_error", "reset")


class Balance(Strict):
    """How a target spreads requests over its nodes."""

    algorithm: BalanceAlgorithm = Field(
        "round_robin",
        description=(
            "round_robin (smooth weighted), least_conn (fewest requests in flight, by "
            "weight), p2c (the less busy of two random nodes), ewma (lowest peak-EWMA "
            "latency), consistent_hash (the same key reaches the same node)."
        ),
    )
    hash_on: HashOn | None = Field(
        None, description="consistent_hash key: a header, a cookie, the client IP or the path."
    )
    hash_key: str | None = Field(
        None, description="Header or cookie name, when hash_on is header or cookie."
    )

    @model_validator(mode="after")
    def _hash_settings(self) -> Balance:
        if self.algorithm == "consistent_hash":
            if self.hash_on is None:
                raise ValueError("consistent_hash needs 'hash_on' (header, cookie, ip or path)")
            if self.hash_on in ("header", "cookie") and not self.hash_key:
                raise ValueError(f"hash_on: {self.hash_on} needs 'hash_key' (its name)")
        elif self.hash_on is not None or self.hash_key is not None:
            raise ValueError("'hash_on' and 'hash_key' only apply to consistent_hash")
        return self


class ActiveHealthCheck(Strict):
    """Probes every node on a schedule."""

    path: str = Field("/", pattern=r"^/", description="Path requested with GET on each node.")
    interval: Duration = Field(5.0, gt=0, description="Time between two probes of a node.")
    timeout: Duration = Field(1.0, gt=0, description="A probe slower than this fails.")
    healthy_threshold: int = Field(
        2, ge=1, description="Consecutive good probes that bring a node back."
    )
    unhealthy_threshold: int = Field(
        3, ge=1, description="Consecutive failed probes that take a node out."
    )
    statuses: list[int] = Field(
        default_factory=lambda: [200, 201, 202, 203, 204, 205, 206, 300, 301, 302, 303, 304],
        min_length=1,
        description="Response statuses that count as healthy.",
    )


class PassiveHealthCheck(Strict):
    """Takes a node out after real requests fail on it."""

    failures: int = Field(
        5, ge=1, description="Consecutive failed requests (connect error, reset, 5xx) to eject."
    )
    timeouts: int = Field(3, ge=1, description="Consecutive timed-out requests to eject.")
    statuses: list[int] = Field(
        default_factory=lambda: [502, 503, 504],
        description="Response statuses that count as failures, besides connection failures "
        "and timeouts. An application's own 500 says nothing of the node: add it only when "
        "it does.",
    )
    cooldown: Duration = Field(
        10.0, gt=0, description="How long an ejected node gets no traffic before it is tried again."
    )


class HealthCheck(Strict):
    active: ActiveHealthCheck | None = Field(None, description="Probe nodes on a schedule.")
    passive: PassiveHealthCheck | None = Field(None, description="Eject nodes that fail requests.")


class RetryBudget(Strict):
    ratio: float = Field(
        0.2, ge=0, le=1, description="Retries allowed as a share of requests (over 10 s)."
    )
    min_per_second: int = Field(
        10, ge=0, description="Retries always allowed per second, however few requests."
    )


class Retries(Strict):
    """Sending a failed request again, on another node when there is one."""

    attempts: int = Field(3, ge=1, le=10, description="Tries in all, the first one included.")
    per_try_timeout: Duration | None = Field(
        None, gt=0, description="Longest wait for a response to one try; unset: timeouts.read."
    )
    deadline: Duration | None = Field(
        None, gt=0, description="Longest time for all tries together; unset: no limit."
    )
    on: list[RetryOn] = Field(
        default_factory=lambda: list(_DEFAULT_RETRY_ON),
        description="Failures that are retried: connect_error, timeout, reset, 502, 503, 504.",
    )
    methods: Literal["idempotent", "all"] = Field(
        "idempotent",
        description="idempotent: only GET, HEAD, OPTIONS, TRACE, PUT, DELETE or an "
        "Idempotency-Key header; all: any request whose body can be sent again.",
    )
    backoff: Duration = Field(0.025, ge=0, description="Base of the exponential backoff.")
    backoff_max: Duration = Field(1.0, ge=0, description="Cap of one backoff (full jitter).")
    budget: RetryBudget = Field(
        default_factory=RetryBudget, description="Stops retry storms when a target is down."
    )


class CircuitBreaker(Strict):
    """Stops sending to a node whose requests mostly fail, then probes it."""

    failure_rate: float = Field(
        0.5, gt=0, le=1, description="Share of failed requests in the window that opens it."
    )
    window: Duration = Field(10.0, gt=0, description="Sliding window the rate is measured over.")
    min_requests: int = Field(
        20, ge=1, description="Requests in the window before the rate is trusted."
    )
    open_for: Duration = Field(30.0, gt=0, description="How long it stays open.")
    half_open_probes: int = Field(
        3, ge=1, description="Trial requests let through when half-open; all must succeed."
    )
