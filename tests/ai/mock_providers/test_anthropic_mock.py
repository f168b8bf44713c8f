"""The Anthropic mock read by the official ``anthropic`` SDK, and its refusals."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest

from tests.ai.mock_providers import (
    KEYS,
    MODELS,
    MockProviders,
)
from tests.ai.mock_providers.calls import (
    WEATHER,
    claude,
)


def test_anthropic_sdk_reads_a_message(mock_providers: MockProviders) -> None:
    message = claude(mock_providers).messages.create(
        model=MODELS["anthropic"],
        max_tokens=100,
        system="Be brief",
        messages=[{"role": "user", "content": "hello claude"}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == f"Hello from anthropic {MODELS['anthropic']}: hello claude"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 6)


def test_anthropic_stream_has_the_full_event_sequence(mock_providers: MockProviders) -> None:
    with claude(mock_providers).messages.stream(
        model=MODELS["anthropic"], max_tokens=100, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    raw = [k for k in kinds if k not in ("text",)]  # the helper adds `text` events
    assert raw[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert raw[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert final.content[0].type == "text" and final.usage.output_tokens == 5
    body = {
        "model": "c",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {"x-api-key": KEYS["anthropic"], "anthropic-version": "2023-06-01"}
    wire = httpx.post(
        mock_providers.base_url("anthropic") + "/v1/messages", json=body, headers=headers
    )
    names = [line[7:] for line in wire.text.split("\n") if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]


def test_anthropic_sdk_assembles_streamed_tool_use(mock_providers: MockProviders) -> None:
    tools: Any = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": WEATHER["function"]["parameters"],
        },
        {"name": "get_time", "input_schema": {"type": "object"}},
    ]
    with claude(mock_providers).messages.stream(
        model=MODELS["anthropic"],
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": "CALL_TWO_TOOLS"}],
    ) as stream:
        final = stream.get_final_message()
    uses = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert uses == [("get_weather", {"location": "Paris"}), ("get_time", {"location": "London"})]
    assert final.stop_reason == "tool_use"
    answer = claude(mock_providers).messages.create(
        model=MODELS["anthropic"],
        max_tokens=100,
        tools=tools,
        messages=[
            {"role": "user", "content": "CALL_TWO_TOOLS"},
            {"role": "assistant", "content": final.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": b.id, "content": "fine"}
                    for b in final.content
                    if b.type == "tool_use"
                ],
            },
        ],
    )
    assert answer.content[0].type == "text" and answer.content[0].text.endswith(": fine fine")


def test_anthropic_structured_output(mock_providers: MockProviders) -> None:
    schema: Any = {"type": "object", "properties": {"city": {"type": "string"}}}
    message = claude(mock_providers).messages.create(
        model=MODELS["anthropic"],
        max_tokens=100,
        messages=[{"role": "user", "content": "Oslo"}],
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.content[0].type == "text"
    assert json.loads(message.content[0].text) == {"city": "Oslo"}


def test_anthropic_count_tokens(mock_providers: MockProviders) -> None:
    counted = claude(mock_providers).messages.count_tokens(
        model=MODELS["anthropic"],
        system="one two",
        messages=[{"role": "user", "content": "three four five"}],
    )
    assert counted.input_tokens == 5


def test_anthropic_refusals_in_its_error_shape(mock_providers: MockProviders) -> None:
    sdk = claude(mock_providers)
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdk.messages.create(
            model="c", max_tokens=5, messages=[{"role": "user", "content": "FAIL_429"}]
        )
    assert limited.value.response.headers["retry-after"] == "1"
    body: Any = limited.value.body
    assert body["error"]["type"] == "rate_limit_error"
    with pytest.raises(anthropic.BadRequestError) as context:
        sdk.messages.create(
            model="c", max_tokens=5, messages=[{"role": "user", "content": "FAIL_CONTEXT"}]
        )
    assert "prompt is too long" in context.value.message
    with pytest.raises(anthropic.BadRequestError) as system_role:
        sdk.messages.create(model="c", max_tokens=5, messages=[{"role": "system", "content": "x"}])
    assert "top-level `system`" in system_role.value.message
    with pytest.raises(anthropic.BadRequestError) as orphan:
        sdk.messages.create(
            model="c",
            max_tokens=5,
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}],
                }
            ],
        )
    assert "corresponding `tool_use`" in orphan.value.message
    url = mock_providers.base_url("anthropic") + "/v1/messages"
    body = {"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    no_version = httpx.post(url, json=body, headers={"x-api-key": KEYS["anthropic"]})
    assert no_version.status_code == 400
    assert no_version.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }
    versioned = {"x-api-key": KEYS["anthropic"], "anthropic-version": "2023-06-01"}
    no_max = httpx.post(url, json={"model": "c", "messages": body["messages"]}, headers=versioned)
    assert no_max.status_code == 400
    assert no_max.json()["error"]["message"] == "max_tokens: Field required"


def test_empty_content_is_refused(mock_providers: MockProviders) -> None:
    """Traps a converter falls into: an empty text block (an assistant turn with only tool
    calls and content ""), an empty message."""
    sdk = claude(mock_providers)
    empty_block: Any = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": ""}]},
        {"role": "user", "content": "again"},
    ]
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(model="c", max_tokens=5, messages=empty_block)
    assert "text content blocks must be non-empty" in caught.value.message
    empty_message: Any = [{"role": "user", "content": []}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(model="c", max_tokens=5, messages=empty_message)
    assert "non-empty content" in caught.value.message
