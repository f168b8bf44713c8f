"""Which deployment takes a call, and what happens when it fails.

A call to a model tries its deployments in the order its ``routing`` gives:

- ``weighted``: a weighted shuffle (each next pick random in proportion to the
  weights of those left);
- ``least-busy``: fewest calls in flight from this worker first (ties by weight);
- ``latency``: lowest average time to the response head first (untried ones first).

Deployments cooling down after a failure go last.  A retryable failure (429, 5xx,
unreachable, timeout) cools the deployment down for later calls (for the
provider's Retry-After when it gave one, else the model's ``cooldown``) and the
call goes to the next one, up to ``retries`` more tries; a deployment tried again
within the call is waited for as long as its Retry-After said, if that is no
longer than ``max_retry_wait`` (else the call falls back).  When the model is spent (or the
prompt is too long for it), the ``fallbacks`` are tried in order the same way.  All
of this happens before the client got a byte: a stream that broke after its first
byte cannot be retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import TypeVar

from quiver.ai.errors import AIError, ContextWindowExceeded, ModelNotFound
from quiver.ai.upstream import Deployment
from quiver.config.ai import AIConfig, AIModel

T = TypeVar("T")


class Model:
    """A client-facing model: its settings and its deployments (runtime state in them)."""

    __slots__ = ("config", "deployments", "fallbacks", "name")

    def __init__(self, config: AIModel, deployments: list[Deployment]) -> None:
        self.config = config
        self.name = config.name
        self.deployments = deployments
        self.fallbacks: list[Model] = []

    def order(
        self, now: float, rng: random.Random, prefer: Deployment | None = None
    ) -> list[Deployment]:
        """The deployments in the order they are tried (``prefer`` first when it is one
        of them: the deployment that holds a conversation)."""
        deployments = self.deployments
        if len(deployments) == 1:
            return deployments
        if prefer is not None and prefer in deployments:
            rest = [d for d in self.order(now, rng) if d is not prefer]
            return [prefer, *rest]
        routing = self.config.routing
        if routing == "least-busy":
            ranked = sorted(deployments, key=lambda d: (d.in_flight, -d.weight))
        elif routing == "latency":
            ranked = sorted(deployments, key=lambda d: d.latency)
        else:
            ranked = _weighted_shuffle(deployments, rng)
        ready = [d for d in ranked if d.cooldown_until <= now]
        if len(ready) == len(ranked):
            return ranked
        cooling = sorted((d for d in ranked if d.cooldown_until > now), key=_cooldown_end)
        return ready + cooling


def _cooldown_end(deployment: Deployment) -> float:
    return deployment.cooldown_until


def _weighted_shuffle(deployments: list[Deployment], rng: random.Random) -> list[Deployment]:
    left = [d for d in deployments if d.weight > 0]
    order = []
    while left:
        pick = rng.random() * sum(d.weight for d in left)
        for index, deployment in enumerate(left):
            pick -= deployment.weight
            if pick < 0 or index == len(left) - 1:
                order.append(left.pop(index))
                break
    return order + [d for d in deployments if d.weight == 0]


class Router:
    """The models of one config and the loop that tries their deployments."""

    def __init__(self, config: AIConfig, rng: random.Random | None = None) -> None:
        providers = {provider.name: provider for provider in config.providers}
        self.models: dict[str, Model] = {}
        for model in config.models:
            deployments = [
                Deployment(d, providers[d.provider], index)
                for index, d in enumerate(model.deployments)
            ]
            self.models[model.name] = Model(model, deployments)
        for model in config.models:
            self.models[model.name].fallbacks = [self.models[name] for name in model.fallbacks]
        self.rng = rng or random.Random()

    def find(self, model: Model, key: str) -> Deployment | None:
        """The deployment of ``model`` (or of its fallbacks) that ``key`` names."""
        for current in (model, *model.fallbacks):
            for deployment in current.deployments:
                if deployment_key(current, deployment) == key:
                    return deployment
        return None

    def model(self, name: object, allowed: frozenset[str] | None) -> Model:
        """The model a request names; ModelNotFound when none (or not on the route)."""
        model = self.models.get(name) if isinstance(name, str) else None
        if model is None or (allowed is not None and model.name not in allowed):
            shown = name if isinstance(name, str) else repr(name)
            raise ModelNotFound(
                f"The model '{shown}' does not exist or you do not have access to it.",
                param="model",
            )
        return model

    async def run(
        self,
        model: Model,
        call: Callable[[Model, Deployment], Awaitable[T]],
        prefer: Deployment | None = None,
        waited: Callable[[float], None] | None = None,
    ) -> tuple[T, Model, Deployment]:
        """``call(model, deployment)`` on the first deployment that answers, with retries
        and fallbacks (``prefer`` tried first); the result and who answered it.  The
        last failure is raised when none did.  ``waited(seconds)`` is told each pause a
        provider's Retry-After asked for (the provider's time, not the gateway's)."""
        # (the loop is looked up only when its clock is read: asyncio's lookup costs a
        # getpid system call, and a single deployment's first try needs no clock)
        loop: asyncio.AbstractEventLoop | None = None
        last: AIError | None = None
        for current in (model, *model.fallbacks):
            config = current.config
            if len(current.deployments) == 1 and prefer is None:
                order = current.deployments  # (what order() answers, without the clock)
            else:
                loop = loop or asyncio.get_running_loop()
                order = current.order(loop.time(), self.rng, prefer)
            #: when a deployment that failed this call may be tried again (Retry-After)
            again: dict[int, float] = {}
            for attempt in range(config.retries + 1):
                deployment = order[attempt % len(order)]
                retry_at = again.get(id(deployment))
                if retry_at is not None:
                    wait = retry_at - monotonic()
                    if wait > 0:
                        if wait > config.max_retry_wait:
                            break  # (it asked for a longer pause than we wait: fall back)
                        await _pause_until(retry_at)
                        if waited is not None:
                            waited(wait)
                deployment.in_flight += 1
                try:
                    return await call(current, deployment), current, deployment
                except ContextWindowExceeded as exc:
                    last = exc
                    break  # (another deployment of the model has the same window)
                except AIError as exc:
                    if not exc.retryable:
                        raise
                    last = exc
                    loop = loop or asyncio.get_running_loop()
                    now = loop.time()
                    pause = exc.retry_after if exc.retry_after is not None else config.cooldown
                    deployment.cooldown_until = now + pause
                    again[id(deployment)] = monotonic() + (exc.retry_after or 0.0)
                finally:
                    deployment.in_flight -= 1
        assert last is not None
        raise last


async def _pause_until(moment: float) -> None:
    """Sleep until ``moment`` (``time.monotonic()``) has passed, never less: the
    loop's timers count whole milliseconds and can end a pause a fraction of one
    early, and a Retry-After is the least a provider asked to be left alone."""
    while (left := moment - monotonic()) > 0:
        await asyncio.sleep(max(left, 0.001))


def deployment_key(model: Model, deployment: Deployment) -> str:
    """A short stable name of ``deployment`` serving ``model`` (in response ids)."""
    label = f"{model.name}\0{deployment.provider.name}\0{deployment.model}"
    return hashlib.blake2b(label.encode(), digest_size=6).hexdigest()
