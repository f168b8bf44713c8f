"""Chat completions <-> Bedrock Converse (the provider side)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from quiver.ai.converters import openai_chat_to_bedrock_converse as conv
from quiver.ai.converters.chat import ConversionError, StreamError
from tests.ai.converters.accumulate import accumulate

PARAMS = {"type": "object", "properties": {"location": {"type": "string"}}}
TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Weather", "parameters": PARAMS},
}


def test_request_maps_system_blocks_images_documents_and_inference_config() -> None:
    body = conv.convert_request(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Read these"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/webp;base64,UklGRg=="},
                        },
                        {
                            "type": "file",
                            "file": {
                                "file_data": "data:application/pdf;base64,JVBERi0=",
                                "filename": "Q3 report (final).pdf",
                            },
                        },
                    ],
                },
                {"role": "user", "content": "please"},
            ],
            "max_completion_tokens": 50,
            "temperature": 0.3,
            "top_p": 0.8,
            "stop": ["END"],
        },
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
    )
    assert body == {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"text": "Read these"},
                    {"image": {"format": "webp", "source": {"bytes": "UklGRg=="}}},
                    {
                        "document": {
                            "format": "pdf",
                            "name": "Q3 report (final)",
                            "source": {"bytes": "JVBERi0="},
                        }
                    },
                    {"text": "please"},
                ],
            }
        ],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {
            "maxTokens": 50,
            "temperature": 0.3,
            "topP": 0.8,
            "stopSequences": ["END"],
        },
    }


def test_image_links_are_refused_with_a_clear_message() -> None:
    chat = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
            }
        ]
    }
    with pytest.raises(ConversionError, match="data: URLs"):
        conv.convert_request(chat, "m")


def test_parallel_tool_use_and_results_and_tool_config() -> None:
    body = conv.convert_request(
        {
            "messages": [
                {"role": "user", "content": "Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": "Checking",
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location":"Paris"}',
                            },
                        },
                        {
                            "id": "t2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"location":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "sunny"},
                {"role": "tool", "tool_call_id": "t2", "content": ""},
            ],
            "tools": [TOOL],
            "tool_choice": "required",
        },
        "m",
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"text": "Checking"},
            {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"location": "Paris"}}},
            {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {"location": "Rome"}}},
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}},
            {"toolResult": {"toolUseId": "t2", "content": [{"text": "(empty)"}]}},
        ],
    }
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather",
                    "inputSchema": {"json": PARAMS},
                }
            }
        ],
        "toolChoice": {"any": {}},
    }


def test_tool_choice_function_none_and_history_only_tools() -> None:
    base: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "tools": [TOOL]}
    named = conv.convert_request(
        {**base, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}, "m"
    )
    assert named["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}
    assert "toolConfig" not in conv.convert_request({**base, "tool_choice": "none"}, "m")
    history = conv.convert_request(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "t",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "t", "content": "ok"},
            ]
        },
        "m",
    )
    assert history["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "f",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            }
        ]
    }


def test_response_format_becomes_a_system_instruction() -> None:
    chat = {
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "x"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "o", "schema": {"type": "object"}},
        },
    }
    (system,) = conv.convert_request(chat, "m")["system"]
    assert system["text"].startswith("S\n\n") and '{"type":"object"}' in system["text"]


def test_response_text_tool_use_stop_reason_and_usage() -> None:
    out = conv.convert_response(
        {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [
                        {"text": "Let me look."},
                        {
                            "toolUse": {
                                "toolUseId": "tooluse_1",
                                "name": "get_weather",
                                "input": {"location": "Paris"},
                            }
                        },
                    ],
                }
            },
            "stopReason": "tool_use",
            "usage": {
                "inputTokens": 30,
                "outputTokens": 12,
                "totalTokens": 42,
                "cacheReadInputTokens": 6,
            },
            "metrics": {"latencyMs": 300},
        },
        "nova",
    )
    choice = out["choices"][0]
    assert out["model"] == "nova" and out["id"].startswith("chatcmpl-")
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me look."
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"location":"Paris"}',
    }
    assert out["usage"] == {
        "prompt_tokens": 36,
        "completion_tokens": 12,
        "total_tokens": 48,
        "prompt_tokens_details": {"cached_tokens": 6},
    }


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reasons_map(reason: str, finish: str) -> None:
    body = {"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": reason}
    assert conv.convert_response(body, "m")["choices"][0]["finish_reason"] == finish


def _stream() -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = [
        ("messageStart", {"role": "assistant", "p": "abc"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "One"}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " moment"}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
    ]
    for index, (call_id, city) in enumerate((("tu_a", "Paris"), ("tu_b", "Rome")), start=1):
        start = {"toolUse": {"toolUseId": call_id, "name": "get_weather"}}
        events.append(("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        for piece in ('{"location"', ': "', city, '"}'):
            delta = {"toolUse": {"input": piece}}
            events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": delta}))
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
    events.append(("messageStop", {"stopReason": "tool_use"}))
    usage = {"inputTokens": 11, "outputTokens": 22, "totalTokens": 33}
    events.append(("metadata", {"usage": usage, "metrics": {"latencyMs": 5}}))
    return events


def test_stream_rebuilds_text_and_fragmented_parallel_calls() -> None:
    converter = conv.StreamConverter("nova", "chatcmpl-b", 5)
    chunks = [c for e in _stream() for c in converter.feed(e)] + converter.finish()
    result = accumulate(chunks)
    assert result["content"] == "One moment"
    assert result["tool_calls"] == [
        {"id": "tu_a", "name": "get_weather", "arguments": '{"location": "Paris"}'},
        {"id": "tu_b", "name": "get_weather", "arguments": '{"location": "Rome"}'},
    ]
    assert result["finish_reason"] == "tool_calls"
    assert result["usage"] == {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33}


def test_stream_exception_message_raises() -> None:
    converter = conv.StreamConverter("m", "c", 1)
    with pytest.raises(StreamError) as caught:
        converter.feed(("throttlingException", {"message": "Too many requests"}))
    assert (caught.value.kind, caught.value.message) == ("throttlingException", "Too many requests")


def test_titan_embeddings_one_body_per_input_and_merged_answer() -> None:
    bodies = conv.embeddings_requests(
        {"input": ["a", "b"], "dimensions": 256}, "amazon.titan-embed-text-v2:0"
    )
    assert bodies == [{"inputText": "a", "dimensions": 256}, {"inputText": "b", "dimensions": 256}]
    assert conv.convert_embeddings_request({"input": "solo"}, "m") == {"inputText": "solo"}
    with pytest.raises(ConversionError):
        conv.convert_embeddings_request({"input": ["a", "b"]}, "m")
    with pytest.raises(ConversionError):
        conv.embeddings_requests({"input": "a", "dimensions": 100}, "m")
    answers = [
        {"embedding": [0.1], "inputTextTokenCount": 3},
        {"embedding": [0.2], "inputTextTokenCount": 4},
    ]
    merged = conv.merge_embeddings_responses(answers, "titan")
    assert [d["embedding"] for d in merged["data"]] == [[0.1], [0.2]]
    assert merged["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    single = conv.convert_embeddings_response(answers[0], "titan", 1)
    assert single["data"] == [{"object": "embedding", "index": 0, "embedding": [0.1]}]


def test_error_message_names_the_exception() -> None:
    assert conv.error_message(429, orjson.dumps({"message": "Too many tokens"})) == (
        "ThrottlingException",
        "Too many tokens",
    )
    typed = orjson.dumps({"__type": "com.amazon#ValidationException", "Message": "bad"})
    assert conv.error_message(400, typed) == ("ValidationException", "bad")
    assert conv.error_message(502, b"") == ("http_502", "")


def test_gemini_thought_signatures_are_left_out_of_bedrock_tool_ids() -> None:
    call = {
        "id": "call_1_sig_" + "x" * 300,
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    body = conv.convert_request(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": "ok"},
            ]
        },
        "m",
    )
    assert body["messages"][1]["content"][0]["toolUse"]["toolUseId"] == "call_1"
    assert body["messages"][2]["content"][0]["toolResult"]["toolUseId"] == "call_1"
