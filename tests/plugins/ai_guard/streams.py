"""A fake provider that streams a scripted answer in the shape of each API, and a
proxy with ``ai-prompt-guard`` in front of it, for the official SDKs.

Each stream is the events a provider sends (roles, pings, usage, the end), with the
answer's text in the deltas given; events go out one per chunk.  A ``gate`` stops
the provider before a given event until the test opens it, so a test can tell an
event the client got at once from one held back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.proxy import RunningProxy, make_config
from tests.support.upstream import Conn, Upstream

USAGE_CHAT = {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}


def _data(document: Any, event: str | None = None) -> bytes:
    line = b"data: " + json.dumps(document).encode() + b"\n\n"
    return (b"event: " + event.encode() + b"\n" + line) if event else line


def chat_events(deltas: list[str]) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _data({**head, "choices": [choice]})

    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": piece}) for piece in deltas),
        chunk({}, "stop"),
        _data({**head, "choices": [], "usage": USAGE_CHAT}),
        b"data: [DONE]\n\n",
    ]


def _text_delta(piece: str) -> dict[str, Any]:
    delta = {"type": "text_delta", "text": piece}
    return {"type": "content_block_delta", "index": 0, "delta": delta}


def messages_events(deltas: list[str]) -> list[bytes]:
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    start = {"type": "text", "text": ""}
    block = {"type": "content_block_start", "index": 0, "content_block": start}
    return [
        _data({"type": "message_start", "message": message}, "message_start"),
        _data(block, "content_block_start"),
        _data({"type": "ping"}, "ping"),
        *(_data(_text_delta(piece), "content_block_delta") for piece in deltas),
        _data({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        _data(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 7},
            },
            "message_delta",
        ),
        _data({"type": "message_stop"}, "message_stop"),
    ]


def responses_events(deltas: list[str]) -> list[bytes]:
    text = "".join(deltas)
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant"}
    response = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "m",
        "status": "in_progress",
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    done = {
        **response,
        "status": "completed",
        "output": [{**item, "content": [part]}],
        "usage": {
            "input_tokens": 3,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 7,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 10,
        },
    }
    place = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response}),
        ("response.output_item.added", {"output_index": 0, "item": {**item, "content": []}}),
        ("response.content_part.added", {**place, "part": {**part, "text": ""}}),
        *(("response.output_text.delta", {**place, "delta": t, "logprobs": []}) for t in deltas),
        ("response.output_text.done", {**place, "text": text, "logprobs": []}),
        ("response.content_part.done", {**place, "part": part}),
        ("response.output_item.done", {"output_index": 0, "item": {**item, "content": [part]}}),
        ("response.completed", {"response": done}),
    ]
    return [
        _data({"type": kind, "sequence_number": number, **body}, kind)
        for number, (kind, body) in enumerate(events)
    ]


FRONTS: dict[str, Callable[[list[str]], list[bytes]]] = {
    "/v1/chat/completions": chat_events,
    "/v1/messages": messages_events,
    "/v1/responses": responses_events,
}


@dataclass
class Script:
    """What the provider streams: ``events(path)``; with ``gate_at``, it waits for
    ``gate`` before that event (``gate_opened`` says whether it came in time)."""

    deltas: list[str]
    extra: Callable[[list[bytes]], list[bytes]] = lambda events: events
    gate_at: int | None = None
    gate: threading.Event = field(default_factory=threading.Event)
    gate_opened: list[bool] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)

    def events(self, path: str) -> list[bytes]:
        return self.extra(FRONTS[path](self.deltas))

    def serve(self, conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            events = self.events(request.path)
            self.sent = events
            conn.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for number, event in enumerate(events):
                if number == self.gate_at:
                    self.gate_opened.append(self.gate.wait(5))
                conn.send(b"%x\r\n%s\r\n" % (len(event), event))
            conn.send(b"0\r\n\r\n")


@contextmanager
def streaming(script: Script, plugins: dict[str, Any], **extra: Any) -> Iterator[RunningProxy]:
    """The scripted provider and a proxy with ``plugins`` on its one route (``extra``
    as for ``make_config``)."""
    with Upstream(script.serve) as node:
        routes = [{"name": "ai", "paths": ["/"], "target": "provider", "plugins": plugins}]
        with RunningProxy(make_config({"provider": node.url}, routes, **extra)) as proxy:
            yield proxy
