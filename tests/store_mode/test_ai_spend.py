"""AI spend through real processes: a node with two workers and its admin API serves
an AI route in front of a fake provider whose usage is exact; every call's tokens
reach the spend rows, the analytics API and /metrics, by consumer, team and model.

(The AI section is served from a config file: the store does not keep AI routes
yet.)"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.ai.fake_providers import OPENAI_KEY, fake_provider
from tests.store_mode.helpers import admin_port, start_node
from tests.support.nodes import wait_until
from tests.support.process import QuiverProcess
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(120)

CALLS = 120
TEAMS = {"alice": "data", "bob": "data", "carol": None}
MODELS = {"mini": "gpt-4o-mini", "big": "gpt-4o"}
#: USD per million tokens configured for "big", in place of the shipped table's
BIG_PRICE = {"input": 1000.0, "output": 4000.0}


def declaration(provider_url: str) -> dict[str, Any]:
    return {
        "ai": {
            "providers": [
                {
                    "name": "oa",
                    "type": "openai",
                    "base_url": f"{provider_url}/openai/v1",
                    "api_key": OPENAI_KEY,
                }
            ],
            "models": [
                {
                    "name": name,
                    "deployments": [{"provider": "oa", "model": model}],
                    **({"price": BIG_PRICE} if name == "big" else {}),
                }
                for name, model in MODELS.items()
            ],
        },
        "consumers": [
            {
                "name": name,
                **({"team": team} if team else {}),
                "credentials": {"key-auth": [{"key": f"key-of-{name}-0123456789"}]},
            }
            for name, team in TEAMS.items()
        ],
        "plugins": {"key-auth": {}},
        "routes": [{"name": "ai", "paths": ["/v1"], "ai": {}}],
    }


TOKEN = "qv_test-admin-token-0123456789abcdef"


@pytest.fixture
def provider() -> Iterator[Upstream]:
    with Upstream(fake_provider) as server:
        yield server


@pytest.fixture
def node(tmp_path: Path, provider: Upstream) -> Iterator[QuiverProcess]:
    home = tmp_path / "node"
    home.mkdir()
    settings = home / "quiver.yaml"
    document = {
        "store": "quiver.db",
        "admin_listen": "127.0.0.1:0",
        "metrics": {"requests": True},
        **declaration(provider.url),
    }
    settings.write_bytes(orjson.dumps(document))  # (JSON is YAML)
    env: dict[str, str | None] = {"QUIVER_ADMIN_TOKEN": TOKEN}
    with start_node(home, "--workers", "2", "--config", str(settings), env=env) as running:
        running.wait_listening()
        yield running


class Admin:
    def __init__(self, node: QuiverProcess) -> None:
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{admin_port(node)}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        now = datetime.now(UTC)
        self.window = {
            "from": (now - timedelta(minutes=5)).isoformat(),
            "to": (now + timedelta(minutes=30)).isoformat(),
        }

    def get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(path, params={**self.window, **params})
        assert answer.status_code == 200, answer.text
        return answer.json()


def call(port: int, consumer: str, model: str, words: int, stream: bool) -> dict[str, Any]:
    """One chat completion; what it reported: its request id and usage."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": " ".join(["hello"] * words)}],
    }
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    answer = httpx.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer key-of-{consumer}-0123456789"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    if stream:
        chunks = [
            orjson.loads(line[6:])
            for line in answer.text.splitlines()
            if line.startswith("data: {")
        ]
        usage = chunks[-1]["usage"]
    else:
        usage = answer.json()["usage"]
    return {
        "request_id": answer.headers["X-Request-ID"],
        "consumer": consumer,
        "model": model,
        "tokens": usage["prompt_tokens"] + usage["completion_tokens"],
        "usage": (usage["prompt_tokens"], usage["completion_tokens"]),
    }


def test_every_calls_tokens_reach_the_spend_analytics(node: QuiverProcess) -> None:
    rng = random.Random(5)
    plan = [
        (
            rng.choice(sorted(TEAMS)),
            rng.choice(sorted(MODELS)),
            rng.randint(1, 30),
            rng.random() < 0.5,
        )
        for _ in range(CALLS)
    ]
    admin = Admin(node)
    try:
        with ThreadPoolExecutor(8) as pool:
            sent = list(pool.map(lambda item: call(node.port, *item), plan))

        def spent(dimension: str) -> dict[str | None, int]:
            rows = admin.get("/analytics/ai/top", dimension=dimension, order="tokens", n=100)
            return {row["name"]: row["total_tokens"] for row in rows["data"]}

        wait_until(
            lambda: sum(spent("models").values()) == sum(s["tokens"] for s in sent), "ingested"
        )
        by_consumer: Counter[str | None] = Counter()
        by_team: Counter[str | None] = Counter()
        by_model: Counter[str | None] = Counter()
        for item in sent:
            by_consumer[item["consumer"]] += item["tokens"]
            by_team[TEAMS[item["consumer"]]] += item["tokens"]
            by_model[item["model"]] += item["tokens"]
        assert spent("consumers") == by_consumer
        assert spent("teams") == by_team
        assert spent("models") == by_model
        series = admin.get("/analytics/ai/spend", bucket="minute", by="provider")
        assert sum(point["calls"] for point in series["data"]) == CALLS
        assert {point["key"] for point in series["data"]} == {"oa"}

        one = sent[0]
        detail = admin.get(f"/calls/{one['request_id']}")["ai"]
        assert detail["model"] == one["model"] and detail["provider"] == "oa"
        assert detail["deployment"] == MODELS[one["model"]]
        assert detail["total_tokens"] == one["tokens"]
        big = next(item for item in sent if item["model"] == "big")
        prompt, completion = big["usage"]
        cost = (prompt * BIG_PRICE["input"] + completion * BIG_PRICE["output"]) / 1e6
        assert admin.get(f"/calls/{big['request_id']}")["ai"]["cost"] == pytest.approx(cost)

        def usage_in_metrics() -> float:
            text = admin.client.get("/metrics").text
            return sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "gen_ai_client_token_usage_sum"
            )

        wait_until(lambda: usage_in_metrics() == sum(s["tokens"] for s in sent), "/metrics")
        counts: Counter[str] = Counter()
        for family in text_string_to_metric_families(admin.client.get("/metrics").text):
            for sample in family.samples:
                counts[sample.name] += int(sample.value)  # (summed over the models' labels)
        # every call has a duration; only a stream has a first token apart from its end
        assert counts["gen_ai_client_operation_duration_seconds_count"] == CALLS
        streams = sum(1 for item in plan if item[3])
        assert counts["gen_ai_server_time_to_first_token_seconds_count"] == streams
    finally:
        admin.client.close()
    assert node.stop() == 0
