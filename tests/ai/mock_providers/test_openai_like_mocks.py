"""The OpenAI mock and its relatives (Azure, Mistral, Ollama, OpenAI-compatible) read by
the official ``openai`` SDK: if the SDK parses them, streamed and not, the shapes are
the real ones; where a relative differs from OpenAI, the difference is checked."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.ai.mock_providers import (
    EMBEDDING_MODELS,
    KEYS,
    MODELS,
    MockProviders,
)
from tests.ai.mock_providers.calls import (
    OPENAI_LIKE,
    TIME,
    WEATHER,
    azure,
    client,
    opened,
    sse_data,
)


@pytest.mark.parametrize("provider", OPENAI_LIKE)
def test_openai_sdk_reads_a_chat_completion_with_exact_usage(
    mock_providers: MockProviders, provider: str
) -> None:
    answer = client(mock_providers, provider).chat.completions.create(
        model=MODELS[provider],
        messages=[
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "what is the weather like"},
        ],
    )
    text = f"Hello from {provider} {MODELS[provider]}: what is the weather like"
    assert answer.choices[0].message.content == text
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (7, len(text.split()))
    assert mock_providers.last(provider).usage == (7, len(text.split()))


def test_openai_stream_with_usage_sends_null_usage_then_a_usage_chunk(
    mock_providers: MockProviders,
) -> None:
    stream = client(mock_providers, "openai").chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 3 + 7
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert text == "Hello from openai gpt-4o-mini: stream me please"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_openai_stream_without_usage_has_no_usage_field_and_ends_with_done(
    mock_providers: MockProviders,
) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"Authorization": f"Bearer {KEYS['openai']}"}
    reply = httpx.post(
        mock_providers.base_url("openai") + "/chat/completions", json=body, headers=headers
    )
    assert reply.headers["content-type"].startswith("text/event-stream")
    data = sse_data(reply.content)
    assert data[-1] == "[DONE]"
    assert all("usage" not in json.loads(item) for item in data[:-1])


def test_stream_options_without_stream_is_refused(mock_providers: MockProviders) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(mock_providers, "openai").chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream_options={"include_usage": True},
        )
    assert caught.value.param == "stream_options"


@pytest.mark.parametrize("provider", OPENAI_LIKE)
def test_openai_sdk_assembles_parallel_streamed_tool_calls(
    mock_providers: MockProviders, provider: str
) -> None:
    stream = client(mock_providers, provider).chat.completions.create(
        model=MODELS[provider],
        messages=[{"role": "user", "content": "weather and time CALL_TWO_TOOLS"}],
        tools=[WEATHER, TIME],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"name": "", "arguments": ""})
                if delta.function and delta.function.name:
                    call["name"] = delta.function.name
                if delta.function and delta.function.arguments:
                    call["arguments"] += delta.function.arguments
    assert finish == "tool_calls"
    assert calls == {
        0: {"name": "get_weather", "arguments": '{"location": "Paris"}'},
        1: {"name": "get_time", "arguments": '{"location": "London"}'},
    }


def test_openai_tool_result_gets_an_answer_echoing_it(mock_providers: MockProviders) -> None:
    first = client(mock_providers, "openai").chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "CALL_TOOL"}],
        tools=[WEATHER],
        parallel_tool_calls=False,
    )
    [call] = first.choices[0].message.tool_calls or []
    assert call.type == "function" and call.function.arguments == '{"location": "Paris"}'
    second = client(mock_providers, "openai").chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "CALL_TOOL"},
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 degrees"},
        ],
        tools=[WEATHER],
    )
    assert second.choices[0].message.content == "Hello from openai gpt-4o-mini: sunny, 21 degrees"


class Weather(BaseModel):
    city: str
    degrees: int
    tags: list[str]


def test_openai_sdk_parses_a_json_schema_answer(mock_providers: MockProviders) -> None:
    parsed = client(mock_providers, "openai").chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Paris"}],
        response_format=Weather,
    )
    assert parsed.choices[0].message.parsed == Weather(city="Paris", degrees=1, tags=["Paris"])


def test_openai_embeddings_float_and_base64_carry_the_same_vector(
    mock_providers: MockProviders,
) -> None:
    sdk = client(mock_providers, "openai")
    floats = sdk.embeddings.create(
        model="text-embedding-3-small", input=["one two", "three"], encoding_format="float"
    )
    assert [d.index for d in floats.data] == [0, 1] and len(floats.data[0].embedding) == 8
    assert floats.usage.prompt_tokens == 3
    headers = {"Authorization": f"Bearer {KEYS['openai']}"}
    body = {"model": "text-embedding-3-small", "input": "one two", "encoding_format": "base64"}
    raw = httpx.post(
        mock_providers.base_url("openai") + "/embeddings", json=body, headers=headers
    ).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == floats.data[0].embedding
    default = sdk.embeddings.create(
        model="text-embedding-3-small", input="one two"
    )  # base64 on the wire
    assert default.data[0].embedding == floats.data[0].embedding


def test_openai_models_list(mock_providers: MockProviders) -> None:
    models = client(mock_providers, "openai").models.list()
    assert [m.id for m in models] == [MODELS["openai"], EMBEDDING_MODELS["openai"]]


def test_openai_errors_keep_the_real_shapes(mock_providers: MockProviders) -> None:
    sdk = client(mock_providers, "openai")
    with pytest.raises(openai.RateLimitError) as limited:
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "FAIL_429"}]
        )
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "FAIL_500"}]
        )
    with pytest.raises(openai.BadRequestError) as context:
        sdk.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "FAIL_CONTEXT"}]
        )
    assert context.value.code == "context_length_exceeded"
    wrong = opened(
        openai.OpenAI(base_url=mock_providers.base_url("openai"), api_key="sk-wrong", max_retries=0)
    )
    with pytest.raises(openai.AuthenticationError) as denied:
        wrong.models.list()
    assert denied.value.code == "invalid_api_key"


def test_slow_first_token_and_a_cut_stream(mock_providers: MockProviders) -> None:
    sdk = client(mock_providers, "openai")
    started = time.monotonic()
    stream = sdk.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "SLOW_FIRST 200ms"}], stream=True
    )
    next(iter(stream))
    assert time.monotonic() - started >= 0.2
    stream.close()
    cut = sdk.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "CUT_STREAM now"}], stream=True
    )
    with pytest.raises((httpx.RemoteProtocolError, openai.APIConnectionError)):
        list(cut)


def test_async_openai_sdk_streams_from_the_mock(mock_providers: MockProviders) -> None:
    async def run() -> str:
        async with openai.AsyncOpenAI(
            base_url=mock_providers.base_url("openai"), api_key=KEYS["openai"], max_retries=0
        ) as sdk:
            stream = await sdk.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "async hi"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert asyncio.run(run()) == "Hello from openai gpt-4o-mini: async hi"


def test_azure_sdk_reaches_the_deployment_with_api_key_and_version(
    mock_providers: MockProviders,
) -> None:
    sdk = azure(mock_providers)
    deployment = MODELS["azure-openai"]
    answer = sdk.chat.completions.create(
        model=deployment, messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == f"Hello from azure-openai {deployment}: hi"
    request = mock_providers.last("azure-openai")
    assert request.full_path == f"/azure/openai/deployments/{deployment}/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.header("api-key") == KEYS["azure-openai"]
    stream = sdk.chat.completions.create(
        model=deployment,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices == [] and chunks[0].usage is None  # the content-filter chunk
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 1
    embedded = sdk.embeddings.create(model=EMBEDDING_MODELS["azure-openai"], input="hello")
    assert len(embedded.data[0].embedding) == 8
    no_version = httpx.post(
        mock_providers.origin + f"/azure/openai/deployments/{deployment}/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}]},
        headers={"api-key": KEYS["azure-openai"]},
    )
    assert no_version.status_code == 404
    assert no_version.json() == {"error": {"code": "404", "message": "Resource not found"}}


def test_mistral_refuses_fields_it_does_not_know(mock_providers: MockProviders) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        client(mock_providers, "mistral").chat.completions.create(
            model=MODELS["mistral"],
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    body: Any = refused.value.body
    assert body["message"]["detail"][0]["loc"] == ["body", "stream_options"]
    stream = client(mock_providers, "mistral").chat.completions.create(
        model=MODELS["mistral"], messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].usage is not None


def test_ollama_needs_no_key(mock_providers: MockProviders) -> None:
    reply = httpx.post(
        mock_providers.base_url("ollama") + "/chat/completions",
        json={"model": MODELS["ollama"], "messages": [{"role": "user", "content": "hi"}]},
    )
    assert reply.status_code == 200 and reply.json()["system_fingerprint"] == "fp_ollama"


def test_a_scoped_failure_fails_only_its_provider(mock_providers: MockProviders) -> None:
    messages: Any = [{"role": "user", "content": "FAIL_429@mistral please"}]
    answer = client(mock_providers, "openai").chat.completions.create(
        model="gpt-4o-mini", messages=messages
    )
    assert answer.choices[0].message.content == (
        "Hello from openai gpt-4o-mini: FAIL_429@mistral please"
    )
    with pytest.raises(openai.RateLimitError):
        client(mock_providers, "mistral").chat.completions.create(
            model=MODELS["mistral"], messages=messages
        )


def test_json_object_needs_the_word_json(mock_providers: MockProviders) -> None:
    sdk = client(mock_providers, "openai")
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
        )
    assert "must contain the word 'json'" in caught.value.message
    answer = sdk.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi, in json"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(answer.choices[0].message.content or "") == {
        "answer": "Hello from openai m: hi, in json"
    }


def test_whole_bodies_are_gzipped_when_the_client_accepts_it(
    mock_providers: MockProviders,
) -> None:
    url = mock_providers.base_url("ollama") + "/chat/completions"
    body = {"model": MODELS["ollama"], "messages": [{"role": "user", "content": "hi"}]}
    packed = httpx.post(url, json=body, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    plain = httpx.post(url, json=body, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert packed.json() == plain.json()


def test_no_usage_leaves_usage_out(mock_providers: MockProviders) -> None:
    url = mock_providers.base_url("openai-compatible") + "/chat/completions"
    headers = {"Authorization": f"Bearer {KEYS['openai-compatible']}"}
    user = [{"role": "user", "content": "NO_USAGE here"}]
    whole = httpx.post(url, json={"model": "m", "messages": user}, headers=headers).json()
    assert "usage" not in whole
    body = {
        "model": "m",
        "messages": user,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    streamed = httpx.post(url, json=body, headers=headers)
    assert b"usage" not in streamed.content and streamed.content.endswith(b"data: [DONE]\n\n")


def test_mistral_takes_only_its_own_tool_call_ids(mock_providers: MockProviders) -> None:
    messages: Any = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_0001",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0001", "content": "x"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client(mock_providers, "mistral").chat.completions.create(
            model=MODELS["mistral"], messages=messages
        )
    assert "Tool call id was call_0001" in caught.value.message
    messages[1]["tool_calls"][0]["id"] = messages[2]["tool_call_id"] = "A1b2C3d4E"
    answer = client(mock_providers, "mistral").chat.completions.create(
        model=MODELS["mistral"], messages=messages
    )
    assert answer.choices[0].message.content == f"Hello from mistral {MODELS['mistral']}: x"
