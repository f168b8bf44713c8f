"""The official ``anthropic`` SDK against Quiver's Messages front, for every provider type.

One Quiver process serves the module (tests/ai/sdk_gateway.py); each test is parametrised
by provider type: an anthropic provider is passed the request as sent, the others are
reached through the converters, and every answer must come back as Anthropic's API
gives it (content blocks, the SSE event sequence, errors in its shape).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.ai.mock_providers import MODELS, PROVIDER_TYPES, MockProviders
from tests.ai.sdk_gateway import CLIENT_KEY, FALLBACK, origin, running_gateway
from tests.support.process import QuiverProcess

TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "Current weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
    {
        "name": "get_time",
        "description": "Local time in a city",
        "input_schema": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
]
types = pytest.mark.parametrize("provider", PROVIDER_TYPES)


@pytest.fixture(scope="module")
def quiver(
    mock_providers: MockProviders, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QuiverProcess]:
    with running_gateway(mock_providers, tmp_path_factory.mktemp("anthropic-sdk")) as process:
        yield process


@pytest.fixture(scope="module")
def sdk(quiver: QuiverProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=origin(quiver), api_key=CLIENT_KEY, max_retries=0) as client:
        yield client


def hello(provider: str, text: str) -> str:
    return f"Hello from {provider} {MODELS[provider]}: {text[:40]}"


def sent_usage(mocks: MockProviders, provider: str, marker: str) -> tuple[int, int]:
    request = mocks.last(provider, marker)
    assert request.usage is not None
    return request.usage


@types
def test_message(sdk: anthropic.Anthropic, mock_providers: MockProviders, provider: str) -> None:
    text = f"plain message through {provider}"
    message = sdk.messages.create(
        model=f"chat-{provider}",
        max_tokens=200,
        system="You are terse",
        messages=[{"role": "user", "content": text}],
    )
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == hello(provider, text)
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == sent_usage(
        mock_providers, provider, text
    )
    assert CLIENT_KEY not in str(mock_providers.last(provider, text).headers)


@types
def test_message_stream_event_sequence(
    sdk: anthropic.Anthropic, mock_providers: MockProviders, provider: str
) -> None:
    text = f"streamed message through {provider}"
    with sdk.messages.stream(
        model=f"chat-{provider}", max_tokens=200, messages=[{"role": "user", "content": text}]
    ) as stream:
        events = [event for event in stream if event.type != "text"]  # (the helper's own)
        final = stream.get_final_message()
    kinds: list[str] = [event.type for event in events]
    kinds = [kind for kind in kinds if kind != "ping"]
    assert kinds[0] == "message_start" and kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert len(deltas) >= 3 and all(e.delta.type == "text_delta" for e in deltas)
    assert final.content[0].type == "text" and final.content[0].text == hello(provider, text)
    assert final.stop_reason == "end_turn"
    prompt, completion = sent_usage(mock_providers, provider, text)
    # (input tokens may come in message_start or, when only known at the end, in
    # message_delta: the SDK takes either)
    assert (final.usage.input_tokens, final.usage.output_tokens) == (prompt, completion)


@types
def test_message_stream_on_the_wire(quiver: QuiverProcess, provider: str) -> None:
    """The bytes as Anthropic sends them: ``event:`` lines naming each ``data:``'s type."""
    body = {
        "model": f"chat-{provider}",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": f"wire stream {provider}"}],
    }
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    reply = httpx.post(origin(quiver) + "/v1/messages", json=body, headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/event-stream")
    blocks = [block for block in reply.text.split("\n\n") if block.strip()]
    names = []
    for block in blocks:
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ")
        name = lines[0][7:]
        assert f'"type":"{name}"' in lines[1].replace(" ", "")
        names.append(name)
    assert names[0] == "message_start" and names[-1] == "message_stop"


@types
def test_async_message_plain_and_streamed(quiver: QuiverProcess, provider: str) -> None:
    text = f"async message via {provider}"

    async def run() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(
            base_url=origin(quiver), api_key=CLIENT_KEY, max_retries=0
        ) as client:
            messages: Any = [{"role": "user", "content": text}]
            whole = await client.messages.create(
                model=f"chat-{provider}", max_tokens=100, messages=messages
            )
            async with client.messages.stream(
                model=f"chat-{provider}", max_tokens=100, messages=messages
            ) as stream:
                pieces = [piece async for piece in stream.text_stream]
            block = whole.content[0]
            return (block.text if block.type == "text" else ""), "".join(pieces)

    assert asyncio.run(run()) == (hello(provider, text), hello(provider, text))


def uses(message: Any) -> list[tuple[str, Any]]:
    return [(b.name, b.input) for b in message.content if b.type == "tool_use"]


@types
def test_tool_use_plain_and_streamed(sdk: anthropic.Anthropic, provider: str) -> None:
    messages: Any = [{"role": "user", "content": f"CALL_TWO_TOOLS now {provider}"}]
    expected = [("get_weather", {"location": "Paris"}), ("get_time", {"location": "London"})]
    message = sdk.messages.create(
        model=f"chat-{provider}", max_tokens=100, tools=TOOLS, messages=messages
    )
    assert message.stop_reason == "tool_use"
    assert uses(message) == expected
    with sdk.messages.stream(
        model=f"chat-{provider}", max_tokens=100, tools=TOOLS, messages=messages
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert uses(final) == expected and final.stop_reason == "tool_use"
    json_deltas = [
        e for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(json_deltas) >= 2
    ids = [b.id for b in final.content if b.type == "tool_use"]
    assert len(set(ids)) == 2 and all(ids)


@types
def test_async_tool_use_plain_and_streamed(quiver: QuiverProcess, provider: str) -> None:
    messages: Any = [{"role": "user", "content": f"CALL_TWO_TOOLS async {provider}"}]
    expected = [("get_weather", {"location": "Paris"}), ("get_time", {"location": "London"})]

    async def run() -> tuple[Any, Any]:
        async with anthropic.AsyncAnthropic(
            base_url=origin(quiver), api_key=CLIENT_KEY, max_retries=0
        ) as client:
            whole = await client.messages.create(
                model=f"chat-{provider}", max_tokens=100, tools=TOOLS, messages=messages
            )
            async with client.messages.stream(
                model=f"chat-{provider}", max_tokens=100, tools=TOOLS, messages=messages
            ) as stream:
                final = await stream.get_final_message()
            return whole, final

    whole, final = asyncio.run(run())
    assert uses(whole) == expected and whole.stop_reason == "tool_use"
    assert uses(final) == expected and final.stop_reason == "tool_use"


@types
def test_tool_results_reach_the_model(sdk: anthropic.Anthropic, provider: str) -> None:
    messages: Any = [{"role": "user", "content": f"CALL_TOOL please {provider}"}]
    first = sdk.messages.create(
        model=f"chat-{provider}", max_tokens=100, tools=TOOLS[:1], messages=messages
    )
    [use] = [b for b in first.content if b.type == "tool_use"]
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": use.id, "content": "rain and 12 degrees"}
            ],
        },
    ]
    second = sdk.messages.create(
        model=f"chat-{provider}", max_tokens=100, tools=TOOLS[:1], messages=messages
    )
    assert second.content[0].type == "text"
    assert second.content[0].text == hello(provider, "rain and 12 degrees")


@types
def test_count_tokens(
    sdk: anthropic.Anthropic, mock_providers: MockProviders, provider: str
) -> None:
    text = f"count these words for {provider}"
    counted = sdk.messages.count_tokens(
        model=f"chat-{provider}", system="one two", messages=[{"role": "user", "content": text}]
    )
    assert counted.input_tokens > 0
    if provider == "anthropic":  # (the provider counts; others are counted by Quiver)
        assert counted.input_tokens == sent_usage(mock_providers, provider, text)[0]


@types
def test_rate_limited_deployment_falls_back(sdk: anthropic.Anthropic, provider: str) -> None:
    text = f"FAIL_429@{provider} messages fallback"
    message = sdk.messages.create(
        model=f"flaky-{provider}", max_tokens=100, messages=[{"role": "user", "content": text}]
    )
    fallback = FALLBACK[provider].removeprefix("chat-")
    assert message.content[0].type == "text"
    assert message.content[0].text == hello(fallback, text)


@types
def test_provider_errors_in_anthropic_shape(sdk: anthropic.Anthropic, provider: str) -> None:
    def ask(text: str) -> None:
        sdk.messages.create(
            model=f"fragile-{provider}",
            max_tokens=100,
            messages=[{"role": "user", "content": text}],
        )

    with pytest.raises(anthropic.RateLimitError) as limited:
        ask(f"FAIL_429@{provider}")
    body: Any = limited.value.body
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert limited.value.response.headers.get("retry-after") == "1"
    with pytest.raises(anthropic.APIStatusError) as failed:
        ask(f"FAIL_500@{provider}")
    assert failed.value.status_code >= 500
    body = failed.value.body
    assert body["type"] == "error" and f"p-{provider}" in body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as context:
        ask(f"FAIL_CONTEXT@{provider}")
    body = context.value.body
    assert body["error"]["type"] == "invalid_request_error"


def test_client_authentication_bearer_and_x_api_key(quiver: QuiverProcess) -> None:
    wrong = anthropic.Anthropic(base_url=origin(quiver), api_key="wrong", max_retries=0)
    with wrong, pytest.raises(anthropic.AuthenticationError):
        wrong.messages.create(
            model="chat-anthropic", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    body = {
        "model": "chat-anthropic",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "x"}],
    }
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    older = httpx.post(origin(quiver) + "/v1/messages", json=body, headers=headers, timeout=10)
    assert older.status_code == 200, older.text


@types
def test_a_stream_cut_by_the_provider_does_not_end_cleanly(
    quiver: QuiverProcess, provider: str
) -> None:
    """A client must be able to tell a dropped answer from a whole one: no message_stop."""
    body = {
        "model": f"chat-{provider}",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": f"CUT_STREAM midway {provider}"}],
    }
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    url = origin(quiver) + "/v1/messages"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=10) as reply:
        assert reply.status_code == 200
        try:
            data = reply.read()
        except httpx.RemoteProtocolError:
            return  # (the transfer was cut short, as it should)
    assert b"message_stop" not in data


@types
def test_output_cap_and_forced_tool(sdk: anthropic.Anthropic, provider: str) -> None:
    text = f"cap this message short {provider}"
    capped = sdk.messages.create(
        model=f"chat-{provider}", max_tokens=3, messages=[{"role": "user", "content": text}]
    )
    assert capped.stop_reason == "max_tokens" and capped.usage.output_tokens == 3
    assert capped.content[0].type == "text"
    assert capped.content[0].text == " ".join(hello(provider, text).split()[:3])
    forced = sdk.messages.create(
        model=f"chat-{provider}",
        max_tokens=100,
        tools=TOOLS,
        tool_choice={"type": "tool", "name": "get_time"},
        messages=[{"role": "user", "content": f"what time is it {provider}"}],
    )
    assert uses(forced) == [("get_time", {"location": "Paris"})]


# a 1x1 transparent PNG
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
    "RU5ErkJggg=="
)


@types
def test_image_blocks_and_system_blocks_reach_every_provider(
    sdk: anthropic.Anthropic, mock_providers: MockProviders, provider: str
) -> None:
    text = f"look at this image via {provider}"
    content: Any = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
        {"type": "text", "text": text},
    ]
    message = sdk.messages.create(
        model=f"chat-{provider}",
        max_tokens=100,
        system=[{"type": "text", "text": "You describe images"}],
        messages=[{"role": "user", "content": content}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == hello(provider, text)
    assert PIXEL.encode() in mock_providers.last(provider, text).body
    assert b"You describe images" in mock_providers.last(provider, text).body


@types
def test_a_provider_failing_midstream_is_an_error_event(
    sdk: anthropic.Anthropic, provider: str
) -> None:
    """After the first bytes, a provider's error travels as Anthropic's ``error`` event;
    the SDK raises it."""
    with pytest.raises((anthropic.APIStatusError, anthropic.APIConnectionError)):  # noqa: SIM117
        with sdk.messages.stream(
            model=f"chat-{provider}",
            max_tokens=100,
            messages=[{"role": "user", "content": f"FAIL_MIDSTREAM now {provider}"}],
        ) as stream:
            for _ in stream:
                pass


@types
def test_stop_sequences_and_any_tool_reach_the_provider(
    sdk: anthropic.Anthropic, mock_providers: MockProviders, provider: str
) -> None:
    text = f"stop sequences for {provider}"
    message = sdk.messages.create(
        model=f"chat-{provider}",
        max_tokens=100,
        stop_sequences=["STOP_HERE"],
        tools=TOOLS,
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": text}],
    )
    assert uses(message) == [("get_weather", {"location": "Paris"})]
    body = mock_providers.last(provider, text).json
    if provider == "anthropic":
        stop = body["stop_sequences"]
    elif provider in ("gemini", "bedrock"):
        config = body["generationConfig" if provider == "gemini" else "inferenceConfig"]
        stop = config["stopSequences"]
    else:
        stop = body["stop"] if isinstance(body["stop"], list) else [body["stop"]]
    assert stop == ["STOP_HERE"]


@types
def test_metadata_and_error_tool_results_reach_every_provider(
    sdk: anthropic.Anthropic, provider: str
) -> None:
    """``metadata.user_id`` and a ``tool_result`` flagged ``is_error`` with block content
    are everyday Messages fields; no provider may refuse the call over them."""
    messages: Any = [{"role": "user", "content": f"CALL_TOOL with metadata {provider}"}]
    first = sdk.messages.create(
        model=f"chat-{provider}",
        max_tokens=100,
        tools=TOOLS[:1],
        metadata={"user_id": "alice-0001"},
        messages=messages,
    )
    [use] = [b for b in first.content if b.type == "tool_use"]
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": use.id,
                    "is_error": True,
                    "content": [{"type": "text", "text": "service down"}],
                }
            ],
        },
    ]
    second = sdk.messages.create(
        model=f"chat-{provider}",
        max_tokens=100,
        tools=TOOLS[:1],
        metadata={"user_id": "alice-0001"},
        messages=messages,
    )
    assert second.content[0].type == "text"
    assert second.content[0].text.startswith(f"Hello from {provider} {MODELS[provider]}: ")
    assert "service down" in second.content[0].text
