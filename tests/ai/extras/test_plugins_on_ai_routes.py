"""The guardrails and the answer cache on a route served by the ``ai`` target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ai.fake_providers import OPENAI_KEY, fake_provider
from tests.support.proxy import Client, Response, RunningProxy
from tests.support.upstream import Upstream


def config(provider_url: str) -> str:
    return f"""
listen: 127.0.0.1:0
ai:
  providers:
    - {{name: oa, type: openai, base_url: "{provider_url}/openai/v1", api_key: {OPENAI_KEY}}}
  models:
    - {{name: gpt, deployments: [{{provider: oa, model: gpt-4o-mini}}]}}
routes:
  - name: ai
    paths: ["/v1"]
    ai: {{}}
    plugins:
      ai-prompt-guard: {{deny: [{{name: secrets, regex: "(?i)password"}}]}}
      ai-pii: {{}}
      ai-cache: {{}}
"""


@pytest.fixture(scope="module")
def gateway() -> Iterator[tuple[Upstream, RunningProxy]]:
    with Upstream(fake_provider) as provider, RunningProxy(config(provider.url)) as proxy:
        yield provider, proxy


def chat(gateway: tuple[Upstream, RunningProxy], text: str, **extra: Any) -> Response:
    body = {"model": "gpt", "messages": [{"role": "user", "content": text}], **extra}
    with Client(gateway[1].port) as client:
        return client.request(
            "POST",
            "/v1/chat/completions",
            {"Content-Type": "application/json"},
            json.dumps(body).encode(),
        )


def sent_to_provider(provider: Upstream) -> Any:
    return json.loads(provider.requests[-1].body)


def test_a_refused_prompt_never_reaches_the_provider(
    gateway: tuple[Upstream, RunningProxy],
) -> None:
    provider, _ = gateway
    before = len(provider.requests)
    response = chat(gateway, "what is the password?")
    assert response.status == 400  # (in the front's shape: tests/ai/test_error_shapes.py)
    assert response.json()["error"]["rule"] == "secrets"
    assert len(provider.requests) == before


def test_personal_data_is_masked_before_the_provider(
    gateway: tuple[Upstream, RunningProxy],
) -> None:
    provider, _ = gateway
    response = chat(gateway, "mail jane@example.com about card 4111 1111 1111 1111")
    assert response.status == 200
    assert response.json()["object"] == "chat.completion"
    text = sent_to_provider(provider)["messages"][0]["content"]
    assert text == "mail [EMAIL] about card [CARD]"


def test_deterministic_answers_come_from_the_cache(gateway: tuple[Upstream, RunningProxy]) -> None:
    provider, _ = gateway
    before = len(provider.requests)
    first = chat(gateway, "cache this answer", temperature=0)
    assert first.status == 200 and first.header("X-Cache-Status") == "MISS"
    second = chat(gateway, "cache this answer", temperature=0)
    assert second.header("X-Cache-Status") == "HIT"
    assert second.json() == first.json()
    assert len(provider.requests) == before + 1


def test_a_streamed_answer_is_replayed_as_a_stream(gateway: tuple[Upstream, RunningProxy]) -> None:
    provider, _ = gateway
    before = len(provider.requests)
    first = chat(gateway, "stream and cache", temperature=0, stream=True)
    assert first.status == 200
    assert first.header("Content-Type") == "text/event-stream"
    second = chat(gateway, "stream and cache", temperature=0, stream=True)
    assert second.header("X-Cache-Status") == "HIT"
    assert second.header("Content-Type") == "text/event-stream"
    assert second.body == first.body
    events = [line for line in second.body.split(b"\n\n") if line]
    assert len(events) >= 3 and events[-1] == b"data: [DONE]"
    assert len(provider.requests) == before + 1


def test_provider_errors_are_not_cached(gateway: tuple[Upstream, RunningProxy]) -> None:
    provider, _ = gateway
    before = len(provider.requests)
    for _ in range(2):
        response = chat(gateway, "FAIL_CONTEXT please", temperature=0)
        assert response.status >= 400
        assert response.header("X-Cache-Status") == "MISS"
    assert len(provider.requests) == before + 2


def post(gateway: tuple[Upstream, RunningProxy], path: str, body: Any) -> Response:
    with Client(gateway[1].port) as client:
        headers = {"Content-Type": "application/json"}
        return client.request("POST", path, headers, json.dumps(body).encode())


def test_responses_and_messages_fronts(gateway: tuple[Upstream, RunningProxy]) -> None:
    provider, _ = gateway
    responses = {"model": "gpt", "input": "reach me at jane@example.com", "temperature": 0}
    first = post(gateway, "/v1/responses", responses)
    assert first.status == 200, first.body
    assert first.json()["object"] == "response"
    assert "[EMAIL]" in provider.requests[-1].body.decode()
    count = len(provider.requests)
    again = post(gateway, "/v1/responses", responses)
    assert again.header("X-Cache-Status") == "HIT" and again.body == first.body
    assert len(provider.requests) == count
    streamed = {**responses, "stream": True}
    first = post(gateway, "/v1/responses", streamed)
    assert first.header("Content-Type") == "text/event-stream"
    assert b"response.completed" in first.body
    again = post(gateway, "/v1/responses", streamed)
    assert again.header("X-Cache-Status") == "HIT" and again.body == first.body
    assert len(provider.requests) == count + 1
    messages = {
        "model": "gpt",
        "max_tokens": 20,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "my password"}]}],
    }
    refused = post(gateway, "/v1/messages", messages)
    assert refused.status == 400
    assert refused.json()["error"] == {
        "type": "invalid_request_error",
        "message": refused.json()["error"]["message"],
        "rule": "secrets",
    }
