"""Fixtures for tests that drive the running proxy through real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import pytest

from quiver.config.models import Config
from tests.support.proxy import RunningProxy, make_config
from tests.support.upstream import Handler, Upstream, echo


class StartUpstream(Protocol):
    def __call__(self, handler: Handler = ...) -> Upstream: ...


class StartProxy(Protocol):
    def __call__(
        self,
        config: Config | dict[str, str | dict[str, Any]],
        routes: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> RunningProxy: ...


@pytest.fixture
def start_upstream() -> Iterator[StartUpstream]:
    """Starts scripted upstream servers, all closed after the test."""
    started: list[Upstream] = []

    def start(handler: Handler = echo) -> Upstream:
        upstream = Upstream(handler)
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        upstream.close()


@pytest.fixture
def echo_upstream(start_upstream: StartUpstream) -> Upstream:
    """An upstream answering every request with JSON describing it."""
    return start_upstream()


@pytest.fixture
def node(echo_upstream: Upstream) -> Upstream:
    """``echo_upstream``, the node behind ``proxy``, under the name data-plane tests use."""
    return echo_upstream


@pytest.fixture
def start_proxy() -> Iterator[StartProxy]:
    """Starts proxies from a Config, or from ``make_config`` arguments; all stopped after."""
    started: list[RunningProxy] = []

    def start(
        config: Config | dict[str, str | dict[str, Any]],
        routes: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> RunningProxy:
        if not isinstance(config, Config):
            config = make_config(config, routes, **extra)
        proxy = RunningProxy(config)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.close()


@pytest.fixture
def proxy(start_proxy: StartProxy, echo_upstream: Upstream) -> RunningProxy:
    """A proxy with default limits routing every path to ``echo_upstream``."""
    return start_proxy({"backend": echo_upstream.url})
