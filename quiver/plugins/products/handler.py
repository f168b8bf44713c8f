"""The ``api-product`` plugin: an API's lifecycle and plans on each of its routes.

The data plane puts it on the routes of an API when it compiles a snapshot (with
the API and who subscribed to which plan); a route in no API never has it.  It
refuses a retired API's requests with 410, has a deprecated one's responses
marked (RFC 9745, RFC 8594) by the ``api-deprecation`` plugin it makes (which runs
first), and, for an API with plans, lets through only consumers
with an approved subscription, counted under their plan's rate limit and quota
per (consumer, API) by the very ``rate-limit`` and ``quota`` plugins (same
counter stores, same 429 and header fields).
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from typing import Any

from pydantic import Field

from quiver.config.apis import API_PLUGIN, Api, Plan
from quiver.errors import ApiRetired, SubscriptionRequired
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.products.lifecycle import sunset_fields
from quiver.plugins.products.notice import DeprecationNotice
from quiver.plugins.quota import Quota
from quiver.plugins.rate_limit import RateLimit

#: what key-auth challenges with: a client without a subscription is told the same
_CHALLENGE = ((b"WWW-Authenticate", b'Key realm="quiver"'),)
PLAN_FIELD = b"X-Quiver-Plan"  # (a client's own is dropped on arrival: quiver.http.fields)


class ApiProductConfig(PluginConfig):
    api: Api = Field(description="The API the route belongs to.")
    subscribers: dict[str, str] = Field(
        default_factory=dict, description="The plan of each subscribed consumer, by name."
    )
    count: bool = Field(
        True,
        description="Count requests under the plans' limits; false on a route whose "
        "calls are counted elsewhere (an MCP endpoint: its tool calls go through the "
        "API's own routes).",
    )


class ApiProduct(Plugin[ApiProductConfig]):
    """Applies the lifecycle and the plans of the route's API (docs/apis.md)."""

    name = API_PLUGIN
    priority = 915  # after authentication and acl, before rate-limit and quota
    Config = ApiProductConfig

    def __init__(self, config: ApiProductConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        api = config.api
        self.retired = api.state == "retired"
        self.gone = sunset_fields(api)
        #: what the data plane puts first on the routes of a deprecated API, so that
        #: every answer carries its fields, refusals by other plugins included
        self.notice = (
            DeprecationNotice(DeprecationNotice.Config(api=api), context)
            if api.state == "deprecated"
            else None
        )
        self.gated = bool(api.plans)
        self.subscribers = config.subscribers
        self.plan_values = {plan.name: plan.name.encode() for plan in api.plans}
        # (one scope per API: a consumer's counts are the same on all its routes)
        here = replace(context, scope=f"api:{api.name}")
        self.limiters = {
            plan.name: _limiters(plan, api.counters, here) if config.count else ()
            for plan in api.plans
        }

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        if self.retired:
            raise ApiRetired(f"the API '{self.config.api.name}' is retired", headers=self.gone)
        if not self.gated:
            return None
        consumer = request.consumer
        plan = self.subscribers.get(consumer.name) if consumer is not None else None
        if plan is None:
            raise SubscriptionRequired(
                f"a subscription to the API '{self.config.api.name}' is required",
                headers=_CHALLENGE,
            )
        request.set_header(PLAN_FIELD, self.plan_values[plan])
        request.ctx["plan"] = plan  # (for the access log's `plan` field)
        limiters = self.limiters[plan]
        if not limiters:
            return None
        return self._limited(request, limiters)

    def _limited(
        self, request: PluginRequest, limiters: tuple[Plugin[Any], ...]
    ) -> Awaitable[None] | None:
        for index, limiter in enumerate(limiters):
            pending = limiter.access(request)
            if pending is not None:
                return self._awaited(request, pending, limiters[index + 1 :])
        return None

    async def _awaited(
        self, request: PluginRequest, pending: Awaitable[None], rest: tuple[Plugin[Any], ...]
    ) -> None:
        await pending
        for limiter in rest:
            more = limiter.access(request)
            if more is not None:
                await more


def _limiters(
    plan: Plan, counters: dict[str, Any], context: PluginContext
) -> tuple[Plugin[Any], ...]:
    """The rate-limit and quota plugins a plan stands for, counting by consumer in
    the store ``counters`` names."""
    limiters: list[Plugin[Any]] = []
    if plan.rate_limit is not None:
        limit, window = plan.rate_limit.limit, plan.rate_limit.window
        rate: dict[str, object] = {"limit": limit, "window": window, **counters}
        limiters.append(RateLimit(RateLimit.Config.model_validate(rate), context))
    if plan.quota is not None:
        quota: dict[str, object] = {
            "limit": plan.quota.limit,
            "period": plan.quota.period,
            **counters,
        }
        limiters.append(Quota(Quota.Config.model_validate(quota), context))
    return tuple(limiters)
