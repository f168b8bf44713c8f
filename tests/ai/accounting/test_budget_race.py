"""The budget race: 200 concurrent calls of one consumer, from several processes
sharing one counter store, never use more than a budget of N tokens or a TPM
limit, with the local store (one node's workers) and with Redis (every node)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quiver.ai.accounting.budgets import AI_COUNTERS_FILE
from quiver.plugins.counters import Counters, Window
from quiver.plugins.counters.local import LocalCounters
from quiver.plugins.counters.redis import RedisCounters
from tests.ai.accounting.race import NOW, race, settings
from tests.support.redis_nodes import delete_prefixed, require_redis, unique_prefix

pytestmark = pytest.mark.timeout(60)

CALLS = 200
PROCESSES = 4
BUDGET = 6000
TPM = 4000

SETTINGS = {
    "budget": settings({"budgets": [{"consumer": "alice", "tokens": BUDGET, "period": "total"}]}),
    "tpm": settings({"limits": [{"consumer": "*", "tpm": TPM}]}),
    "both": settings(
        {
            "budgets": [{"team": "data", "tokens": BUDGET, "period": "day"}],
            "limits": [{"consumer": "alice", "tpm": TPM, "rpm": 150}],
        }
    ),
}
BOUND = {"budget": BUDGET, "tpm": TPM, "both": TPM}


def check(results: list[tuple[str, int]], bound: int) -> None:
    assert len(results) == CALLS
    used = sum(tokens for _, tokens in results)
    admitted = sum(1 for outcome, _ in results if outcome == "ok")
    refused = CALLS - admitted
    assert used <= bound, f"{used} tokens used under a bound of {bound}"
    # the race is real: the bound was reached and calls were refused
    assert refused > 0 and admitted > 10
    assert used > bound // 2


@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_local_store_across_processes_never_overshoots(tmp_path: Path, case: str) -> None:
    path = tmp_path / AI_COUNTERS_FILE

    def counters() -> Counters:
        return LocalCounters(path, clock=lambda: NOW)

    results = race(SETTINGS[case], counters, PROCESSES, CALLS)
    check(results, BOUND[case])
    # every call was settled to its real usage: what is left is exactly the rest
    used = sum(tokens for _, tokens in results)
    if case == "budget":
        probe = LocalCounters(path, clock=lambda: NOW)
        window = Window(BUDGET, 2.0**40, "fixed_window", period=lambda now: (0.0, 2.0**40))
        verdict = probe.take(b"ai|b0|tokens|total|consumer|alice", (window,), 0)
        assert verdict.usage[0].remaining == BUDGET - used


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    url = require_redis()
    prefix = unique_prefix()
    yield url, prefix
    delete_prefixed(url, prefix)


@pytest.mark.parametrize("case", sorted(SETTINGS))
def test_redis_store_across_processes_never_overshoots(
    redis_prefix: tuple[str, str], case: str
) -> None:
    url, prefix = redis_prefix

    def counters() -> Counters:
        return RedisCounters(url, prefix=prefix, timeout=5.0, clock=lambda: NOW)

    async def close(store: Any) -> None:
        await store.aclose()

    settings = SETTINGS[case].model_copy(
        update={"counters": SETTINGS[case].counters.model_copy(update={"backend": "redis"})}
    )
    check(race(settings, counters, PROCESSES, CALLS, close), BOUND[case])
