"""The official ``openai`` SDK against Quiver's AI route, for every provider type.

One Quiver process serves the module (tests/ai/sdk_gateway.py: a model per provider type,
over the mock providers); each test is parametrised by provider type, so a type that
does not work yet fails on its own lines.  The client authenticates with its own key
(key-auth reads the SDK's bearer token); the provider must see its own key instead.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.ai.mock_providers import (
    AWS_TEMPORARY,
    EMBEDDING_MODELS,
    KEYS,
    MODELS,
    PROVIDER_TYPES,
    MockProviders,
)
from tests.ai.mock_providers.script import vector
from tests.ai.sdk_gateway import (
    CLIENT_KEY,
    EMBEDDING_TYPES,
    FALLBACK,
    WRONG_PROVIDER_KEY,
    origin,
    running_gateway,
)
from tests.support.process import QuiverProcess

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Local time in a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
types = pytest.mark.parametrize("provider", PROVIDER_TYPES)


@pytest.fixture(scope="module")
def quiver(
    mock_providers: MockProviders, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[QuiverProcess]:
    with running_gateway(mock_providers, tmp_path_factory.mktemp("openai-sdk")) as process:
        yield process


@pytest.fixture(scope="module")
def sdk(quiver: QuiverProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=origin(quiver) + "/v1", api_key=CLIENT_KEY, max_retries=0
    ) as client:
        yield client


def hello(provider: str, text: str) -> str:
    """What the mock of ``provider`` answers to ``text``."""
    return f"Hello from {provider} {MODELS[provider]}: {text[:40]}"


def sent_usage(mocks: MockProviders, provider: str, marker: str) -> tuple[int, int]:
    """The usage the mock counted for the call carrying ``marker``."""
    request = mocks.last(provider, marker)
    assert request.usage is not None
    return request.usage


def assert_provider_credentials(mocks: MockProviders, provider: str, marker: str) -> None:
    """The provider got its own credentials, never the client's key."""
    request = mocks.last(provider, marker)
    assert CLIENT_KEY not in json.dumps(request.headers)
    assert request.status == 200, request.body


# --------------------------------------------------------------------- chat


@types
def test_chat_completion(sdk: openai.OpenAI, mock_providers: MockProviders, provider: str) -> None:
    text = f"plain chat through {provider}"
    answer = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[
            {"role": "system", "content": "You are terse"},
            {"role": "user", "content": text},
        ],
    )
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == hello(provider, text)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    prompt, completion = sent_usage(mock_providers, provider, text)
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (prompt, completion)
    assert answer.usage.total_tokens == prompt + completion
    assert_provider_credentials(mock_providers, provider, text)


@types
def test_chat_stream_with_usage(
    sdk: openai.OpenAI, mock_providers: MockProviders, provider: str
) -> None:
    text = f"streamed chat with usage via {provider}"
    stream = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    *content, last = chunks
    assert last.choices == [] and last.usage is not None
    assert all(chunk.usage is None for chunk in content)
    pieces = [
        c.choices[0].delta.content for c in content if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces) == hello(provider, text)
    assert len(pieces) >= 3
    assert [c.choices[0].finish_reason for c in content if c.choices][-1] == "stop"
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == sent_usage(
        mock_providers, provider, text
    )


@types
def test_chat_stream_without_usage_sends_none(
    quiver: QuiverProcess, mock_providers: MockProviders, provider: str
) -> None:
    text = f"streamed chat without usage via {provider}"
    body = {
        "model": f"chat-{provider}",
        "messages": [{"role": "user", "content": text}],
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    reply = httpx.post(
        origin(quiver) + "/v1/chat/completions", json=body, headers=headers, timeout=10
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in reply.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all("usage" not in chunk for chunk in chunks)
    assert all(chunk["choices"] for chunk in chunks)
    text_out = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text_out == hello(provider, text)


@types
def test_chat_stream_with_usage_on_the_wire(
    quiver: QuiverProcess, mock_providers: MockProviders, provider: str
) -> None:
    """OpenAI's exact chunk semantics, which SDKs cannot tell apart from near misses:
    every chunk with a choice says ``"usage": null``, then one ``choices: []`` chunk
    carries the usage, then ``[DONE]``."""
    text = f"usage on the wire via {provider}"
    body = {
        "model": f"chat-{provider}",
        "messages": [{"role": "user", "content": text}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    reply = httpx.post(
        origin(quiver) + "/v1/chat/completions", json=body, headers=headers, timeout=10
    )
    assert reply.status_code == 200, reply.text
    events = [line[6:] for line in reply.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    *content, final = [json.loads(event) for event in events[:-1]]
    assert len(content) >= 3
    assert all(chunk["choices"] for chunk in content)
    assert all("usage" in chunk and chunk["usage"] is None for chunk in content)
    assert final["choices"] == []
    prompt, completion = sent_usage(mock_providers, provider, text)
    assert final["usage"]["prompt_tokens"] == prompt
    assert final["usage"]["completion_tokens"] == completion
    assert final["usage"]["total_tokens"] == prompt + completion


@types
def test_async_chat_plain_and_streamed(quiver: QuiverProcess, provider: str) -> None:
    text = f"async chat via {provider}"

    async def run() -> tuple[str | None, str]:
        async with openai.AsyncOpenAI(
            base_url=origin(quiver) + "/v1", api_key=CLIENT_KEY, max_retries=0
        ) as client:
            messages: Any = [{"role": "user", "content": text}]
            whole = await client.chat.completions.create(
                model=f"chat-{provider}", messages=messages
            )
            stream = await client.chat.completions.create(
                model=f"chat-{provider}", messages=messages, stream=True
            )
            pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return whole.choices[0].message.content, "".join(pieces)

    assert asyncio.run(run()) == (hello(provider, text), hello(provider, text))


# --------------------------------------------------------------------- tools


def tool_calls(message: Any) -> list[tuple[str, Any]]:
    return [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []]


@types
def test_parallel_tool_calls(sdk: openai.OpenAI, provider: str) -> None:
    answer = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": f"weather and time CALL_TWO_TOOLS {provider}"}],
        tools=[WEATHER, TIME],
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert tool_calls(choice.message) == [
        ("get_weather", {"location": "Paris"}),
        ("get_time", {"location": "London"}),
    ]
    ids = [call.id for call in choice.message.tool_calls or []]
    assert len(set(ids)) == 2 and all(ids)


@types
def test_streamed_parallel_tool_calls(sdk: openai.OpenAI, provider: str) -> None:
    stream = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": f"CALL_TWO_TOOLS streamed {provider}"}],
        tools=[WEATHER, TIME],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())] == [
        ("get_weather", {"location": "Paris"}),
        ("get_time", {"location": "London"}),
    ]
    assert all(c["id"] for c in calls.values())


@types
def test_tool_results_reach_the_model(sdk: openai.OpenAI, provider: str) -> None:
    messages: Any = [{"role": "user", "content": f"CALL_TOOL for {provider}"}]
    first = sdk.chat.completions.create(
        model=f"chat-{provider}", messages=messages, tools=[WEATHER]
    )
    calls: list[Any] = list(first.choices[0].message.tool_calls or [])
    [call] = calls
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "sunny and 21 degrees"},
    ]
    second = sdk.chat.completions.create(
        model=f"chat-{provider}", messages=messages, tools=[WEATHER]
    )
    assert second.choices[0].message.content == hello(provider, "sunny and 21 degrees")
    assert second.choices[0].finish_reason == "stop"


@types
def test_async_tools_responses_and_embeddings(quiver: QuiverProcess, provider: str) -> None:
    """The async client for the rest of the API: parallel tool calls whole and streamed,
    a Responses turn and its stream, embeddings."""
    expected = [("get_weather", {"location": "Paris"}), ("get_time", {"location": "London"})]
    messages: Any = [{"role": "user", "content": f"CALL_TWO_TOOLS async {provider}"}]
    text = f"async responses via {provider}"

    async def run() -> None:
        async with openai.AsyncOpenAI(
            base_url=origin(quiver) + "/v1", api_key=CLIENT_KEY, max_retries=0
        ) as client:
            model = f"chat-{provider}"
            whole = await client.chat.completions.create(
                model=model, messages=messages, tools=[WEATHER, TIME]
            )
            assert tool_calls(whole.choices[0].message) == expected
            streamed: dict[int, list[str]] = {}
            stream = await client.chat.completions.create(
                model=model, messages=messages, tools=[WEATHER, TIME], stream=True
            )
            async for chunk in stream:
                for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                    call = streamed.setdefault(delta.index, ["", ""])
                    if delta.function is not None:
                        call[0] += delta.function.name or ""
                        call[1] += delta.function.arguments or ""
            assert [(n, json.loads(a)) for _, (n, a) in sorted(streamed.items())] == expected
            answer = await client.responses.create(model=model, input=text)
            assert answer.output_text == hello(provider, text)
            events = [
                event.type
                async for event in await client.responses.create(
                    model=model, input=text, stream=True
                )
            ]
            assert events[0] == "response.created" and events[-1] == "response.completed"
            if provider in EMBEDDING_TYPES:
                vectors = await client.embeddings.create(model=f"embed-{provider}", input="x")
                assert vectors.data[0].embedding

    asyncio.run(run())


class Forecast(BaseModel):
    city: str
    degrees: int


@types
def test_json_schema_response_format(sdk: openai.OpenAI, provider: str) -> None:
    parsed = sdk.chat.completions.parse(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": "Nice"}],
        response_format=Forecast,
    )
    assert parsed.choices[0].message.parsed == Forecast(city="Nice", degrees=1)


# --------------------------------------------------------------------- responses


@types
def test_responses_plain_and_chained(
    sdk: openai.OpenAI, mock_providers: MockProviders, provider: str
) -> None:
    text = f"responses first turn {provider}"
    first = sdk.responses.create(model=f"chat-{provider}", input=text)
    assert first.object == "response" and first.status == "completed"
    assert first.output_text == hello(provider, text)
    assert first.usage is not None
    assert (first.usage.input_tokens, first.usage.output_tokens) == sent_usage(
        mock_providers, provider, text
    )
    follow = f"responses second turn {provider}"
    second = sdk.responses.create(
        model=f"chat-{provider}", input=follow, previous_response_id=first.id
    )
    assert second.output_text == hello(provider, follow)
    history = mock_providers.last(provider, follow).body
    assert text.encode() in history and hello(provider, text).encode() in history


@types
def test_responses_stream(sdk: openai.OpenAI, provider: str) -> None:
    text = f"responses streamed {provider}"
    with sdk.responses.stream(model=f"chat-{provider}", input=text) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    numbers = [event.sequence_number for event in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert final.output_text == hello(provider, text)


@types
def test_responses_function_calls(sdk: openai.OpenAI, provider: str) -> None:
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER["function"]["parameters"],
    }
    answer = sdk.responses.create(
        model=f"chat-{provider}", input=f"CALL_TOOL in responses {provider}", tools=[tool]
    )
    calls = [item for item in answer.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"location": "Paris"})
    ]
    assert calls[0].call_id


# --------------------------------------------------------------------- embeddings, models


@pytest.mark.parametrize("provider", EMBEDDING_TYPES)
def test_embeddings_float_and_base64(
    sdk: openai.OpenAI, quiver: QuiverProcess, mock_providers: MockProviders, provider: str
) -> None:
    texts = [f"first text {provider}", "second text"]
    floats = sdk.embeddings.create(model=f"embed-{provider}", input=texts, encoding_format="float")
    assert floats.object == "list" and [d.index for d in floats.data] == [0, 1]
    if provider not in ("bedrock",):  # (Titan normalises its vectors)
        assert floats.data[0].embedding == vector(texts[0], len(floats.data[0].embedding))
    if provider == "gemini":  # (its embeddings carry no usage: Quiver counts them)
        assert floats.usage.prompt_tokens > 0
    else:
        assert floats.usage.prompt_tokens == 5
    body = {"model": f"embed-{provider}", "input": texts, "encoding_format": "base64"}
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    raw = httpx.post(origin(quiver) + "/v1/embeddings", json=body, headers=headers, timeout=10)
    assert raw.status_code == 200, raw.text
    packed = base64.b64decode(raw.json()["data"][0]["embedding"])
    decoded = list(struct.unpack(f"<{len(packed) // 4}f", packed))
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)
    default = sdk.embeddings.create(model=f"embed-{provider}", input=texts[0])
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_models_list(sdk: openai.OpenAI) -> None:
    ids = {model.id for model in sdk.models.list()}
    assert {f"chat-{p}" for p in PROVIDER_TYPES} <= ids
    assert {f"embed-{p}" for p in EMBEDDING_TYPES} <= ids


# --------------------------------------------------------------------- errors


@types
def test_rate_limited_deployment_falls_back(
    sdk: openai.OpenAI, mock_providers: MockProviders, provider: str
) -> None:
    text = f"FAIL_429@{provider} fallback"
    answer = sdk.chat.completions.create(
        model=f"flaky-{provider}", messages=[{"role": "user", "content": text}]
    )
    fallback = FALLBACK[provider].removeprefix("chat-")
    assert answer.choices[0].message.content == hello(fallback, text)
    assert mock_providers.last(provider, text).status == 429


@types
def test_provider_errors_in_openai_shape(sdk: openai.OpenAI, provider: str) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.chat.completions.create(
            model=f"fragile-{provider}",
            messages=[{"role": "user", "content": f"FAIL_429@{provider}"}],
        )
    error: Any = limited.value.body
    assert set(error) >= {"message", "type", "param", "code"}
    assert limited.value.response.headers.get("retry-after") == "1"
    with pytest.raises(openai.APIStatusError) as failed:
        sdk.chat.completions.create(
            model=f"fragile-{provider}",
            messages=[{"role": "user", "content": f"FAIL_500@{provider}"}],
        )
    assert failed.value.status_code >= 500
    assert f"p-{provider}" in failed.value.message
    with pytest.raises(openai.BadRequestError) as context:
        sdk.chat.completions.create(
            model=f"fragile-{provider}",
            messages=[{"role": "user", "content": f"FAIL_CONTEXT@{provider}"}],
        )
    assert context.value.code == "context_length_exceeded"


def test_unknown_model_and_wrong_key(sdk: openai.OpenAI, quiver: QuiverProcess) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}]
        )
    wrong = openai.OpenAI(base_url=origin(quiver) + "/v1", api_key="wrong", max_retries=0)
    with wrong, pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    assert KEYS  # (the providers' keys are the mocks'; the client's is CLIENT_KEY)
    assert EMBEDDING_MODELS


@types
def test_a_stream_cut_by_the_provider_does_not_end_cleanly(
    quiver: QuiverProcess, provider: str
) -> None:
    """A client must be able to tell a dropped answer from a whole one: no [DONE]."""
    body = {
        "model": f"chat-{provider}",
        "messages": [{"role": "user", "content": f"CUT_STREAM midway {provider}"}],
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    url = origin(quiver) + "/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=10) as reply:
        assert reply.status_code == 200
        try:
            data = reply.read()
        except httpx.RemoteProtocolError:
            return  # (the transfer was cut short, as it should)
    assert b"[DONE]" not in data


@types
def test_slow_first_token_still_streams(sdk: openai.OpenAI, provider: str) -> None:
    text = f"SLOW_FIRST 200ms {provider}"
    stream = sdk.chat.completions.create(
        model=f"chat-{provider}", messages=[{"role": "user", "content": text}], stream=True
    )
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == hello(provider, text)


# a 1x1 transparent PNG
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
    "RU5ErkJggg=="
)


def native_images(provider: str, body: Any) -> list[Any]:
    """The images a provider's request carries, in its own format."""
    found: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if provider == "anthropic" and value.get("type") == "image":
                found.append(value["source"])
            elif provider == "gemini" and ("inlineData" in value or "inline_data" in value):
                found.append(value.get("inlineData") or value.get("inline_data"))
            elif provider == "bedrock" and "image" in value and isinstance(value["image"], dict):
                found.append(value["image"])
            elif value.get("type") == "image_url":
                found.append(value["image_url"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body)
    return found


@types
def test_image_parts_reach_the_provider_in_its_format(
    sdk: openai.OpenAI, mock_providers: MockProviders, provider: str
) -> None:
    text = f"describe this image for {provider}"
    content: Any = [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]
    answer = sdk.chat.completions.create(
        model=f"chat-{provider}", messages=[{"role": "user", "content": content}]
    )
    assert answer.choices[0].message.content == hello(provider, text)
    [image] = native_images(provider, mock_providers.last(provider, text).json)
    if provider == "anthropic":
        assert image == {"type": "base64", "media_type": "image/png", "data": PIXEL}
    elif provider == "gemini":
        assert image == {"mimeType": "image/png", "data": PIXEL}
    elif provider == "bedrock":
        assert image == {"format": "png", "source": {"bytes": PIXEL}}
    else:
        assert image["url"] == f"data:image/png;base64,{PIXEL}"


@types
def test_responses_function_call_output_continues_the_conversation(
    sdk: openai.OpenAI, provider: str
) -> None:
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER["function"]["parameters"],
    }
    first = sdk.responses.create(
        model=f"chat-{provider}", input=f"CALL_TOOL then answer {provider}", tools=[tool]
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "hail"}]
    second = sdk.responses.create(
        model=f"chat-{provider}", previous_response_id=first.id, input=output, tools=[tool]
    )
    assert second.output_text == hello(provider, "hail")


@types
@pytest.mark.parametrize("cap", ["max_tokens", "max_completion_tokens"])
def test_output_cap_stops_with_length(
    sdk: openai.OpenAI, mock_providers: MockProviders, provider: str, cap: str
) -> None:
    """Either cap reaches every provider in the field it knows (Mistral refuses
    ``max_completion_tokens``)."""
    text = f"cap this answer short {provider} {cap}"
    capped: Any = {cap: 3}
    answer = sdk.chat.completions.create(
        model=f"chat-{provider}", messages=[{"role": "user", "content": text}], **capped
    )
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == " ".join(hello(provider, text).split()[:3])
    assert answer.usage is not None and answer.usage.completion_tokens == 3
    assert sent_usage(mock_providers, provider, text)[1] == 3


@types
def test_forced_and_refused_tool_choice(sdk: openai.OpenAI, provider: str) -> None:
    forced = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": f"what time is it {provider}"}],
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert tool_calls(forced.choices[0].message) == [("get_time", {"location": "Paris"})]
    refused = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": f"CALL_TOOL but none {provider}"}],
        tools=[WEATHER, TIME],
        tool_choice="none",
    )
    assert refused.choices[0].message.tool_calls in (None, [])
    assert refused.choices[0].finish_reason == "stop"


@types
def test_json_object_response_format(sdk: openai.OpenAI, provider: str) -> None:
    text = f"answer as json {provider}"
    answer = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[
            {"role": "system", "content": "Answer with a JSON object."},
            {"role": "user", "content": text},
        ],
        response_format={"type": "json_object"},
    )
    assert json.loads(answer.choices[0].message.content or "") == {"answer": hello(provider, text)}


@types
def test_a_filtered_answer_finishes_with_content_filter(sdk: openai.OpenAI, provider: str) -> None:
    messages: Any = [{"role": "user", "content": f"REFUSE this one {provider}"}]
    answer = sdk.chat.completions.create(model=f"chat-{provider}", messages=messages)
    assert answer.choices[0].finish_reason == "content_filter"
    assert not answer.choices[0].message.content
    stream = sdk.chat.completions.create(model=f"chat-{provider}", messages=messages, stream=True)
    finishes = [c.choices[0].finish_reason for c in stream if c.choices]
    assert finishes[-1] == "content_filter"


@types
def test_responses_stream_with_function_calls(sdk: openai.OpenAI, provider: str) -> None:
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER["function"]["parameters"],
    }
    with sdk.responses.stream(
        model=f"chat-{provider}", input=f"CALL_TOOL streamed {provider}", tools=[tool]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    assert kinds[-1] == "response.completed"
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"location": "Paris"})
    ]


@types
def test_a_streamed_responses_turn_is_continued_by_its_id(
    sdk: openai.OpenAI, provider: str
) -> None:
    """Every event of a stream names the same response, the one kept: a follow-up with
    its id and the tool's output (as a list of input items) continues the conversation."""
    tool: Any = {
        "type": "function",
        "name": "get_weather",
        "parameters": WEATHER["function"]["parameters"],
    }
    with sdk.responses.stream(
        model=f"chat-{provider}", input=f"CALL_TOOL streamed then chained {provider}", tools=[tool]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    ids = {event.response.id for event in events if hasattr(event, "response")}
    assert ids == {final.id}
    [call] = [item for item in final.output if item.type == "function_call"]
    output: Any = [{"type": "function_call_output", "call_id": call.call_id, "output": "drizzle"}]
    second = sdk.responses.create(
        model=f"chat-{provider}", previous_response_id=final.id, input=output, tools=[tool]
    )
    assert second.output_text == hello(provider, "drizzle")


def test_concurrent_streams_to_every_provider_stay_apart(quiver: QuiverProcess) -> None:
    """Sixteen streams at once, two per provider type: each gets its own answer whole."""

    async def one(client: openai.AsyncOpenAI, provider: str, number: int) -> tuple[str, str]:
        text = f"concurrent {number} for {provider}"
        stream = await client.chat.completions.create(
            model=f"chat-{provider}", messages=[{"role": "user", "content": text}], stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        return "".join(pieces), hello(provider, text)

    async def run() -> list[tuple[str, str]]:
        async with openai.AsyncOpenAI(
            base_url=origin(quiver) + "/v1", api_key=CLIENT_KEY, max_retries=0
        ) as client:
            calls = [one(client, p, n) for n in range(2) for p in PROVIDER_TYPES]
            return await asyncio.gather(*calls)

    for got, expected in asyncio.run(run()):
        assert got == expected


@types
def test_a_provider_failing_midstream_is_reported_not_finished(
    quiver: QuiverProcess, provider: str
) -> None:
    """After the first bytes, a provider's error can only travel inside the stream: the
    client sees it (an ``error`` event or a cut transfer), never a clean [DONE]."""
    body = {
        "model": f"chat-{provider}",
        "messages": [{"role": "user", "content": f"FAIL_MIDSTREAM now {provider}"}],
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
    url = origin(quiver) + "/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=10) as reply:
        assert reply.status_code == 200
        try:
            data = reply.read()
        except httpx.RemoteProtocolError:
            return  # (the transfer was cut short)
    assert b"[DONE]" not in data
    assert b'"error"' in data


def test_a_provider_refusing_quivers_key_is_not_the_clients_401(sdk: openai.OpenAI) -> None:
    """The client's key was fine: a 401 would send its owner chasing the wrong key. The
    provider's key never shows in the answer."""
    with pytest.raises(openai.APIStatusError) as failed:
        sdk.chat.completions.create(
            model="misconfigured", messages=[{"role": "user", "content": "hello"}]
        )
    assert failed.value.status_code not in (401, 403)
    assert WRONG_PROVIDER_KEY not in failed.value.response.text
    assert "p-wrong-key" in failed.value.message


def test_bedrock_with_temporary_credentials_signs_the_session_token(
    sdk: openai.OpenAI, mock_providers: MockProviders
) -> None:
    text = "temporary credentials for bedrock"
    answer = sdk.chat.completions.create(
        model="chat-bedrock-sts", messages=[{"role": "user", "content": text}]
    )
    assert answer.choices[0].message.content == hello("bedrock", text)
    request = mock_providers.last("bedrock", text)
    assert request.header("x-amz-security-token") == AWS_TEMPORARY["aws_session_token"]


OPENAI_WIRE = ("openai", "azure-openai", "mistral", "ollama", "openai-compatible")


@pytest.mark.parametrize("provider", OPENAI_WIRE)
def test_usage_is_counted_when_the_provider_reports_none(sdk: openai.OpenAI, provider: str) -> None:
    """OpenAI's API always reports usage; a gateway speaking it counts what a server
    (some OpenAI-compatible ones) left out."""
    messages: Any = [{"role": "user", "content": f"NO_USAGE reported here {provider}"}]
    answer = sdk.chat.completions.create(model=f"chat-{provider}", messages=messages)
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0


@pytest.mark.parametrize("provider", OPENAI_WIRE)
def test_usage_chunk_asked_for_comes_when_the_provider_sends_none(
    sdk: openai.OpenAI, provider: str
) -> None:
    messages: Any = [{"role": "user", "content": f"NO_USAGE streamed here {provider}"}]
    stream = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    *_, last = list(stream)
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0


@pytest.mark.parametrize("provider", OPENAI_WIRE)
def test_usage_chunk_asked_for_comes_when_the_chunks_say_usage_null(
    sdk: openai.OpenAI, provider: str
) -> None:
    """Some servers put ``usage: null`` on every chunk and never send the usage chunk:
    the answer is counted all the same, and the client gets the chunk it asked for."""
    text = f"NULL_USAGE streamed here {provider}"
    stream = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    *content, last = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in content if c.choices) == hello(
        provider, text
    )
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens > 0
    assert last.usage.completion_tokens >= len(hello(provider, text).split())


@types
def test_tool_turn_with_empty_string_content(sdk: openai.OpenAI, provider: str) -> None:
    """Many clients send ``content: ""`` beside tool calls; no provider may see an empty
    text block from it."""
    messages: Any = [
        {"role": "user", "content": f"CALL_TOOL empty content {provider}"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_0001",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0001", "content": "mild"},
    ]
    answer = sdk.chat.completions.create(
        model=f"chat-{provider}", messages=messages, tools=[WEATHER]
    )
    assert answer.choices[0].message.content == hello(provider, "mild")


@types
def test_sampling_and_stop_reach_the_provider_in_its_fields(
    sdk: openai.OpenAI, mock_providers: MockProviders, provider: str
) -> None:
    text = f"sampling settings for {provider}"
    sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": text}],
        temperature=0.25,
        top_p=0.5,
        stop=["STOP_HERE"],
    )
    body = mock_providers.last(provider, text).json
    if provider == "anthropic":
        got = (body["temperature"], body["top_p"], body["stop_sequences"])
    elif provider == "gemini":
        config = body["generationConfig"]
        got = (config["temperature"], config["topP"], config["stopSequences"])
    elif provider == "bedrock":
        config = body["inferenceConfig"]
        got = (config["temperature"], config["topP"], config["stopSequences"])
    else:
        stop = body["stop"] if isinstance(body["stop"], list) else [body["stop"]]
        got = (body["temperature"], body["top_p"], stop)
    assert got == (0.25, 0.5, ["STOP_HERE"])


def test_responses_instructions_and_unstored_responses(
    sdk: openai.OpenAI, mock_providers: MockProviders
) -> None:
    text = "instructions reach the provider"
    answer = sdk.responses.create(
        model="chat-anthropic", instructions="Speak like a sailor", input=text, store=False
    )
    assert answer.output_text == hello("anthropic", text)
    assert mock_providers.last("anthropic", text).json["system"] in (
        "Speak like a sailor",
        [{"type": "text", "text": "Speak like a sailor"}],
    )
    with pytest.raises((openai.NotFoundError, openai.BadRequestError)):
        sdk.responses.create(model="chat-anthropic", input="again", previous_response_id=answer.id)


@types
def test_common_openai_fields_do_not_break_any_provider(sdk: openai.OpenAI, provider: str) -> None:
    """``user`` and ``seed`` are everyday OpenAI fields; a provider that refuses unknown
    fields (Mistral: 422) must get them mapped or left out."""
    text = f"user and seed fields for {provider}"
    answer = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": text}],
        user="alice@example.com",
        seed=7,
    )
    assert answer.choices[0].message.content == hello(provider, text)


STRICT_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "book_table",
        "description": "Book a table",
        "strict": True,
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string"},
                "guests": {"$ref": "#/$defs/Guests"},
            },
            "required": ["location", "guests"],
            "additionalProperties": False,
            "$defs": {"Guests": {"type": "integer", "minimum": 1}},
        },
    },
}


@types
def test_strict_tool_schemas_reach_every_provider(sdk: openai.OpenAI, provider: str) -> None:
    """OpenAI strict schemas (additionalProperties, $defs/$ref) are what SDKs generate;
    each provider must get a schema it accepts."""
    answer = sdk.chat.completions.create(
        model=f"chat-{provider}",
        messages=[{"role": "user", "content": f"CALL_TOOL strict {provider}"}],
        tools=[STRICT_TOOL],
    )
    assert tool_calls(answer.choices[0].message) == [("book_table", {"location": "Paris"})]


@types
def test_tool_result_then_a_user_message(sdk: openai.OpenAI, provider: str) -> None:
    """A tool result and a new user message are two chat messages but one user turn for
    providers that need turns to alternate (Bedrock)."""
    messages: Any = [{"role": "user", "content": f"CALL_TOOL then more {provider}"}]
    first = sdk.chat.completions.create(
        model=f"chat-{provider}", messages=messages, tools=[WEATHER]
    )
    calls: list[Any] = list(first.choices[0].message.tool_calls or [])
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in calls
            ],
        },
        {"role": "tool", "tool_call_id": calls[0].id, "content": "foggy"},
        {"role": "user", "content": "and tomorrow?"},
    ]
    answer = sdk.chat.completions.create(
        model=f"chat-{provider}", messages=messages, tools=[WEATHER]
    )
    assert answer.choices[0].message.content == hello(provider, "and tomorrow?")
