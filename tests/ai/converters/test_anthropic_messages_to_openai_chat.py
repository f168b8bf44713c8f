"""Anthropic Messages clients served through chat completions (the front side)."""

from __future__ import annotations

from typing import Any

import pytest

from quiver.ai.converters import anthropic_messages_to_openai_chat as front
from quiver.ai.converters import openai_chat_to_anthropic_messages as provider
from quiver.ai.converters.chat import ConversionError

TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}
CONVERSATION: dict[str, Any] = {
    "model": "claude-fast",
    "max_tokens": 256,
    "system": [{"type": "text", "text": "Be brief."}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "...", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"location": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "rain"}],
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ],
    "tools": [TOOL],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "temperature": 0.5,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u1"},
}


def test_request_becomes_chat_with_tool_messages_before_the_user_text() -> None:
    chat = front.convert_request(CONVERSATION)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "rain"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": TOOL["input_schema"],
            },
        }
    ]
    assert chat["tool_choice"] == "required" and chat["parallel_tool_calls"] is False
    assert (chat["max_tokens"], chat["temperature"], chat["stop"], chat["user"]) == (
        256,
        0.5,
        ["END"],
        "u1",
    )
    assert "stream" not in chat


def test_request_survives_a_round_trip_to_the_anthropic_provider_format() -> None:
    body = provider.convert_request(front.convert_request(CONVERSATION), "claude-sonnet-4-5")
    expected_messages = [
        CONVERSATION["messages"][0],
        {"role": "assistant", "content": CONVERSATION["messages"][1]["content"][1:]},  # no thinking
        CONVERSATION["messages"][2],
    ]
    # a tool result of text blocks comes back as the same text in a string
    results = expected_messages[2]["content"]
    expected_messages[2] = {
        "role": "user",
        "content": [*results[:1], {**results[1], "content": "rain"}, *results[2:]],
    }
    assert body["messages"] == expected_messages
    assert body["system"] == "Be brief."
    assert body["tools"] == [TOOL]
    assert body["tool_choice"] == CONVERSATION["tool_choice"]
    assert body["stop_sequences"] == ["END"] and body["max_tokens"] == 256


def test_streaming_structured_output_and_tool_choice_variants() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    chat = front.convert_request(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
            "output_config": {"format": {"type": "json_schema", "schema": schema}},
            "tools": [TOOL],
            "tool_choice": {"type": "tool", "name": "get_weather"},
        }
    )
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_count_tokens_request_needs_no_max_tokens_and_never_streams() -> None:
    chat = front.count_tokens_request(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "system", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "server_tool_use"}]}]},
        {
            "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        },
    ],
)
def test_untranslatable_requests_raise(body: dict[str, Any]) -> None:
    with pytest.raises(ConversionError):
        front.convert_request(body)


def test_response_becomes_a_message_with_blocks_stop_reason_and_cache_usage() -> None:
    message = front.convert_response(
        {
            "id": "chatcmpl-42",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Sure.",
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {
                                    "name": "get_weather",
                                    "arguments": '{"location":"Paris"}',
                                },
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {
                "prompt_tokens": 50,
                "completion_tokens": 9,
                "total_tokens": 59,
                "prompt_tokens_details": {"cached_tokens": 20},
            },
        },
        "claude-fast",
    )
    assert message == {
        "id": "msg_42",
        "type": "message",
        "role": "assistant",
        "model": "claude-fast",
        "content": [
            {"type": "text", "text": "Sure."},
            {
                "type": "tool_use",
                "id": "call_1",
                "name": "get_weather",
                "input": {"location": "Paris"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 30,
            "output_tokens": 9,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 20,
        },
    }


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_map_to_stop_reasons(finish: str | None, stop: str) -> None:
    completion = {"id": "c", "choices": [{"message": {"content": "x"}, "finish_reason": finish}]}
    assert front.convert_response(completion, "m")["stop_reason"] == stop


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": None,
    }


def _call(
    index: int, arguments: str, call_id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        call.update(id=call_id, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


def test_stream_produces_the_exact_anthropic_event_sequence() -> None:
    converter = front.StreamConverter("claude-fast", "msg_1")
    chunks = [
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Let me "}),
        _chunk({"content": "check."}),
        _chunk(_call(0, "", "call_a", "get_weather")),
        _chunk(_call(0, '{"location":')),
        _chunk(_call(0, '"Paris"}')),
        _chunk(_call(1, '{"location":"Rome"}', "call_b", "get_weather")),
        _chunk({}, "tool_calls"),
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        },
    ]
    events = [e for c in chunks for e in converter.feed(c)] + converter.finish()
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    start = events[0][1]["message"]
    assert (start["id"], start["model"], start["content"], start["role"]) == (
        "msg_1",
        "claude-fast",
        [],
        "assistant",
    )
    blocks: dict[int, dict[str, Any]] = {}
    for name, data in events:
        if name == "content_block_start":
            blocks[data["index"]] = {**data["content_block"], "json": ""}
        elif name == "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "text_delta":
                blocks[data["index"]]["text"] += delta["text"]
            else:
                blocks[data["index"]]["json"] += delta["partial_json"]
    assert blocks[0]["text"] == "Let me check."
    assert (blocks[1]["id"], blocks[1]["name"], blocks[1]["json"]) == (
        "call_a",
        "get_weather",
        '{"location":"Paris"}',
    )
    assert (blocks[2]["id"], blocks[2]["json"]) == ("call_b", '{"location":"Rome"}')
    message_delta = events[-2][1]
    assert message_delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert message_delta["usage"] == {
        "input_tokens": 12,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_empty_stream_still_starts_and_stops_the_message() -> None:
    converter = front.StreamConverter("m", "msg_x")
    assert [name for name, _ in converter.finish()] == [
        "message_start",
        "message_delta",
        "message_stop",
    ]
