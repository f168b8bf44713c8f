"""The Gemini mock, byte by byte (no Gemini SDK here): content, SSE, tools, embeddings."""

from __future__ import annotations

import json
from typing import Any

from tests.ai.mock_providers import (
    MODELS,
    MockProviders,
)
from tests.ai.mock_providers.calls import (
    gemini_post,
    sse_data,
)


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
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"sky": "clear"}}},
                {"functionResponse": {"name": "get_weather", "response": {"sky": "grey"}}},
            ],
        },
    ]
    final = gemini_post(mock_providers, "generateContent", body).json()
    assert final["candidates"][0]["content"]["parts"][0]["text"].endswith(": clear grey")
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


def test_empty_text_and_empty_parts_are_refused(mock_providers: MockProviders) -> None:
    empty_text = {"contents": [{"role": "user", "parts": [{"text": ""}]}]}
    reply = gemini_post(mock_providers, "generateContent", empty_text)
    assert reply.status_code == 400 and "empty text parameter" in reply.json()["error"]["message"]
    no_parts = {"contents": [{"role": "user", "parts": []}]}
    reply = gemini_post(mock_providers, "generateContent", no_parts)
    assert reply.status_code == 400 and "must not be empty" in reply.json()["error"]["message"]


def test_schema_fields_outside_geminis_subset_are_refused(mock_providers: MockProviders) -> None:
    strict = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "additionalProperties": False,
    }
    body = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "tools": [{"functionDeclarations": [{"name": "f", "parameters": strict}]}],
    }
    reply = gemini_post(mock_providers, "generateContent", body)
    assert reply.status_code == 400
    assert 'Unknown name "additionalProperties"' in reply.json()["error"]["message"]
    body["tools"] = [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": strict}]}]
    assert gemini_post(mock_providers, "generateContent", body).status_code == 200
