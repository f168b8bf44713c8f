"""The Anthropic front through the running proxy, driven by the official ``anthropic`` SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.ai.conftest import ALICE_KEY, Gateway
from tests.ai.mock_providers import KEYS

USER: Any = [{"role": "user", "content": "tell me about Paris"}]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    # (the SDK sends its key as x-api-key; key-auth reads that header by default)
    with anthropic.Anthropic(
        base_url=gateway.proxy.url, api_key=ALICE_KEY, max_retries=0
    ) as client:
        yield client


def test_a_message_passes_through_with_the_providers_key(
    gateway: Gateway, client: anthropic.Anthropic
) -> None:
    raw = client.messages.with_raw_response.create(model="claude", max_tokens=100, messages=USER)
    message = raw.parse()
    assert message.content[0].text == "Hello from anthropic claude-3-5-haiku: tell me about Paris"  # type: ignore[union-attr]
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 8)
    assert float(raw.headers["x-quiver-overhead-ms"]) >= 0
    sent = gateway.last()
    assert sent.headers.get("x-api-key") == KEYS["anthropic"]
    assert sent.headers.get("anthropic-version") == raw.http_request.headers["anthropic-version"]
    assert ALICE_KEY not in str(sent.headers)
    assert json.loads(sent.body)["model"] == "claude-3-5-haiku"


def test_a_bearer_key_works_as_current_sdks_send_it(gateway: Gateway) -> None:
    with anthropic.Anthropic(
        base_url=gateway.proxy.url, auth_token=ALICE_KEY, api_key=None, max_retries=0
    ) as client:
        message = client.messages.create(model="claude", max_tokens=10, messages=USER)
    assert message.stop_reason == "end_turn"
    assert gateway.last().headers.get("authorization") is None


def test_a_stream_comes_event_by_event(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude", max_tokens=100, messages=USER) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds and "message_delta" in kinds
    assert final.content[0].text.startswith("Hello from anthropic")  # type: ignore[union-attr]
    assert final.usage.output_tokens == 8


def test_the_async_client_works_too(gateway: Gateway) -> None:
    async def run() -> str:
        async with anthropic.AsyncAnthropic(
            base_url=gateway.proxy.url, api_key=ALICE_KEY, max_retries=0
        ) as client:
            message = await client.messages.create(model="claude", max_tokens=10, messages=USER)
            return message.content[0].text  # type: ignore[union-attr]

    assert asyncio.run(run()).startswith("Hello from anthropic claude-3-5-haiku")


def test_count_tokens_asks_the_provider(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model="claude", messages=USER)
    assert counted.input_tokens == 4


def test_errors_come_in_anthropics_shape(gateway: Gateway, client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="nope", max_tokens=10, messages=USER)
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    response = httpx.post(
        gateway.proxy.url + "/v1/messages",
        json={
            "model": "claude",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "FAIL_CONTEXT"}],
        },
        headers={"x-api-key": ALICE_KEY},
    )
    assert response.status_code == 400
    # (a client that names no version gets the one Quiver speaks)
    assert gateway.last().headers.get("anthropic-version") == "2023-06-01"
    assert response.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "an: prompt is too long: 200001 tokens > 200000 maximum",
        },
        "request_id": response.headers["request-id"],
    }
    assert response.headers["request-id"] == response.headers["x-request-id"]


def test_a_context_window_error_falls_back(client: anthropic.Anthropic) -> None:
    text = "FAIL_CONTEXT@claude-3-opus"  # (the mock fails for that model only)
    message = client.messages.create(
        model="claude-with-fallback", max_tokens=10, messages=[{"role": "user", "content": text}]
    )
    assert message.content[0].text == f"Hello from anthropic claude-steady: {text}"  # type: ignore[union-attr]
