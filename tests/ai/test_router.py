"""The router's choice of deployments, cooldowns, retries and fallbacks (no sockets:
the call each deployment gets is a function of the test)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import pytest
import uvloop

from quiver.ai.errors import (
    AIError,
    ContextWindowExceeded,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from quiver.ai.router import Model, Router
from quiver.ai.upstream import Deployment
from quiver.config.ai import AIConfig


def router(**model: Any) -> Router:
    config = AIConfig.model_validate(
        {
            "providers": [{"name": p, "type": "openai", "api_key": "k"} for p in ("a", "b", "c")],
            "models": [
                {
                    "name": "m",
                    "deployments": [
                        {"provider": "a", "model": "x", "weight": 3},
                        {"provider": "b", "model": "y", "weight": 1},
                        {"provider": "c", "model": "z", "weight": 0},
                    ],
                    **model,
                },
                {"name": "backup", "deployments": [{"provider": "c", "model": "w"}]},
            ],
        }
    )
    return Router(config, random.Random(7))


def names(order: list[Deployment]) -> list[str]:
    return [d.provider.name for d in order]


def test_weighted_shuffles_by_weight_and_leaves_weight_zero_last() -> None:
    r = router()
    model = r.models["m"]
    firsts = Counter(names(model.order(0.0, r.rng))[0] for _ in range(4000))
    assert 2800 < firsts["a"] < 3200 and firsts["c"] == 0
    assert all(names(model.order(0.0, r.rng))[-1] == "c" for _ in range(20))


def test_least_busy_and_latency_order_by_what_they_measure() -> None:
    r = router(routing="least-busy")
    a, b, c = r.models["m"].deployments
    a.in_flight, b.in_flight, c.in_flight = 5, 0, 2
    assert names(r.models["m"].order(0.0, r.rng)) == ["b", "c", "a"]
    r = router(routing="latency")
    a, b, c = r.models["m"].deployments
    for deployment, seconds in ((a, 0.3), (b, 0.1), (c, 0.2)):
        deployment.observe(seconds)
    assert names(r.models["m"].order(0.0, r.rng)) == ["b", "c", "a"]


def test_cooling_deployments_go_last_and_a_preferred_one_first() -> None:
    r = router(routing="least-busy")
    _, b, c = r.models["m"].deployments
    b.cooldown_until = 100.0
    assert names(r.models["m"].order(50.0, r.rng)) == ["a", "c", "b"]
    assert names(r.models["m"].order(50.0, r.rng, prefer=c))[0] == "c"


def run(r: Router, fail: dict[str, AIError]) -> tuple[str, list[str]]:
    tried: list[str] = []

    async def call(model: Model, deployment: Deployment) -> str:
        tried.append(deployment.provider.name + ":" + deployment.model)
        error = fail.get(deployment.model)
        if error is not None:
            raise error
        return deployment.model

    async def main() -> str:
        result, _, _ = await r.run(r.models["m"], call)
        return result

    return asyncio.run(main()), tried


def test_a_retryable_failure_goes_to_the_next_deployment_and_cools_the_first() -> None:
    r = router(routing="least-busy")
    answer, tried = run(r, {"x": ProviderUnavailable("down")})
    assert answer == "y" and tried == ["a:x", "b:y"]
    assert r.models["m"].deployments[0].cooldown_until > 0


def test_every_deployment_failing_falls_back_to_the_next_model() -> None:
    r = router(routing="least-busy", fallbacks=["backup"], retries=2)
    limited = ProviderRateLimited("busy", retry_after=0.0)
    answer, tried = run(r, {"x": limited, "y": limited, "z": limited})
    assert answer == "w" and tried == ["a:x", "b:y", "c:z", "c:w"]


def test_a_context_window_error_skips_the_models_other_deployments() -> None:
    r = router(routing="least-busy", fallbacks=["backup"])
    answer, tried = run(r, {"x": ContextWindowExceeded("too long")})
    assert answer == "w" and tried == ["a:x", "c:w"]


def test_a_refusal_is_answered_at_once() -> None:
    r = router(routing="least-busy", fallbacks=["backup"])
    with pytest.raises(ProviderRejected):
        run(r, {"x": ProviderRejected("bad request", status=400)})


def test_a_retry_after_is_waited_for_in_full_on_the_gateways_loop() -> None:
    # uvloop's timers count whole milliseconds: a plain sleep can end a fraction of
    # one early, which a provider's Retry-After does not allow
    r = router(routing="least-busy", retries=1)
    r.models["m"].deployments = r.models["m"].deployments[:1]
    pause = 0.0137  # (not a whole number of milliseconds)
    calls: list[float] = []  # every other one is refused with the pause

    async def call(model: Model, deployment: Deployment) -> str:
        calls.append(time.monotonic())
        if len(calls) % 2:
            raise ProviderRateLimited("busy", retry_after=pause)
        return deployment.model

    async def main() -> None:
        for _ in range(60):
            await r.run(r.models["m"], call)

    uvloop.run(main())
    gaps = [again - refused for refused, again in zip(calls[::2], calls[1::2], strict=True)]
    assert len(gaps) == 60 and min(gaps) >= pause


def test_a_long_retry_after_is_not_waited_for() -> None:
    r = router(routing="least-busy", retries=3, max_retry_wait=1)
    r.models["m"].deployments = r.models["m"].deployments[:1]
    with pytest.raises(ProviderRateLimited):
        run(r, {"x": ProviderRateLimited("busy", retry_after=30.0)})
