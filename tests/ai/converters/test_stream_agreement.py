"""A streamed answer, cut into chunks anywhere, converts to what the whole answer converts to."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from quiver.ai.converters import anthropic_messages_to_openai_chat as messages_front
from quiver.ai.converters import openai_responses_to_openai_chat as responses_front

TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
ARGUMENTS = st.dictionaries(
    st.text("abcxyz", min_size=1, max_size=5), st.integers(-(2**53), 2**53) | TEXT, max_size=3
)


def _pieces(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=4))))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in pairwise(bounds) if b > a]


@st.composite
def answers(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A chat completion and a chunk sequence that streams the same answer."""
    text = draw(TEXT)
    calls: list[dict[str, Any]] = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": f"tool{i}", "arguments": orjson.dumps(args).decode()},
        }
        for i, args in enumerate(draw(st.lists(ARGUMENTS, max_size=3)))
    ]
    finish = "tool_calls" if calls else draw(st.sampled_from(["stop", "length"]))
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [choice],
            "usage": None,
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": piece}) for piece in _pieces(draw, text)]
    for index, call in enumerate(calls):
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        for piece in _pieces(draw, call["function"]["arguments"]):
            chunks.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    chunks.append(chunk({}, finish))
    chunks.append(
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}
    )
    return completion, chunks


@settings(max_examples=150, deadline=None)
@given(answers())
def test_responses_stream_ends_with_the_non_streamed_response(answer: Any) -> None:
    completion, chunks = answer
    body = {"model": "m", "input": "x"}
    whole = responses_front.convert_response(completion, body, "resp_1")
    converter = responses_front.StreamConverter("m", "resp_1", body)
    events = [e for c in chunks for e in converter.feed(c)] + converter.finish()
    final = events[-1][1]["response"]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    for key in ("status", "incomplete_details", "output", "usage"):
        assert final[key] == whole[key], key


@settings(max_examples=150, deadline=None)
@given(answers())
def test_messages_stream_rebuilds_the_non_streamed_message(answer: Any) -> None:
    completion, chunks = answer
    whole = messages_front.convert_response(completion, "m")
    converter = messages_front.StreamConverter("m", "msg_1")
    events = [e for c in chunks for e in converter.feed(c)] + converter.finish()
    blocks: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    for name, data in events:
        if name == "content_block_start":
            blocks.append(dict(data["content_block"]))
            assert data["index"] == len(blocks) - 1
        elif name == "content_block_delta":
            delta = data["delta"]
            if delta["type"] == "text_delta":
                blocks[data["index"]]["text"] += delta["text"]
            else:
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
    for index, raw in partial.items():
        blocks[index]["input"] = orjson.loads(raw)
    assert blocks == whole["content"]
    assert events[-2][1]["delta"]["stop_reason"] == whole["stop_reason"]
    assert events[-2][1]["usage"] == whole["usage"]
