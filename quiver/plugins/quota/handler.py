"""The ``quota`` plugin: takes one unit per request from the kept counter store."""

from __future__ import annotations

import math
from zoneinfo import ZoneInfo

from quiver.errors import TooManyRequests
from quiver.observe.limits_reached import QUOTA_REACHED, readable_key, timestamp
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.counters import Verdict, Window
from quiver.plugins.quota.config import QuotaConfig
from quiver.plugins.quota.periods import NOMINAL, calendar, duration_name
from quiver.plugins.traffic.counted import Counted
from quiver.plugins.traffic.headers import Reporter, policy_item
from quiver.plugins.traffic.keys import KeyMaker
from quiver.plugins.traffic.reached import reached_notes
from quiver.plugins.traffic.store import StoreTrouble, counters_for


class Quota(Counted[QuotaConfig]):
    """Lets at most `limit` requests per `period` through for each consumer (or
    credential, client address, route, path, header value, or a combination: `by`),
    and answers the others 429 with Retry-After set to the end of the period. A
    calendar period (`day`, `week`, `month`) starts afresh at midnight in
    `time_zone`; a rolling period (`7d`, `30d`) counts the requests of the last so
    long. Counting is exact and atomic across the workers of the node, and the
    counts are kept in the run directory, so a restart does not hand out a fresh
    allowance (`store: redis` shares them between nodes). Responses carry a
    `quota-<period>` item in RateLimit-Policy and RateLimit, next to those of
    `rate-limit` when both apply. The quota applies where it is attached: on a
    route, to that route's requests; on a target, to its routes together; globally,
    to all requests together."""

    name = "quota"
    priority = 905  # after rate-limit and concurrency-limit: refused bursts spend none
    Config = QuotaConfig

    def __init__(self, config: QuotaConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        unit = config.period
        name: str
        if isinstance(unit, str):  # a calendar period
            period = calendar(unit, ZoneInfo(config.time_zone))
            window = Window(config.limit, NOMINAL[unit], "fixed_window", period=period)
            name, label = unit, f"{unit}@{config.time_zone}"
        else:
            name = label = duration_name(unit)
            window = Window(config.limit, unit, "sliding_window")
        self.windows = (window,)
        self.names = (f"quota-{name}",)
        self.reporter = Reporter(self.names, self.windows, legacy=config.legacy_headers)
        self.clock = context.stores.clock
        # (a change of period or time zone starts a fresh count; a change of limit not)
        self.key = KeyMaker(f"q|{context.scope}|{label}", config.by, config.trusted_proxies)
        self.counters = counters_for(config, context, kept=True)
        self.trouble = StoreTrouble(self.name, config.on_store_error)
        self.headers = config.headers
        self.scope = context.scope
        self.notes = reached_notes(context.stores)
        self._policy = (-1.0, b"")  # (period start, RateLimit-Policy value)

    def policy(self) -> bytes:
        """RateLimit-Policy of the current period: ``w`` is its length (a calendar
        month or a day across a clock change is not a fixed number of seconds)."""
        window = self.windows[0]
        start, end = window.bounds(self.clock()) if window.period else (0.0, window.seconds)
        if start != self._policy[0]:
            self._policy = (start, policy_item(self.names[0], self.config.limit, end - start))
        return self._policy[1]

    def decided(self, request: PluginRequest, verdict: Verdict) -> None:
        if not verdict.allowed:
            self.reached(request, verdict)
            fields = self.reporter.refusal(
                request, verdict.usage, verdict.retry_after, self.policy()
            )
            detail = f"quota of {self.config.limit} requests per {self.names[0][6:]} is spent"
            raise TooManyRequests(detail, headers=fields)
        if self.headers:
            self.reporter.add_to(request, verdict.usage, self.policy())

    def reached(self, request: PluginRequest, verdict: Verdict) -> None:
        """Note the refusal for a ``quota.reached`` event: one per key and period (a
        rolling period's periods are counted off from the epoch, for the workers to
        agree on; a worker is quiet until the refused key could pass again)."""
        key = self.key(request)
        if self.notes.quiet(QUOTA_REACHED, key):
            return
        window, now = self.windows[0], self.clock()
        if window.period is not None:
            period = resets = window.bounds(now)[1]
        else:
            period, resets = math.floor(now / window.seconds), now + verdict.retry_after
        consumer = request.consumer
        data = {
            "scope": self.scope,
            "key": readable_key(key),
            "consumer": consumer.name if consumer is not None else None,
            "limit": self.config.limit,
            "period": self.names[0][6:],
            "resets_at": timestamp(resets),
        }
        self.notes.note(QUOTA_REACHED, key, period, resets, data)
