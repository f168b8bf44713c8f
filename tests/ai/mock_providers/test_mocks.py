"""What every mock does alike: streams that start late or are cut, tool turns checked
as each provider checks them, malformed images refused."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.ai.mock_providers import (
    MODELS,
    PROVIDER_TYPES,
    MockProviders,
)
from tests.ai.mock_providers.calls import (
    bedrock_post,
    claude,
    client,
    gemini_post,
    stream_call,
)


@pytest.mark.parametrize("provider", PROVIDER_TYPES)
def test_every_stream_can_start_late_and_be_cut(
    mock_providers: MockProviders, provider: str
) -> None:
    url, headers, body = stream_call(mock_providers, provider, "SLOW_FIRST 150ms hello")
    started = time.monotonic()
    with httpx.stream("POST", url, headers=headers, content=body) as reply:
        assert reply.status_code == 200
        reply.read()  # (some formats send their opening events before the first token)
    assert time.monotonic() - started >= 0.15
    url, headers, body = stream_call(mock_providers, provider, "CUT_STREAM hello there")
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", url, headers=headers, content=body) as reply,
    ):
        reply.read()


def test_tool_turns_are_checked_as_the_providers_check_them(
    mock_providers: MockProviders,
) -> None:
    """A converter that loses a tool call or its result meets the provider's own 400."""
    orphan: Any = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "call_1", "content": "x"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client(mock_providers, "openai").chat.completions.create(model="m", messages=orphan)
    assert "preceeding message with 'tool_calls'" in caught.value.message
    unanswered: Any = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "user", "content": "and?"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client(mock_providers, "openai").chat.completions.create(model="m", messages=unanswered)
    assert "call_1" in caught.value.message
    response = {"functionResponse": {"name": "f", "response": {}}}
    gemini = gemini_post(mock_providers, "generateContent", {"contents": [{"parts": [response]}]})
    assert gemini.status_code == 400 and "function call turn" in gemini.json()["error"]["message"]
    use = {"toolUse": {"toolUseId": "tooluse_a", "name": "f", "input": {}}}
    result = {"toolResult": {"toolUseId": "tooluse_b", "content": [{"text": "x"}]}}
    body = {
        "messages": [
            {"role": "user", "content": [{"text": "hi"}]},
            {"role": "assistant", "content": [use]},
            {"role": "user", "content": [result]},
        ],
        "toolConfig": {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {}}}}]},
    }
    bedrock = bedrock_post(mock_providers, MODELS["bedrock"], "converse", body)
    assert bedrock.status_code == 400 and "tooluse_a" in bedrock.json()["message"]


def test_malformed_images_are_refused(mock_providers: MockProviders) -> None:
    image: Any = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/bmp", "data": "x"},
    }
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude(mock_providers).messages.create(
            model="c", max_tokens=5, messages=[{"role": "user", "content": [image]}]
        )
    assert "media_type" in caught.value.message
    part: Any = {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}
    with pytest.raises(openai.BadRequestError):
        client(mock_providers, "openai").chat.completions.create(
            model="m", messages=[{"role": "user", "content": [part]}]
        )
