"""What ``rate-limit`` and ``quota`` have in common: settings, and the access phase
that takes one unit per request from a counter store."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from pydantic import Field

from quiver.plugins.base import Plugin, PluginRequest
from quiver.plugins.counters import Counters, StoreUnavailable, Verdict, Window
from quiver.plugins.ip_restriction import CIDR
from quiver.plugins.traffic.keys import By, KeyMaker
from quiver.plugins.traffic.store import StoreConfig, StoreTrouble


class CountedConfig(StoreConfig):
    """The settings of every plugin that counts requests under windows."""

    by: By = Field(
        ["consumer"],
        description="What is counted: consumer, credential, ip, route, path or "
        "header:<name>, or a list of them counted together. A request without it "
        "(no consumer, no such header) is counted by its client address.",
    )
    trusted_proxies: list[CIDR] = Field(
        default_factory=list,
        description="Proxies in front of the gateway whose X-Forwarded-For names the "
        "client, for `by: ip`.",
    )
    headers: bool = Field(
        True,
        description="Add RateLimit-Policy and RateLimit fields to every response, not "
        "only to refusals.",
    )
    legacy_headers: bool = Field(
        False,
        description="Also send X-RateLimit-Limit, X-RateLimit-Remaining and "
        "X-RateLimit-Reset (seconds until reset) for clients that read those.",
    )


C = TypeVar("C", bound=CountedConfig)


class Counted(Plugin[C]):
    """Takes one unit per request under ``windows`` for the request's ``key``;
    subclasses set those in ``__init__`` and say in ``decided`` what a verdict
    means for the request (raise to refuse it)."""

    windows: tuple[Window, ...]
    key: KeyMaker
    counters: Counters
    trouble: StoreTrouble

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        return self.take(request, self.key(request))

    def take(self, request: PluginRequest, key: bytes) -> Awaitable[None] | None:
        """Take one unit for ``key``, and say what the verdict means for ``request``."""
        try:
            verdict = self.counters.take(key, self.windows)
        except StoreUnavailable as exc:  # (a store backing off refuses at once)
            self.trouble.failed(exc)
            return None
        if isinstance(verdict, Verdict):
            self.decided(request, verdict)
            return None
        return self._awaited(request, verdict)

    async def _awaited(self, request: PluginRequest, pending: Awaitable[Verdict]) -> None:
        try:
            verdict = await pending
        except StoreUnavailable as exc:
            self.trouble.failed(exc)
            return
        if self.trouble.failing:
            self.trouble.answered()
        self.decided(request, verdict)

    def decided(self, request: PluginRequest, verdict: Verdict) -> None:
        raise NotImplementedError
