"""Chat completions <-> Anthropic Messages (the provider side)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from quiver.ai.converters import openai_chat_to_anthropic_messages as conv
from quiver.ai.converters.chat import ConversionError, StreamError
from tests.ai.converters.accumulate import accumulate

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}


def test_plain_request_gets_system_default_max_tokens_and_sampling() -> None:
    body = conv.convert_request(
        {
            "model": "claude",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
                {"role": "user", "content": "Hi"},
            ],
            "temperature": 1.7,
            "top_p": 0.9,
            "stop": "END",
            "user": "alice",
            "stream": True,
        },
        "claude-sonnet-4-5",
    )
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "system": "Be brief.\n\nNo emoji.",
        "temperature": 1.0,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "alice"},
        "stream": True,
    }


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    chat = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 10}
    assert conv.convert_request(chat, "m")["max_tokens"] == 10
    chat["max_completion_tokens"] = 20
    assert conv.convert_request(chat, "m")["max_tokens"] == 20


def test_images_become_base64_and_url_sources() -> None:
    body = conv.convert_request(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw=="},
                        },
                        {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
                    ],
                }
            ]
        },
        "m",
    )
    assert body["messages"][0]["content"][1:] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
    ]


def test_parallel_tool_calls_and_results_round_trip_into_blocks() -> None:
    body = conv.convert_request(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location":"Paris"}',
                            },
                        },
                        {
                            "id": "toolu_2",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"location":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
                {
                    "role": "tool",
                    "tool_call_id": "toolu_2",
                    "content": [{"type": "text", "text": "rain"}],
                },
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [WEATHER_TOOL],
            "tool_choice": "required",
            "parallel_tool_calls": False,
        },
        "m",
    )
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"] == [
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "get_weather",
            "input": {"location": "Paris"},
        },
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"location": "Rome"}},
    ]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rain"},
        {"type": "text", "text": "Thanks"},
    ]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather of a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        }
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", None),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice_maps(choice: Any, expected: Any) -> None:
    chat = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": choice,
    }
    assert conv.convert_request(chat, "m").get("tool_choice") == expected


def test_tools_used_in_history_but_not_declared_are_declared_and_not_callable() -> None:
    body = conv.convert_request(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "ok"},
            ]
        },
        "m",
    )
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]
    assert body["tool_choice"] == {"type": "none"}
    assert body["messages"][1]["content"][0]["input"] == {}


def test_json_schema_uses_structured_outputs_and_json_object_an_instruction() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    chat: dict[str, Any] = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": schema},
        },
    }
    body = conv.convert_request(chat, "m")
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    chat["response_format"] = {"type": "json_object"}
    body = conv.convert_request(chat, "m")
    assert "JSON object" in body["system"] and "output_config" not in body


@pytest.mark.parametrize(
    "chat",
    [
        {"messages": []},
        {"messages": [{"role": "wizard", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]},
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,xx"}}],
                }
            ]
        },
    ],
)
def test_untranslatable_requests_raise_conversion_error(chat: dict[str, Any]) -> None:
    with pytest.raises(ConversionError):
        conv.convert_request(chat, "m")


def test_response_with_text_tool_use_stop_reason_and_cache_usage() -> None:
    out = conv.convert_response(
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "s"},
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 10,
                "cache_creation_input_tokens": 5,
                "cache_read_input_tokens": 100,
                "output_tokens": 7,
            },
        },
        "claude-fast",
    )
    assert out["object"] == "chat.completion" and out["model"] == "claude-fast"
    assert out["id"] == "chatcmpl-01"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
        }
    ]
    assert out["usage"] == {
        "prompt_tokens": 115,
        "completion_tokens": 7,
        "total_tokens": 122,
        "prompt_tokens_details": {"cached_tokens": 100},
    }


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_stop_reasons_map(reason: str, finish: str) -> None:
    body = {"id": "msg_1", "content": [{"type": "text", "text": "x"}], "stop_reason": reason}
    assert conv.convert_response(body, "m")["choices"][0]["finish_reason"] == finish


def _events() -> list[tuple[str, dict[str, Any]]]:
    """A streamed answer with text and two tool calls whose arguments come in fragments."""
    usage = {"input_tokens": 20, "cache_read_input_tokens": 4, "output_tokens": 1}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "content": [], "usage": usage}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Checking"},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "..."}},
        {"type": "content_block_stop", "index": 0},
    ]
    for index, (call_id, city) in enumerate((("toolu_a", "Paris"), ("toolu_b", "Rome")), start=1):
        block = {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        for piece in ('{"loca', 'tion": "', city, '"}'):
            delta = {"type": "input_json_delta", "partial_json": piece}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
    events += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 30},
        },
        {"type": "message_stop"},
    ]
    return [(e["type"], e) for e in events]


def test_stream_rebuilds_text_and_parallel_fragmented_tool_calls() -> None:
    converter = conv.StreamConverter("claude-fast", "chatcmpl-x", 1700000000)
    chunks = [c for e in _events() for c in converter.feed(e)] + converter.finish()
    assert all(c["model"] == "claude-fast" and c["created"] == 1700000000 for c in chunks)
    result = accumulate(chunks)
    assert result["role"] == "assistant"
    assert result["content"] == "Checking..."
    assert result["tool_calls"] == [
        {"id": "toolu_a", "name": "get_weather", "arguments": '{"location": "Paris"}'},
        {"id": "toolu_b", "name": "get_weather", "arguments": '{"location": "Rome"}'},
    ]
    assert result["finish_reason"] == "tool_calls" == converter.finish_reason
    assert result["usage"] == {
        "prompt_tokens": 24,
        "completion_tokens": 30,
        "total_tokens": 54,
        "prompt_tokens_details": {"cached_tokens": 4},
    }
    assert converter.usage == result["usage"]


def test_stream_error_event_raises_with_its_type() -> None:
    converter = conv.StreamConverter("m", "c", 1)
    converter.feed(_events()[0])
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(StreamError) as caught:
        converter.feed(("error", error))
    assert (caught.value.kind, caught.value.message) == ("overloaded_error", "Overloaded")


def test_error_message_reads_anthropic_errors_and_anything_else() -> None:
    body = orjson.dumps(
        {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
    )
    assert conv.error_message(429, body) == ("rate_limit_error", "slow down")
    assert conv.error_message(502, b"<html>bad gateway</html>") == (
        "http_502",
        "<html>bad gateway</html>",
    )


def test_gemini_thought_signatures_are_left_out_of_anthropic_tool_ids() -> None:
    call = {
        "id": "call_1_sig_abc-_",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    body = conv.convert_request(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1_sig_abc-_", "content": "ok"},
            ]
        },
        "m",
    )
    assert body["messages"][1]["content"][0]["id"] == "call_1"
    assert body["messages"][2]["content"][0]["tool_use_id"] == "call_1"
