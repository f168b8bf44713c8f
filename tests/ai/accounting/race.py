"""The budget race, shared by the local and the Redis tests: processes admit calls
for one consumer at the same moment, a fake provider answers each with an exact
usage that never exceeds the output cap of the request it got, and every call is
settled.  What each process admitted and used is handed back to the test."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import random
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from quiver.ai.accounting import Accounting, BudgetExceeded, RateLimited, settled
from quiver.ai.accounting.tokens import output_cap
from quiver.config.ai_accounting import AccountingSettings
from quiver.plugins.counters import Counters

NOW = 1_800_000_000.0  # a fixed clock: token buckets never refill during the race
ATTEMPTS = 5


class Deployment(BaseModel):
    """What accounting reads of a deployment (the AI config's has more)."""

    provider: str = "fake"
    model: str = "fake-model"
    max_output: int | None = None
    rpm: int = 0
    tpm: int = 0


class Model(BaseModel):
    name: str
    deployments: list[Deployment] = []
    price: dict[str, float] | None = None
    fallbacks: list[str] = []


class AISettings(AccountingSettings):
    """The accounting keys with the `models` the AI config gives them."""

    models: list[Model] = []


def settings(document: dict[str, Any]) -> AISettings:
    """The race's settings: model m, whose answers are at most 256 tokens."""
    models = [{"name": "m", "deployments": [{"max_output": 256}]}]
    return AISettings.model_validate({"models": models, **document})


def chat_of(rng: random.Random) -> dict[str, Any]:
    """A request of 5 to 40 words, with a max_tokens two times in three."""
    words = rng.randint(5, 40)
    chat: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": " ".join(["word"] * words)}],
    }
    if rng.random() < 2 / 3:
        chat["max_tokens"] = rng.randint(10, 200)
    return chat


def usage_of(chat: dict[str, Any], rng: random.Random) -> dict[str, int]:
    """The fake provider's exact usage: one token per word of the prompt (fewer than
    its bytes), an answer as long as it likes up to the cap it was given."""
    prompt = sum(len(str(m["content"]).split()) for m in chat["messages"])
    cap = output_cap(chat)
    assert cap is not None, "every metered call carries an output cap upstream"
    return {"prompt_tokens": prompt, "completion_tokens": rng.randint(cap // 2, cap)}


async def one_process(
    settings: AccountingSettings, counters: Counters, calls: int, seed: int
) -> list[tuple[str, int]]:
    """``calls`` concurrent calls of consumer alice: ("ok", tokens used) or
    ("budget" | "rate", 0) for each."""
    accounting = Accounting(settings, counters)
    rng = random.Random(seed)

    async def call() -> tuple[str, int]:
        chat = chat_of(rng)
        refused = "budget"
        for _ in range(ATTEMPTS):  # a client that tries again after a 429
            try:
                admitted = accounting.admit("alice", "data", "m", chat)
                reservation = admitted if not asyncio.iscoroutine(admitted) else await admitted
            except BudgetExceeded:
                refused = "budget"
            except RateLimited:
                refused = "rate"
            else:
                await asyncio.sleep(0)  # the provider answers later: other calls go meanwhile
                usage = usage_of(chat, rng)
                await settled(reservation.settle(usage))  # type: ignore[union-attr]
                return "ok", usage["prompt_tokens"] + usage["completion_tokens"]
            await asyncio.sleep(0)
        return refused, 0

    return list(await asyncio.gather(*(call() for _ in range(calls))))


def race(
    settings: AccountingSettings,
    make_counters: Callable[[], Counters],
    processes: int,
    calls: int,
    close: Callable[[Counters], Any] | None = None,
) -> list[tuple[str, int]]:
    """``calls`` calls split over ``processes`` forked processes that start together."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes)
    queue = context.SimpleQueue()

    def child(index: int) -> None:
        async def run() -> list[tuple[str, int]]:
            counters = make_counters()
            barrier.wait()
            try:
                return await one_process(settings, counters, calls // processes, index)
            finally:
                if close is not None:
                    await close(counters)

        try:
            queue.put(asyncio.run(run()))
        except BaseException as exc:  # the test reports it
            queue.put(repr(exc))
        finally:
            os._exit(0)

    children = [context.Process(target=child, args=(index,)) for index in range(processes)]
    for process in children:
        process.start()
    results: list[tuple[str, int]] = []
    for _ in children:
        got = queue.get()
        assert not isinstance(got, str), got
        results += got
    for process in children:
        process.join(10)
    return results
