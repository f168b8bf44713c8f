"""The mocks speak the real formats: the official SDKs and raw wire checks against them.

If the ``openai`` and ``anthropic`` SDKs parse what a mock sends, streamed and not, the
mock's shapes are the real ones; the providers without an SDK here (Gemini, Bedrock)
are checked byte by byte, Bedrock's signature against AWS's published test vector.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import anthropic
import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.ai.mock_providers import (
    AWS,
    EMBEDDING_MODELS,
    KEYS,
    MODELS,
    PROVIDER_TYPES,
    MockProviders,
    eventstream,
    sigv4,
)

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
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
T = TypeVar("T")
OPENAI_LIKE = ("openai", "mistral", "ollama", "openai-compatible")


OPENED: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Each SDK client a test opened is closed after it (its pooled sockets with it)."""
    yield
    while OPENED:
        OPENED.pop().close()


def opened(sdk: T) -> T:
    OPENED.append(sdk)  # type: ignore[arg-type]
    return sdk


def client(mocks: MockProviders, provider: str) -> openai.OpenAI:
    key = KEYS.get(provider, "unused")
    return opened(openai.OpenAI(base_url=mocks.base_url(provider), api_key=key, max_retries=0))


def azure(mocks: MockProviders) -> openai.AzureOpenAI:
    return opened(
        openai.AzureOpenAI(
            azure_endpoint=mocks.origin + "/azure",
            api_key=KEYS["azure-openai"],
            api_version="2024-10-21",
            max_retries=0,
        )
    )


def claude(mocks: MockProviders) -> anthropic.Anthropic:
    return opened(
        anthropic.Anthropic(
            base_url=mocks.base_url("anthropic"), api_key=KEYS["anthropic"], max_retries=0
        )
    )


def sse_data(raw: bytes) -> list[str]:
    return [
        line[len("data: ") :]
        for event in raw.decode().replace("\r\n", "\n").split("\n\n")
        for line in event.split("\n")
        if line.startswith("data: ")
    ]


# --------------------------------------------------------------------- OpenAI and kin


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


# --------------------------------------------------------------------- Anthropic


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


# --------------------------------------------------------------------- Gemini


def gemini_post(
    mocks: MockProviders,
    method: str,
    body: dict[str, Any],
    query: str = "",
    key: str | None = KEYS["gemini"],
) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    url = mocks.base_url("gemini") + f"/v1beta/models/{MODELS['gemini']}:{method}{query}"
    return httpx.post(url, json=body, headers=headers)


def test_gemini_generate_content_and_sse_stream(mock_providers: MockProviders) -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief"}]},
        "contents": [{"role": "user", "parts": [{"text": "hello gemini"}]}],
    }
    whole = gemini_post(mock_providers, "generateContent", body).json()
    text = f"Hello from gemini {MODELS['gemini']}: hello gemini"
    assert whole["candidates"][0]["content"] == {"parts": [{"text": text}], "role": "model"}
    assert whole["candidates"][0]["finishReason"] == "STOP"
    assert whole["usageMetadata"]["promptTokenCount"] == 4
    assert whole["usageMetadata"]["candidatesTokenCount"] == len(text.split())
    streamed = gemini_post(mock_providers, "streamGenerateContent", body, "?alt=sse")
    assert streamed.headers["content-type"] == "text/event-stream"
    assert b"\r\n\r\n" in streamed.content
    chunks = [json.loads(item) for item in sse_data(streamed.content)]
    assert len(chunks) >= 3
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == text
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] == 4 + len(text.split())
    array = gemini_post(mock_providers, "streamGenerateContent", body).json()
    assert [c["candidates"] for c in array] == [c["candidates"] for c in chunks]


def test_gemini_function_calls_come_whole(mock_providers: MockProviders) -> None:
    body: dict[str, Any] = {
        "contents": [{"role": "user", "parts": [{"text": "CALL_TWO_TOOLS"}]}],
        "tools": [
            {"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "OBJECT"}}]}
        ],
    }
    answer = gemini_post(mock_providers, "generateContent", body).json()
    assert answer["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
        {"functionCall": {"name": "get_weather", "args": {"location": "London"}}},
    ]
    body["contents"] += [
        answer["candidates"][0]["content"],
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}}}],
        },
    ]
    final = gemini_post(mock_providers, "generateContent", body).json()
    assert final["candidates"][0]["content"]["parts"][0]["text"].endswith(': {"sky": "clear"}')
    assistant = {"role": "assistant", "parts": [{"text": "x"}]}
    wrong_role = gemini_post(mock_providers, "generateContent", {"contents": [assistant]})
    assert wrong_role.status_code == 400
    assert wrong_role.json()["error"]["message"] == "Please use a valid role: user, model."


def test_gemini_json_schema_embeddings_and_errors(mock_providers: MockProviders) -> None:
    schema = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}
    body = {
        "contents": [{"role": "user", "parts": [{"text": "Lyon"}]}],
        "generationConfig": {"responseMimeType": "application/json", "responseSchema": schema},
    }
    answer = gemini_post(mock_providers, "generateContent", body).json()
    assert json.loads(answer["candidates"][0]["content"]["parts"][0]["text"]) == {"city": "Lyon"}
    embed_body = {
        "requests": [
            {"model": f"models/{MODELS['gemini']}", "content": {"parts": [{"text": t}]}}
            for t in ("a b", "c")
        ]
    }
    embedded = gemini_post(mock_providers, "batchEmbedContents", embed_body).json()
    assert [len(e["values"]) for e in embedded["embeddings"]] == [8, 8]
    limited = gemini_post(
        mock_providers, "generateContent", {"contents": [{"parts": [{"text": "FAIL_429"}]}]}
    )
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert gemini_post(mock_providers, "generateContent", body, key=None).status_code == 403
    bad = gemini_post(mock_providers, "generateContent", body, key="AIzaWrong")
    assert (
        bad.status_code == 400 and bad.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    )


# --------------------------------------------------------------------- Bedrock


def bedrock_post(
    mocks: MockProviders,
    model: str,
    operation: str,
    body: dict[str, Any],
    secret: str = AWS["aws_secret_access_key"],
) -> httpx.Response:
    url = mocks.base_url("bedrock") + f"/model/{model.replace(':', '%3A')}/{operation}"
    payload = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    headers |= sigv4.sign(
        "POST",
        url,
        headers,
        payload,
        access_key=AWS["aws_access_key_id"],
        secret_key=secret,
        region=AWS["region"],
        service="bedrock",
        now=datetime.now(UTC),
    )
    return httpx.post(url, content=payload, headers=headers)


def test_sigv4_matches_the_aws_test_suite() -> None:
    headers = {"host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"}
    args = ("GET", "/", headers, ["host", "x-amz-date"], hashlib.sha256(b"").hexdigest())
    secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    assert sigv4.signature(secret, *args, "20150830T123600Z", "us-east-1", "service") == (
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    query = ("GET", "/?Param2=value2&Param1=value1", *args[2:])
    assert sigv4.signature(secret, *query, "20150830T123600Z", "us-east-1", "service") == (
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    )


def test_bedrock_converse_and_signature_checks(mock_providers: MockProviders) -> None:
    body = {
        "system": [{"text": "Be brief"}],
        "messages": [{"role": "user", "content": [{"text": "hello bedrock"}]}],
        "inferenceConfig": {"maxTokens": 100},
    }
    answer = bedrock_post(mock_providers, MODELS["bedrock"], "converse", body)
    assert answer.status_code == 200, answer.text
    text = f"Hello from bedrock {MODELS['bedrock']}: hello bedrock"
    assert answer.json()["output"]["message"]["content"] == [{"text": text}]
    assert answer.json()["usage"] == {"inputTokens": 4, "outputTokens": 6, "totalTokens": 10}
    assert mock_providers.last("bedrock").full_path.endswith("v1%3A0/converse")
    forged = bedrock_post(mock_providers, MODELS["bedrock"], "converse", body, secret="wrong")
    assert forged.status_code == 403
    assert forged.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")
    unsigned = httpx.post(mock_providers.base_url("bedrock") + "/model/m/converse", json=body)
    assert unsigned.status_code == 403 and unsigned.json() == {
        "message": "Missing Authentication Token"
    }
    blank = bedrock_post(
        mock_providers,
        MODELS["bedrock"],
        "converse",
        {"messages": [{"role": "user", "content": [{"text": " "}]}]},
    )
    assert blank.status_code == 400 and "is blank" in blank.json()["message"]
    limited = bedrock_post(
        mock_providers,
        MODELS["bedrock"],
        "converse",
        {"messages": [{"role": "user", "content": [{"text": "FAIL_429"}]}]},
    )
    assert limited.status_code == 429 and limited.headers["x-amzn-ErrorType"].startswith(
        "ThrottlingException"
    )


def test_bedrock_converse_stream_frames(mock_providers: MockProviders) -> None:
    tool = {"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}
    body = {
        "messages": [{"role": "user", "content": [{"text": "CALL_TOOL"}]}],
        "toolConfig": {"tools": [tool]},
    }
    reply = bedrock_post(mock_providers, MODELS["bedrock"], "converse-stream", body)
    assert reply.headers["content-type"] == "application/vnd.amazon.eventstream"
    messages = eventstream.decode(reply.content)
    assert all(
        m.headers[":message-type"] == "event" and m.headers[":content-type"] == "application/json"
        for m in messages
    )
    kinds = [m.headers[":event-type"] for m in messages]
    assert kinds == [
        "messageStart",
        "contentBlockStart",
        *["contentBlockDelta"] * 3,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    payloads = [json.loads(m.payload) for m in messages]
    assert all("p" in p for p in payloads)
    assert "".join(p["delta"]["toolUse"]["input"] for p in payloads[2:5]) == '{"location": "Paris"}'
    assert payloads[6]["stopReason"] == "tool_use"
    text = bedrock_post(
        mock_providers,
        MODELS["bedrock"],
        "converse-stream",
        {"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
    )
    text_kinds = [m.headers[":event-type"] for m in eventstream.decode(text.content)]
    assert text_kinds[:2] == ["messageStart", "contentBlockDelta"]  # no start for text


def test_bedrock_titan_embeddings(mock_providers: MockProviders) -> None:
    reply = bedrock_post(
        mock_providers,
        EMBEDDING_MODELS["bedrock"],
        "invoke",
        {"inputText": "one two", "dimensions": 256},
    )
    data = reply.json()
    assert len(data["embedding"]) == 256 and data["inputTextTokenCount"] == 2
    assert abs(sum(v * v for v in data["embedding"]) - 1) < 1e-9
    refused = bedrock_post(
        mock_providers, EMBEDDING_MODELS["bedrock"], "invoke", {"inputText": "x", "dimensions": 8}
    )
    assert refused.status_code == 400


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


# --------------------------------------------------------------------- every stream


def stream_call(
    mocks: MockProviders, provider: str, text: str
) -> tuple[str, dict[str, str], bytes]:
    """URL, header fields and body of a streamed call to ``provider``'s mock."""
    user = [{"role": "user", "content": text}]
    if provider == "anthropic":
        headers = {"x-api-key": KEYS["anthropic"], "anthropic-version": "2023-06-01"}
        body: Any = {"model": "c", "max_tokens": 50, "stream": True, "messages": user}
        return mocks.base_url(provider) + "/v1/messages", headers, json.dumps(body).encode()
    if provider == "gemini":
        url = mocks.base_url(provider) + "/v1beta/models/g:streamGenerateContent?alt=sse"
        body = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        return url, {"x-goog-api-key": KEYS["gemini"]}, json.dumps(body).encode()
    if provider == "bedrock":
        url = mocks.base_url(provider) + "/model/m/converse-stream"
        payload = json.dumps({"messages": [{"role": "user", "content": [{"text": text}]}]})
        signed = sigv4.sign(
            "POST",
            url,
            {},
            payload.encode(),
            access_key=AWS["aws_access_key_id"],
            secret_key=AWS["aws_secret_access_key"],
            region=AWS["region"],
            service="bedrock",
            now=datetime.now(UTC),
        )
        return url, signed, payload.encode()
    body = {"model": MODELS[provider], "messages": user, "stream": True}
    if provider == "azure-openai":
        url = mocks.origin + "/azure/openai/deployments/d/chat/completions?api-version=2024-10-21"
        return url, {"api-key": KEYS[provider]}, json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {KEYS[provider]}"} if provider in KEYS else {}
    return mocks.base_url(provider) + "/chat/completions", headers, json.dumps(body).encode()


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
