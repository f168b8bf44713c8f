"""The budget race through the running proxy: 200 concurrent chat completions, half
of alice's under a budget of N tokens and half of bob's under a TPM limit, against
a fake provider whose usage is exact.  The tokens the clients were told they used
never exceed the budget, nor what the TPM bucket can hand out in the time the
race took; with the local store (two workers of one node) and with Redis (two
nodes sharing it)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.ai.fake_providers import OPENAI_KEY, fake_provider
from tests.support.process import QuiverProcess, serving, write_config
from tests.support.redis_nodes import delete_prefixed, require_redis, unique_prefix
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(120)

CALLS = 200
BUDGET = 2000
TPM = 1500
ATTEMPTS = 4  # a client tries again at once after a 429


def config(provider_url: str, counters: str, workers: int) -> str:
    return f"""
listen: 127.0.0.1:0
workers: {workers}
ai:
  providers:
    - {{name: oa, type: openai, base_url: "{provider_url}/openai/v1", api_key: {OPENAI_KEY}}}
  models:
    - {{name: m, deployments: [{{provider: oa, model: gpt-4o-mini}}]}}
  budgets:
    - {{consumer: alice, tokens: {BUDGET}, period: total}}
  limits:
    - {{consumer: bob, tpm: {TPM}}}
  counters: {counters}
consumers:
  - {{name: alice, credentials: {{key-auth: [{{key: alice-key-0123456789}}]}}}}
  - {{name: bob, credentials: {{key-auth: [{{key: bob-key-0123456789}}]}}}}
plugins:
  key-auth: {{}}
routes:
  - {{name: ai, paths: ["/v1"], ai: {{}}}}
"""


async def one_call(
    client: httpx.AsyncClient, port: int, consumer: str, index: int
) -> tuple[int, int]:
    """(the last status, tokens used when answered 200)."""
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": " ".join(["word"] * (5 + index % 20))}],
        "max_tokens": 40,
    }
    headers = {"Authorization": f"Bearer {consumer}-key-0123456789"}
    status = 0
    for _ in range(ATTEMPTS):
        answer = await client.post(
            f"http://127.0.0.1:{port}/v1/chat/completions", json=body, headers=headers
        )
        status = answer.status_code
        if status == 200:
            usage = answer.json()["usage"]
            return status, usage["prompt_tokens"] + usage["completion_tokens"]
        assert status == 429, answer.text
        assert "retry-after" in answer.headers or consumer == "alice"
    return status, 0


def race(ports: list[int]) -> tuple[dict[str, list[tuple[int, int]]], float]:
    async def run() -> list[tuple[int, int]]:
        limits = httpx.Limits(max_connections=CALLS, max_keepalive_connections=CALLS)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await asyncio.gather(
                *(
                    one_call(client, ports[i % len(ports)], "alice" if i % 2 else "bob", i)
                    for i in range(CALLS)
                )
            )

    started = time.monotonic()
    results = asyncio.run(run())
    elapsed = time.monotonic() - started
    return {"alice": results[1::2], "bob": results[0::2]}, elapsed


def race_told(nodes: list[QuiverProcess]) -> tuple[dict[str, list[tuple[int, int]]], float]:
    """:func:`race` through ``nodes``; a connection that fails names what they logged."""
    try:
        return race([node.port for node in nodes])
    except httpx.TransportError as exc:
        logged = "\n".join(node.stderr[-4000:] for node in nodes)
        raise AssertionError(f"{exc!r} from a gateway; they logged:\n{logged}") from exc


def check(results: dict[str, list[tuple[int, int]]], elapsed: float) -> None:
    alice = sum(tokens for _, tokens in results["alice"])
    bob = sum(tokens for _, tokens in results["bob"])
    assert alice <= BUDGET, f"alice used {alice} tokens of a budget of {BUDGET}"
    # a bucket of TPM tokens refilled at TPM/60 per second
    assert bob <= TPM * (1 + elapsed / 60), f"bob used {bob} tokens in {elapsed:.1f} s"
    for name in ("alice", "bob"):  # the race was real: some got through, some were refused
        statuses = [status for status, _ in results[name]]
        assert statuses.count(200) >= 10 and statuses.count(429) > 0, (name, statuses)


@pytest.fixture
def provider() -> Iterator[Upstream]:
    with Upstream(fake_provider) as server:
        yield server


def test_local_counters_across_two_workers(tmp_path: Path, provider: Upstream) -> None:
    path = write_config(tmp_path, config(provider.url, "{backend: local}", workers=2))
    with serving(path, "--run-dir", str(tmp_path / "run")) as node:
        results, elapsed = race_told([node])
        check(results, elapsed)


def test_redis_counters_across_two_nodes(tmp_path: Path, provider: Upstream) -> None:
    url = require_redis()
    prefix = unique_prefix()
    counters = f'{{backend: redis, url: "{url}", prefix: "{prefix}", timeout: 2}}'
    try:
        with ExitStack() as stack:
            nodes: list[QuiverProcess] = []
            for name in ("a", "b"):
                home = tmp_path / name
                home.mkdir()
                path = write_config(home, config(provider.url, counters, workers=1))
                nodes.append(stack.enter_context(serving(path, "--run-dir", str(home / "run"))))
            results, elapsed = race_told(nodes)
            check(results, elapsed)
    finally:
        delete_prefixed(url, prefix)
