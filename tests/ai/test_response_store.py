"""Stored responses (``store``, ``previous_response_id``) kept where every process
that may get the follow-up reads them: files in the run directory for the workers
of one node, Redis keys for every node sharing it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ai.fake_providers import OPENAI_KEY, fake_provider
from tests.support.process import serving, write_config
from tests.support.redis_nodes import delete_prefixed, require_redis, unique_prefix
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(60)
TURNS = 8


def config(provider_url: str, counters: str, workers: int) -> str:
    return f"""
listen: 127.0.0.1:0
workers: {workers}
ai:
  providers:
    - {{name: oa, type: openai, base_url: "{provider_url}/openai/v1", api_key: {OPENAI_KEY}}}
  models:
    - {{name: m, deployments: [{{provider: oa, model: gpt-4o-mini}}]}}
  counters: {counters}
routes:
  - {{name: ai, paths: ["/v1"], ai: {{}}}}
"""


@pytest.fixture
def provider() -> Iterator[Upstream]:
    with Upstream(fake_provider) as server:
        yield server


def turn(port: int, text: str, previous: str | None) -> str:
    """One Responses turn on a connection of its own; its response id."""
    body: dict[str, Any] = {"model": "m", "input": text}
    if previous is not None:
        body["previous_response_id"] = previous
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/responses", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    identifier: str = answer.json()["id"]
    return identifier


def conversation(ports: list[int]) -> str:
    """TURNS turns spread over ``ports``, each continuing the one before; the last id."""
    previous = None
    for number in range(TURNS):
        previous = turn(ports[number % len(ports)], f"turn {number}", previous)
    assert previous is not None
    return previous


def users_of_the_last_call(provider: Upstream) -> list[str]:
    sent = json.loads(provider.requests[-1].body)
    return [m["content"] for m in sent["messages"] if m["role"] == "user"]


def test_the_workers_of_a_node_share_their_responses(tmp_path: Path, provider: Upstream) -> None:
    run = tmp_path / "run"
    path = write_config(tmp_path, config(provider.url, "{backend: local}", workers=2))
    with serving(path, "--run-dir", str(run)) as node:
        last = conversation([node.port])
        assert users_of_the_last_call(provider) == [f"turn {n}" for n in range(TURNS)]
        assert (run / "ai-responses" / f"{last}.json").is_file()
        url = f"http://127.0.0.1:{node.port}/v1/responses/{last}"
        assert httpx.get(url).json()["id"] == last
        assert httpx.delete(url).json()["deleted"] is True
        assert httpx.get(url).status_code == 404
        assert not (run / "ai-responses" / f"{last}.json").exists()


def test_nodes_sharing_redis_share_their_responses(tmp_path: Path, provider: Upstream) -> None:
    url = require_redis()
    prefix = unique_prefix()
    counters = f'{{backend: redis, url: "{url}", prefix: "{prefix}", timeout: 2}}'
    try:
        with ExitStack() as stack:
            ports = []
            for name in ("a", "b"):
                home = tmp_path / name
                home.mkdir()
                path = write_config(home, config(provider.url, counters, workers=1))
                node = stack.enter_context(serving(path, "--run-dir", str(home / "run")))
                ports.append(node.port)
            last = conversation(ports)  # (each turn on the other node)
            assert users_of_the_last_call(provider) == [f"turn {n}" for n in range(TURNS)]
            on_a, on_b = (f"http://127.0.0.1:{port}/v1/responses/{last}" for port in ports)
            assert httpx.get(on_b).json()["id"] == last
            assert httpx.delete(on_a).json()["deleted"] is True
            answer = httpx.get(on_b)
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "not_found"
    finally:
        delete_prefixed(url, prefix)
