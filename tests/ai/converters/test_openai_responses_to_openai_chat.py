"""OpenAI Responses clients served through chat completions (the front side)."""

from __future__ import annotations

from typing import Any

import pytest

from quiver.ai.converters import openai_responses_to_openai_chat as front
from quiver.ai.converters.chat import ConversionError

TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    "strict": True,
}


def test_request_with_instructions_history_and_every_input_item() -> None:
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"}]
    chat = front.convert_request(
        {
            "model": "gpt-fast",
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "No emoji."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Weather here?"},
                        {
                            "type": "input_image",
                            "image_url": "data:image/png;base64,iVBO",
                            "detail": "low",
                        },
                    ],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking."}],
                },
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"location":"Paris"}',
                },
                {
                    "type": "function_call",
                    "call_id": "call_2",
                    "name": "get_weather",
                    "arguments": '{"location":"Rome"}',
                },
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "call_2",
                    "output": [{"type": "input_text", "text": "rain"}],
                },
            ],
            "tools": [TOOL],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "max_output_tokens": 300,
            "temperature": 0.4,
            "parallel_tool_calls": True,
            "reasoning": {"effort": "low"},
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "out",
                    "schema": {"type": "object"},
                    "strict": True,
                }
            },
            "stream": True,
            "store": True,
            "metadata": {"k": "v"},
        },
        history,
    )
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        *history,
        {"role": "system", "content": "No emoji."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBO", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
    ]
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }
    assert (chat["max_tokens"], chat["temperature"], chat["reasoning_effort"]) == (300, 0.4, "low")
    assert chat["stream_options"] == {"include_usage": True}
    assert "store" not in chat and "metadata" not in chat


def test_function_calls_after_a_tool_message_start_a_new_assistant_turn() -> None:
    chat = front.convert_request(
        {
            "input": [
                {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "a", "output": "1"},
                {"type": "function_call", "call_id": "b", "name": "f", "arguments": "{}"},
            ]
        },
        [],
    )
    assert [(m["role"], len(m.get("tool_calls") or ())) for m in chat["messages"]] == [
        ("assistant", 1),
        ("tool", 0),
        ("assistant", 1),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"input": []},
        {"input": [{"type": "item_reference", "id": "x"}]},
        {"input": "x", "tools": [{"type": "web_search"}]},
        {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]},
        {"input": 5},
    ],
)
def test_untranslatable_requests_raise(body: dict[str, Any]) -> None:
    with pytest.raises(ConversionError):
        front.convert_request(body, [])


COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-fast",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 40,
        "completion_tokens": 10,
        "total_tokens": 50,
        "prompt_tokens_details": {"cached_tokens": 8},
    },
}


def test_response_object_has_message_and_function_call_items_and_usage() -> None:
    body = {"model": "gpt-fast", "input": "x", "tools": [TOOL], "instructions": "Be brief."}
    response = front.convert_response(COMPLETION, body, "resp_abc")
    assert response["id"] == "resp_abc" and response["object"] == "response"
    assert response["status"] == "completed" and response["incomplete_details"] is None
    assert response["created_at"] == 1700000000 and response["model"] == "gpt-fast"
    assert response["instructions"] == "Be brief." and response["tools"] == [TOOL]
    assert response["output"] == [
        {
            "id": "msg_abc",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}
            ],
        },
        {
            "id": "fc_abc_0",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_a",
            "name": "get_weather",
            "arguments": '{"location":"Paris"}',
        },
    ]
    assert response["usage"] == {
        "input_tokens": 40,
        "input_tokens_details": {"cached_tokens": 8},
        "output_tokens": 10,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 50,
    }


def test_length_cut_response_is_incomplete() -> None:
    completion = {
        **COMPLETION,
        "choices": [{"message": {"content": "Part"}, "finish_reason": "length"}],
    }
    response = front.convert_response(completion, {"input": "x"}, "resp_1")
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def test_messages_of_a_stored_response_continue_the_conversation() -> None:
    request = {"input": "Weather in Paris?", "instructions": "not carried over"}
    response = front.convert_response(COMPLETION, request, "resp_abc")
    history = front.messages_of(request, response)
    assert history == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                }
            ],
        },
    ]
    follow_up = {
        "input": [{"type": "function_call_output", "call_id": "call_a", "output": "sunny"}],
        "previous_response_id": "resp_abc",
    }
    chat = front.convert_request(follow_up, history)
    assert chat["messages"][-1] == {"role": "tool", "tool_call_id": "call_a", "content": "sunny"}
    assert chat["messages"][-2]["tool_calls"][0]["id"] == "call_a"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": None,
    }


def _call(index: int, arguments: str, call_id: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        call.update(id=call_id, type="function")
        call["function"]["name"] = "get_weather"
    return _chunk({"tool_calls": [call]})


USAGE_CHUNK = {
    "id": "c",
    "object": "chat.completion.chunk",
    "choices": [],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
}


def _run(
    chunks: list[dict[str, Any]], body: dict[str, Any] | None = None
) -> tuple[front.StreamConverter, list[tuple[str, dict[str, Any]]]]:
    converter = front.StreamConverter("gpt-fast", "resp_s", body or {"input": "x"})
    events = [e for c in chunks for e in converter.feed(c)] + converter.finish()
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert all(data["type"] == name for name, data in events)
    _check_items_are_open_for_their_deltas(events)
    return converter, events


def _check_items_are_open_for_their_deltas(events: list[tuple[str, dict[str, Any]]]) -> None:
    open_items: dict[str, int] = {}
    for name, data in events:
        if name == "response.output_item.added":
            open_items[data["item"]["id"]] = data["output_index"]
        elif name == "response.output_item.done":
            assert open_items.pop(data["item"]["id"]) == data["output_index"]
        elif "item_id" in data:
            assert open_items.get(data["item_id"]) == data["output_index"], (name, data)
    assert not open_items


def test_text_stream_has_the_full_event_sequence() -> None:
    converter, events = _run(
        [
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"content": "Hel"}),
            _chunk({"content": "lo"}),
            _chunk({}, "stop"),
            USAGE_CHUNK,
        ]
    )
    assert [name for name, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[0][1]["response"]["status"] == "in_progress"
    assert events[6][1]["text"] == "Hello"
    final = events[-1][1]["response"]
    assert final["status"] == "completed"
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"]["total_tokens"] == 8
    assert converter.response == final


def test_tool_only_stream_opens_no_message_item() -> None:
    _, events = _run(
        [
            _chunk({"role": "assistant", "content": ""}),
            _call(0, "", "call_1"),
            _call(0, '{"location":'),
            _call(0, '"Paris"}'),
            _chunk({}, "tool_calls"),
            USAGE_CHUNK,
        ]
    )
    assert [name for name, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    done = events[5][1]
    assert done["arguments"] == '{"location":"Paris"}'
    item = events[-1][1]["response"]["output"][0]
    assert (item["type"], item["call_id"], item["name"], item["status"]) == (
        "function_call",
        "call_1",
        "get_weather",
        "completed",
    )


def test_interleaved_parallel_calls_and_text_after_calls_open_new_items() -> None:
    _, events = _run(
        [
            _chunk({"content": "First"}),
            _call(0, '{"location":', "call_1"),
            _call(1, '{"location":', "call_2"),
            _call(0, '"Paris"}'),
            _call(1, '"Rome"}'),
            _chunk({"content": "After"}),
            _chunk({}, "stop"),
        ]
    )
    output = events[-1][1]["response"]["output"]
    assert [(item["type"], item.get("arguments")) for item in output] == [
        ("message", None),
        ("function_call", '{"location":"Paris"}'),
        ("function_call", '{"location":"Rome"}'),
        ("message", None),
    ]
    assert output[0]["id"] != output[3]["id"]
    assert output[3]["content"][0]["text"] == "After"
    added = [data["output_index"] for name, data in events if name == "response.output_item.added"]
    assert added == [0, 1, 2, 3]


def test_length_cut_stream_ends_with_response_incomplete() -> None:
    _, events = _run([_chunk({"content": "Part"}), _chunk({}, "length")])
    name, data = events[-1]
    assert name == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
