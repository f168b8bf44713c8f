"""Fronts reaching providers of another wire format through the converters, and the
budgets reserved before a call and settled after, through the running proxy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.ai.conftest import ALICE_KEY, BOB_KEY, Gateway
from tests.ai.fake_providers import ANTHROPIC_KEY

USER: Any = [{"role": "user", "content": "tell me about Paris"}]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url, api_key=ALICE_KEY, max_retries=0) as client:
        yield client


def test_a_chat_completion_from_an_anthropic_model(gateway: Gateway, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="claude", messages=USER, max_tokens=50)
    assert completion.object == "chat.completion"
    assert completion.model == "claude"
    assert completion.choices[0].message.content == (
        "Hello from anthropic claude-3-5-haiku: tell me about Paris"
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 12
    sent = gateway.provider.requests[-1]
    assert sent.path == "/anthropic/v1/messages"
    assert sent.header("x-api-key") == ANTHROPIC_KEY
    assert json.loads(sent.body)["max_tokens"] == 50


def test_a_chat_stream_from_an_anthropic_model(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from anthropic claude-3-5-haiku: tell me about Paris"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 8
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_a_chat_stream_from_an_anthropic_model_without_usage(gateway: Gateway) -> None:
    body = {"model": "claude", "messages": USER, "stream": True}
    headers = {"Authorization": f"Bearer {ALICE_KEY}"}
    response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
    events = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(data) for data in events[:-1]]
    assert all("usage" not in chunk and chunk["choices"] for chunk in chunks)


def test_a_token_budget_is_never_exceeded(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {BOB_KEY}"}
    body = {"model": "gpt", "messages": USER, "max_tokens": 10}
    statuses = []
    for _ in range(6):
        response = httpx.post(gateway.base_url + "/chat/completions", json=body, headers=headers)
        statuses.append(response.status_code)
    # each call reserves its prompt's upper bound plus 10 and settles to the 12 it used
    assert statuses == [200, 200, 200, 200, 429, 429]
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert "budget" in response.json()["error"]["message"]
