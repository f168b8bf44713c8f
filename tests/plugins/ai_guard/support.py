"""A fake model provider that echoes, and a proxy with guardrails in front of it.

The provider answers ``POST .../chat/completions``, ``.../messages`` and
``.../responses`` in each format's shape; the answer's text is the request's
``X-Answer`` header when it has one, else ``echo: `` and the last user text it
received. ``"stream": true`` gets three SSE events, chunked (the last, ``[DONE]``, left out
with ``X-Stream-Unfinished``); ``X-Answer-Error`` gets a JSON error object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.support.proxy import Client, Response, RunningProxy, make_config
from tests.support.upstream import Conn, Request, Upstream


def _last_user_text(body: dict[str, Any]) -> str:
    if isinstance(body.get("input"), str):
        return str(body["input"])
    items = body.get("messages") or body.get("input") or []
    for item in reversed(items):
        if item.get("role") == "user":
            content = item["content"]
            if isinstance(content, str):
                return content
            return " ".join(part["text"] for part in content if "text" in part)
    return ""


def answer_for(path: str, text: str) -> dict[str, Any]:
    if path.endswith("/messages"):
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    if path.endswith("/responses"):
        return {
            "id": "resp_1",
            "object": "response",
            "status": "completed",
            "model": "m",
            "output": [
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
        }
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def provider(conn: Conn) -> None:
    """Answers every request like a model provider that echoes (see the module)."""
    while (request := conn.read_request()) is not None:
        try:
            body = json.loads(request.body) if request.body else {}
        except ValueError:
            body = {}  # (not a prompt: an upload)
        text = request.header("X-Answer") or "echo: " + _last_user_text(body)
        if request.header("X-Answer-Error"):
            error = {"error": {"message": "overloaded", "type": "server_error"}}
            conn.respond(200, json.dumps(error).encode(), [("Content-Type", "application/json")])
            continue
        if body.get("stream"):
            events = [
                b'data: {"choices":[{"delta":{"content":%s}}]}\n\n' % json.dumps(piece).encode()
                for piece in (text[:5], text[5:])
            ]
            if not request.header("X-Stream-Unfinished"):
                events.append(b"data: [DONE]\n\n")
            conn.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for event in events:
                conn.send(b"%x\r\n%s\r\n" % (len(event), event))
            conn.send(b"0\r\n\r\n")
            continue
        data = json.dumps(answer_for(request.path, text)).encode()
        conn.respond(200, data, [("Content-Type", "application/json")])


@contextmanager
def guarded(
    plugins: dict[str, Any], targets: dict[str, str] | None = None, **extra: Any
) -> Iterator[tuple[Upstream, Client]]:
    """A provider, a proxy with ``plugins`` on its one route (and more ``targets``),
    and a client of it."""
    with Upstream(provider) as node:
        routes = [{"name": "ai", "paths": ["/"], "target": "provider", "plugins": plugins}]
        config = make_config({"provider": node.url, **(targets or {})}, routes, **extra)
        with RunningProxy(config) as proxy, Client(proxy.port) as client:
            yield node, client


def post(client: Client, path: str, body: Any, **headers: str) -> Response:
    fields = {"Content-Type": "application/json", **headers}
    return client.request("POST", path, headers=fields, body=json.dumps(body).encode())


def chat(*messages: tuple[str, Any], **extra: Any) -> dict[str, Any]:
    """A chat-completions request body of (role, content) pairs."""
    return {
        "model": "m",
        "messages": [{"role": role, "content": content} for role, content in messages],
        **extra,
    }


def received(node: Upstream) -> Any:
    """The JSON body the provider received last."""
    request: Request = node.requests[-1]
    return json.loads(request.body)
