"""What the fronts of one AI route share, built once per config: the models, the
router, the worker's outbound client, and the bookkeeping of each call.

Every call leaves ``request.ctx["ai"]`` filled for the exchange's record (the call
log, spend rows and metrics read it)::

    {"model": "gpt-4o-mini", "provider": "openai", "deployment": "gpt-4o-mini",
     "prompt_tokens": 12, "completion_tokens": 30, "cost": 2.1e-05, "ttft_ms": 180.0}
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from quiver.ai.accounting import Accounting, Reservation, settled
from quiver.ai.accounting.prices import Price, Prices
from quiver.ai.accounting.tokens import output_cap, prompt_upper_bound
from quiver.ai.errors import (
    AIError,
    ContextWindowExceeded,
    ProviderRateLimited,
    Shape,
    from_http_error,
    render,
)
from quiver.ai.router import Model, Router
from quiver.ai.stored import response_store
from quiver.ai.upstream import Deployment
from quiver.config.ai import AIConfig
from quiver.errors import HTTPError
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.outbound import Outbound
from quiver.plugins.responder import Response

JSON = (b"Content-Type", b"application/json")
SSE = (b"Content-Type", b"text/event-stream")
NO_CACHE = (b"Cache-Control", b"no-cache")
OVERHEAD = b"X-Quiver-Overhead-Ms"
CTX_KEY = "ai"


class Gateway:
    """The state of one AI route for one config."""

    def __init__(self, config: AIConfig, allowed: list[str] | None, context: PluginContext) -> None:
        self.config = config
        self.router = Router(config)
        self.allowed = frozenset(allowed) if allowed is not None else None
        self._outbound: Outbound | None = context.outbound
        self.prices = Prices(
            {m.name: Price(m.price.input, m.price.output) for m in config.models if m.price}
        )
        counters = config.counters
        #: where stored responses are kept (as the counters are: run directory or Redis)
        self.responses = response_store(
            context.stores, counters.backend, counters.url, counters.prefix, counters.timeout
        )
        counted = any(d.rpm or d.tpm for m in config.models for d in m.deployments)
        #: budgets and limits (None when the config has none: nothing to count)
        self.accounting = (
            Accounting(config, context.stores)
            if config.budgets or config.limits or counted
            else None
        )
        names = [m.name for m in config.models if self.allowed is None or m.name in self.allowed]
        self.model_list = [
            {"id": name, "object": "model", "created": 0, "owned_by": "quiver"} for name in names
        ]
        self.models_body = orjson.dumps({"object": "list", "data": self.model_list})

    @property
    def outbound(self) -> Outbound:
        if self._outbound is None:
            raise AIError("the gateway cannot call providers here", status=503)
        return self._outbound

    def model(self, name: object) -> Model:
        return self.router.model(name, self.allowed)

    async def admit(
        self, request: PluginRequest, call: Call, model: Model, body: dict[str, Any]
    ) -> None:
        """Reserve what the call may use under the budgets and limits that apply to
        its consumer (BudgetExceeded / RateLimited when refused); ``body`` may get an
        output cap (``max_tokens``) so that the provider cannot exceed the reservation."""
        accounting = self.accounting
        if accounting is None:
            return
        consumer = request.consumer
        name = consumer.name if consumer is not None else None
        team = getattr(consumer, "team", None)
        reserved = accounting.admit(name, team, model.name, body)
        if not isinstance(reserved, Reservation):
            reserved = await reserved
        call.reservation = reserved

    async def admit_deployment(
        self, call: Call, model: Model, deployment: Deployment, body: dict[str, Any]
    ) -> None:
        """Check that the call fits ``deployment``'s context window (``max_context``:
        else ContextWindowExceeded, without sending it, and the router falls back), then
        reserve it under the deployment's own rpm/tpm; a full deployment is a retryable
        failure, so the router tries another one."""
        window = deployment.config.max_context
        if window is not None:
            if call.prompt_bound is None:
                call.prompt_bound = prompt_upper_bound(body)
            output = output_cap(body) or 0
            if call.prompt_bound + output > window:
                raise ContextWindowExceeded(
                    f"{deployment.label}: this request may take {call.prompt_bound} prompt "
                    f"tokens plus {output} output tokens, more than its {window}-token window",
                    param="messages",
                )
        accounting = self.accounting
        if accounting is None or not (deployment.config.rpm or deployment.config.tpm):
            return
        tokens = call.reservation.tokens if call.reservation is not None else None
        held = accounting.deployment_admit(model.name, deployment.index, body, tokens or None)
        if held is not None and not isinstance(held, Reservation):
            held = await held
        if held is None:
            raise ProviderRateLimited(
                f"{deployment.label} is at its rpm/tpm limit", retry_after=1.0
            )
        call.held.append(held)

    def checks(self, deployment: Deployment) -> bool:
        """Whether :meth:`admit_deployment` has anything to check for ``deployment``
        (a context window, rpm/tpm limits): the fronts skip it when not."""
        config = deployment.config
        return config.max_context is not None or (
            self.accounting is not None and bool(config.rpm or config.tpm)
        )

    def note_cost(self, call: Call, usage: dict[str, Any] | None) -> None:
        """Note the cost of ``call``'s usage, when its model has a price."""
        info = call.info
        if usage is not None and "prompt_tokens" in info:
            cost = self.prices.cost(info["model"], usage, info.get("deployment"))
            if cost is not None:
                info["cost"] = cost

    async def settle(self, call: Call, usage: dict[str, Any] | None) -> None:
        """Correct the reservations of ``call`` to its usage (None: give them back),
        and note its cost (:meth:`note_cost` alone for a call that holds none)."""
        self.note_cost(call, usage)
        reservations = call.held
        if call.reservation is not None:
            reservations = [call.reservation, *reservations]
        call.reservation, call.held = None, []
        for reservation in reservations:
            await settled(reservation.settle(usage, call.info.get("deployment")))


class Call:
    """The bookkeeping of one call: timings for X-Quiver-Overhead-Ms, ``ctx["ai"]``,
    and what it holds under budgets and limits until it is settled."""

    __slots__ = ("held", "info", "prompt_bound", "reservation", "started", "upstream")

    def __init__(self, request: PluginRequest, model: str) -> None:
        self.started = time.perf_counter()
        #: seconds spent waiting on providers
        self.upstream = 0.0
        self.info: dict[str, Any] = {"model": model}
        request.ctx[CTX_KEY] = self.info
        self.reservation: Reservation | None = None
        #: deployments' rpm/tpm reservations
        self.held: list[Reservation] = []
        #: the prompt's upper bound in tokens, once a context window asked for it
        self.prompt_bound: int | None = None

    def usage_document(self) -> dict[str, Any] | None:
        """The usage noted so far, as the accounting reads it (None: none known)."""
        info = self.info
        if "prompt_tokens" not in info:
            return None
        return {
            "prompt_tokens": info["prompt_tokens"],
            "completion_tokens": info.get("completion_tokens", 0),
        }

    def answered_by(self, model: Model, deployment: Deployment) -> None:
        info = self.info
        info["model"] = model.name
        info["provider"] = deployment.provider.name
        info["deployment"] = deployment.model

    def waited(self, seconds: float) -> None:
        """A pause a provider asked for (Retry-After) before the call was tried again."""
        self.upstream += seconds

    def first_token(self) -> None:
        self.info["ttft_ms"] = round((time.perf_counter() - self.started) * 1000, 3)

    def usage(self, prompt: object, completion: object) -> None:
        info = self.info
        if isinstance(prompt, int):
            info["prompt_tokens"] = prompt
        if isinstance(completion, int):
            info["completion_tokens"] = completion

    def overhead(self) -> tuple[bytes, bytes]:
        """The X-Quiver-Overhead-Ms field: time in the gateway, providers' time apart."""
        spent = time.perf_counter() - self.started - self.upstream
        return OVERHEAD, b"%.3f" % (max(spent, 0.0) * 1000)


def error_response(
    error: AIError | HTTPError, shape: Shape, request_id: bytes, call: Call | None = None
) -> Response:
    """``error`` in the front's shape (a gateway refusal such as a budget's 429 too,
    with its Retry-After), naming the request (see :func:`~quiver.ai.errors.render`)."""
    if isinstance(error, HTTPError):
        error = from_http_error(error)
    status, headers, body = render(error, shape, request_id)
    if call is not None:
        headers.append(call.overhead())
        call.info["error"] = error.code
    return Response(status, headers, body)
