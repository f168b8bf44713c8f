"""Calling the mocks directly, as each provider's clients do (shared by their tests)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

import anthropic
import httpx
import openai

from tests.ai.mock_providers import (
    AWS,
    KEYS,
    MODELS,
    MockProviders,
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
