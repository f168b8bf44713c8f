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

from quiver.ai.errors import AIError, Shape, render
from quiver.ai.router import Model, Router
from quiver.ai.upstream import Deployment
from quiver.config.ai import AIConfig
from quiver.plugins.base import PluginRequest
from quiver.plugins.outbound import Outbound
from quiver.plugins.responder import Response

JSON = (b"Content-Type", b"application/json")
SSE = (b"Content-Type", b"text/event-stream")
NO_CACHE = (b"Cache-Control", b"no-cache")
OVERHEAD = b"X-Quiver-Overhead-Ms"
CTX_KEY = "ai"


class Gateway:
    """The state of one AI route for one config."""

    def __init__(
        self, config: AIConfig, allowed: list[str] | None, outbound: Outbound | None
    ) -> None:
        self.config = config
        self.router = Router(config)
        self.allowed = frozenset(allowed) if allowed is not None else None
        self._outbound = outbound
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


class Call:
    """The bookkeeping of one call: timings for X-Quiver-Overhead-Ms and ``ctx["ai"]``."""

    __slots__ = ("info", "started", "upstream")

    def __init__(self, request: PluginRequest, model: str) -> None:
        self.started = time.perf_counter()
        #: seconds spent waiting on providers
        self.upstream = 0.0
        self.info: dict[str, Any] = {"model": model}
        request.ctx[CTX_KEY] = self.info

    def answered_by(self, model: Model, deployment: Deployment) -> None:
        info = self.info
        info["model"] = model.name
        info["provider"] = deployment.provider.name
        info["deployment"] = deployment.model

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


def error_response(error: AIError, shape: Shape, call: Call | None = None) -> Response:
    status, headers, body = render(error, shape)
    if call is not None:
        headers.append(call.overhead())
        call.info["error"] = error.code
    return Response(status, headers, body)
