"""Provider bytes -> transport -> provider converter -> front converter, as the core chains them.

These are the bridges where translation bugs live (a tool-only answer reaching a
Responses client, tool arguments cut anywhere): every stream here is also cut at every
byte boundary on its way in.
"""

from __future__ import annotations

from typing import Any

import orjson

from quiver.ai.converters import anthropic_messages_to_openai_chat as messages_front
from quiver.ai.converters import openai_chat_to_anthropic_messages as anthropic
from quiver.ai.converters import openai_chat_to_bedrock_converse as bedrock
from quiver.ai.converters import openai_chat_to_gemini as gemini
from quiver.ai.converters import openai_responses_to_openai_chat as responses_front
from quiver.ai.transports.eventstream import EventStreamDecoder, encode
from quiver.ai.transports.sse import SSEParser, event


def _anthropic_tool_only_sse() -> bytes:
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {"id": "msg_1", "usage": {"input_tokens": 9, "output_tokens": 1}},
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_9",
                "name": "get_weather",
                "input": {},
            },
        },
    ]
    for piece in ('{"loc', 'ation": "Pa', 'ris"}'):
        events.append(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }
        )
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 15},
        },
        {"type": "message_stop"},
    ]
    return b"".join(event(orjson.dumps(e), e["type"].encode()) for e in events)


def _anthropic_to_responses(pieces: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    parser = SSEParser()
    provider = anthropic.StreamConverter("claude-fast", "chatcmpl-1", 1)
    front = responses_front.StreamConverter("claude-fast", "resp_1", {"input": "x"})
    out: list[tuple[str, dict[str, Any]]] = []
    for piece in pieces:
        for sse in parser.feed(piece):
            for chunk in provider.feed((sse.event, orjson.loads(sse.data))):
                out.extend(front.feed(chunk))
    for chunk in provider.finish():
        out.extend(front.feed(chunk))
    return out + front.finish()


def test_tool_only_anthropic_answer_reaches_a_responses_client_whole_at_any_cut() -> None:
    wire = _anthropic_tool_only_sse()
    expected = _anthropic_to_responses([wire])
    names = [name for name, _ in expected]
    assert "response.content_part.added" not in names  # no message item was opened
    assert names[-1] == "response.completed"
    (item,) = expected[-1][1]["response"]["output"]
    assert (item["type"], item["call_id"], item["arguments"]) == (
        "function_call",
        "toolu_9",
        '{"location": "Paris"}',
    )
    assert expected[-1][1]["response"]["usage"]["input_tokens"] == 9
    assert expected[-1][1]["response"]["usage"]["output_tokens"] == 15
    for cut in range(1, len(wire)):
        got = _anthropic_to_responses([wire[:cut], wire[cut:]])
        assert [(n, d.get("delta"), d.get("arguments")) for n, d in got] == [
            (n, d.get("delta"), d.get("arguments")) for n, d in expected
        ], cut


def _bedrock_wire() -> bytes:
    frames: list[tuple[str, dict[str, Any]]] = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "On it."}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        (
            "contentBlockStart",
            {
                "contentBlockIndex": 1,
                "start": {"toolUse": {"toolUseId": "tu_1", "name": "get_weather"}},
            },
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"location":'}}},
        ),
        (
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"Paris"}'}}},
        ),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("messageStop", {"stopReason": "tool_use"}),
        ("metadata", {"usage": {"inputTokens": 4, "outputTokens": 6, "totalTokens": 10}}),
    ]
    headers = {":message-type": "event", ":content-type": "application/json"}
    return b"".join(
        encode({**headers, ":event-type": kind}, orjson.dumps({**payload, "p": "abcdefgh"}))
        for kind, payload in frames
    )


def _bedrock_to_messages(pieces: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    decoder = EventStreamDecoder()
    provider = bedrock.StreamConverter("nova", "chatcmpl-2", 1)
    front = messages_front.StreamConverter("nova", "msg_2")
    out: list[tuple[str, dict[str, Any]]] = []
    for piece in pieces:
        for message in decoder.feed(piece):
            kind = str(message.headers[":event-type"])
            for chunk in provider.feed((kind, orjson.loads(message.payload))):
                out.extend(front.feed(chunk))
    for chunk in provider.finish():
        out.extend(front.feed(chunk))
    return out + front.finish()


def test_bedrock_stream_reaches_an_anthropic_client_at_any_cut() -> None:
    wire = _bedrock_wire()
    expected = _bedrock_to_messages([wire])
    assert [name for name, _ in expected] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert expected[4][1]["content_block"] == {
        "type": "tool_use",
        "id": "tu_1",
        "name": "get_weather",
        "input": {},
    }
    arguments = "".join(
        d["delta"].get("partial_json", "") for n, d in expected if n == "content_block_delta"
    )
    assert orjson.loads(arguments) == {"location": "Paris"}
    assert expected[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert expected[-2][1]["usage"]["input_tokens"] == 4
    assert expected[-2][1]["usage"]["output_tokens"] == 6
    for cut in range(1, len(wire)):
        assert _bedrock_to_messages([wire[:cut], wire[cut:]]) == expected, cut


def test_gemini_parallel_calls_reach_a_responses_client_as_two_items() -> None:
    data = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}},
                        {"functionCall": {"name": "get_weather", "args": {"location": "Rome"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4},
    }
    wire = event(orjson.dumps(data))
    provider = gemini.StreamConverter("gem", "chatcmpl-3", 1)
    front = responses_front.StreamConverter("gem", "resp_3", {"input": "x"})
    events: list[tuple[str, dict[str, Any]]] = []
    for sse in SSEParser().feed(wire):
        for chunk in provider.feed(orjson.loads(sse.data)):
            events.extend(front.feed(chunk))
    for chunk in provider.finish():
        events.extend(front.feed(chunk))
    events += front.finish()
    output = events[-1][1]["response"]["output"]
    assert [(o["type"], o["arguments"]) for o in output] == [
        ("function_call", '{"location":"Paris"}'),
        ("function_call", '{"location":"Rome"}'),
    ]
    assert output[0]["call_id"] != output[1]["call_id"]
    # the follow-up turn carries both results back in one Gemini turn
    history = responses_front.messages_of({"input": "x"}, events[-1][1]["response"])
    follow_up = {
        "input": [
            {"type": "function_call_output", "call_id": o["call_id"], "output": "sunny"}
            for o in output
        ]
    }
    body = gemini.convert_request(responses_front.convert_request(follow_up, history), "gem")
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert len(body["contents"][1]["parts"]) == 2 and len(body["contents"][2]["parts"]) == 2
