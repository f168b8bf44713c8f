"""Chat completions <-> Gemini generateContent (the provider side)."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from quiver.ai.converters import openai_chat_to_gemini as conv
from quiver.ai.converters.chat import ConversionError, StreamError
from tests.ai.converters.accumulate import accumulate

SIGNATURE = "++/+LXRob3VnaHQh"  # base64 with both characters ids cannot hold
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}


def _call(call_id: str, city: str) -> dict[str, Any]:
    arguments = orjson.dumps({"location": city}).decode()
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }


def test_request_maps_system_turns_images_and_generation_config() -> None:
    body = conv.convert_request(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is it?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/jpeg;base64,/9j/4A=="},
                        },
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png?s=1"}},
                    ],
                },
                {"role": "assistant", "content": "A cat."},
                {"role": "user", "content": "Sure?"},
            ],
            "temperature": 0.2,
            "top_p": 0.5,
            "max_tokens": 100,
            "stop": ["END"],
            "seed": 7,
        },
        "gemini-2.5-flash",
    )
    assert body == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is it?"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4A=="}},
                    {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a.png?s=1"}},
                ],
            },
            {"role": "model", "parts": [{"text": "A cat."}]},
            {"role": "user", "parts": [{"text": "Sure?"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.2,
            "topP": 0.5,
            "seed": 7,
            "maxOutputTokens": 100,
            "stopSequences": ["END"],
        },
    }


def test_parallel_calls_and_their_responses_share_one_turn_each() -> None:
    body = conv.convert_request(
        {
            "messages": [
                {"role": "user", "content": "Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        _call("call_1_sig_-_8-LXRob3VnaHQ", "Paris"),
                        _call("call_2", "Rome"),
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": "call_1_sig_-_8-LXRob3VnaHQ",
                    "content": '{"temp": 21}',
                },
                {"role": "tool", "tool_call_id": "call_2", "content": "rainy"},
            ],
            "tools": [TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        },
        "m",
    )
    model_turn, answers = body["contents"][1], body["contents"][2]
    assert model_turn == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
                "thoughtSignature": "+/8+LXRob3VnaHQ=",
            },
            {"functionCall": {"name": "get_weather", "args": {"location": "Rome"}}},
        ],
    }
    assert answers == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": "rainy"}}},
        ],
    }
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather of a city",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"location": {"type": "STRING"}},
                        "required": ["location"],
                    },
                }
            ]
        }
    ]
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


@pytest.mark.parametrize(
    ("choice", "mode"), [("none", "NONE"), ("required", "ANY"), ("auto", None)]
)
def test_tool_choice_modes(choice: str, mode: str | None) -> None:
    body = conv.convert_request(
        {"messages": [{"role": "user", "content": "x"}], "tools": [TOOL], "tool_choice": choice},
        "m",
    )
    assert (body.get("toolConfig") or {}).get("functionCallingConfig", {}).get("mode") == mode


def test_tool_result_without_its_call_is_refused() -> None:
    with pytest.raises(ConversionError):
        conv.convert_request(
            {"messages": [{"role": "tool", "tool_call_id": "x", "content": "y"}]}, "m"
        )


def test_json_schema_is_rewritten_into_gemini_schema() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "name": {"type": ["string", "null"], "format": "email", "description": "who"},
            "kind": {"const": "person"},
            "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1},
            "size": {"anyOf": [{"type": "integer", "format": "int64"}, {"type": "null"}]},
            "color": {"enum": ["red", "blue"]},
        },
        "required": ["name"],
        "additionalProperties": False,
        "$defs": {"tag": {"type": "string", "maxLength": 10}},
    }
    chat = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": schema}},
    }
    config = conv.convert_request(chat, "m")["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING", "nullable": True, "description": "who"},
            "kind": {"type": "STRING", "format": "enum", "enum": ["person"]},
            "tags": {"type": "ARRAY", "minItems": 1, "items": {"type": "STRING", "maxLength": 10}},
            "size": {"type": "INTEGER", "format": "int64", "nullable": True},
            "color": {"type": "STRING", "format": "enum", "enum": ["red", "blue"]},
        },
        "required": ["name"],
    }


def test_recursive_schema_is_cut_and_unknown_reference_refused() -> None:
    node = {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}
    schema = {**node, "$defs": {"node": node}}
    converted = conv.json_schema_to_gemini(schema)
    depth = 0
    while "properties" in converted:
        converted = converted["properties"]["child"]
        depth += 1
    assert 10 < depth < 40
    with pytest.raises(ConversionError):
        conv.json_schema_to_gemini({"$ref": "#/$defs/missing"})


def test_json_object_mode_sets_mime_type_only() -> None:
    chat = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"},
    }
    assert conv.convert_request(chat, "m")["generationConfig"] == {
        "responseMimeType": "application/json"
    }


def test_response_with_text_calls_signature_and_usage() -> None:
    out = conv.convert_response(
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "thinking...", "thought": True},
                            {"text": "Checking."},
                            {
                                "functionCall": {
                                    "name": "get_weather",
                                    "args": {"location": "Paris"},
                                },
                                "thoughtSignature": SIGNATURE,
                            },
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 10,
                "candidatesTokenCount": 5,
                "thoughtsTokenCount": 3,
                "cachedContentTokenCount": 4,
                "totalTokenCount": 18,
            },
            "responseId": "abc",
        },
        "gemini-fast",
    )
    assert out["id"] == "chatcmpl-abc" and out["model"] == "gemini-fast"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking."
    (call,) = choice["message"]["tool_calls"]
    # the signature rides in the id, in the alphabet ids allow everywhere
    assert call["id"].startswith("call_") and call["id"].endswith("_sig_--_-LXRob3VnaHQh")
    assert call["function"] == {"name": "get_weather", "arguments": '{"location":"Paris"}'}
    assert out["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 8,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 4},
    }
    # the id carries the signature back to Gemini on the next turn
    assistant = {"role": "assistant", "content": None, "tool_calls": [call]}
    again = conv.convert_request({"messages": [{"role": "user", "content": "x"}, assistant]}, "m")
    assert again["contents"][1]["parts"][0]["thoughtSignature"] == SIGNATURE


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons_map(reason: str, finish: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert conv.convert_response(body, "m")["choices"][0]["finish_reason"] == finish


def test_blocked_prompt_gives_content_filter() -> None:
    out = conv.convert_response({"promptFeedback": {"blockReason": "SAFETY"}}, "m")
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["usage"]["total_tokens"] == 0


def test_stream_rebuilds_text_and_two_calls_with_final_usage() -> None:
    converter = conv.StreamConverter("gemini-fast", "chatcmpl-1", 1)
    events = [
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}],
            "usageMetadata": {"promptTokenCount": 7},
        },
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {
                                "functionCall": {
                                    "name": "get_weather",
                                    "args": {"location": "Paris"},
                                }
                            },
                            {"functionCall": {"name": "get_weather", "args": {"location": "Rome"}}},
                        ],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 7,
                "candidatesTokenCount": 9,
                "totalTokenCount": 16,
            },
        },
    ]
    chunks = [c for e in events for c in converter.feed(e)] + converter.finish()
    result = accumulate(chunks)
    assert result["content"] == "Hello"
    assert [(c["name"], c["arguments"]) for c in result["tool_calls"]] == [
        ("get_weather", '{"location":"Paris"}'),
        ("get_weather", '{"location":"Rome"}'),
    ]
    assert len({c["id"] for c in result["tool_calls"]}) == 2
    assert result["finish_reason"] == "tool_calls"
    assert result["usage"] == {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16}


def test_stream_error_raises() -> None:
    converter = conv.StreamConverter("m", "c", 1)
    with pytest.raises(StreamError) as caught:
        converter.feed({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    assert caught.value.kind == "UNAVAILABLE"


def test_embeddings_batch_request_and_float_and_base64_responses() -> None:
    body = conv.convert_embeddings_request(
        {"input": ["a", "b"], "dimensions": 8}, "text-embedding-004"
    )
    assert body == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "a"}]},
                "outputDimensionality": 8,
            },
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": "b"}]},
                "outputDimensionality": 8,
            },
        ]
    }
    answer = {"embeddings": [{"values": [0.5, -1.0]}, {"values": [0.25, 2.0]}]}
    out = conv.convert_embeddings_response(answer, "emb", 2)
    assert out["object"] == "list" and out["model"] == "emb"
    assert [(d["index"], d["embedding"]) for d in out["data"]] == [
        (0, [0.5, -1.0]),
        (1, [0.25, 2.0]),
    ]
    encoded = conv.convert_embeddings_response(answer, "emb", 2, "base64")["data"][1]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (0.25, 2.0)
    with pytest.raises(ValueError):
        conv.convert_embeddings_response(answer, "emb", 3)
    with pytest.raises(ConversionError):
        conv.convert_embeddings_request({"input": [[1, 2, 3]]}, "m")


def test_error_message_reads_google_errors() -> None:
    body = orjson.dumps(
        {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    )
    assert conv.error_message(429, body) == ("RESOURCE_EXHAUSTED", "quota")
    assert conv.error_message(429, b"[" + body + b"]") == ("RESOURCE_EXHAUSTED", "quota")
    assert conv.error_message(500, b"oops") == ("http_500", "oops")
