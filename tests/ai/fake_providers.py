"""A small fake of OpenAI's and Anthropic's APIs, on a plain test server (tests that
need only these two; tests/ai/mock_providers speaks every provider's format).

One threaded server answers under ``/openai/v1/...`` (chat completions, streamed
or not, and embeddings) and ``/anthropic/v1/...`` (messages, streamed or not, and
count_tokens), checking each provider's key.  The last user message steers it:
``FAIL_429`` (with ``Retry-After: 0``), ``FAIL_500`` and ``FAIL_CONTEXT`` answer
the provider's error (except to a model whose name holds ``steady``); anything else
is answered ``Hello from <provider> <model>: <the start of the message>``.
Usage is the number of words of the messages and of the answer.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from tests.support.upstream import Conn, Request

OPENAI_KEY = "sk-openai-upstream"
ANTHROPIC_KEY = "sk-ant-upstream"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _last_user(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _words(messages: list[dict[str, Any]]) -> int:
    return sum(len(_text_of(m.get("content")).split()) for m in messages)


def _chunked(conn: Conn, status: int, content_type: str) -> None:
    conn.send(
        f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )


def _chunk(conn: Conn, data: bytes) -> None:
    conn.send(b"%x\r\n%s\r\n" % (len(data), data))


def fake_provider(conn: Conn) -> None:
    """The connection handler (``Upstream(fake_provider)``)."""
    while True:
        request = conn.read_request()
        if request is None:
            return
        path = request.path.partition("?")[0]
        if path.startswith("/openai/"):
            _openai(conn, request, path[len("/openai") :])
        elif path.startswith("/anthropic/"):
            _anthropic(conn, request, path[len("/anthropic") :])
        else:
            conn.respond(404, b"{}", [("Content-Type", "application/json")])


def _json(
    conn: Conn, status: int, document: object, headers: list[tuple[str, str]] | None = None
) -> None:
    fields = [("Content-Type", "application/json"), *(headers or [])]
    conn.respond(status, json.dumps(document).encode(), fields)


def _failure(text: str, shape: str) -> tuple[int, dict[str, Any], list[tuple[str, str]]] | None:
    def error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
        if shape == "anthropic":
            return {"type": "error", "error": {"type": kind, "message": message}}
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    if "FAIL_429" in text:
        return 429, error("rate_limit_error", "Rate limit reached"), [("Retry-After", "0")]
    if "FAIL_500" in text:
        return 500, error("api_error", "The server had an error"), []
    if "FAIL_CONTEXT" in text:
        if shape == "anthropic":
            message = "prompt is too long: 300000 tokens > 200000 maximum"
        else:
            message = "This model's maximum context length is 128000 tokens."
        kind = "invalid_request_error"
        return 400, error(kind, message, "context_length_exceeded"), []
    return None


def _openai(conn: Conn, request: Request, path: str) -> None:
    if request.header("authorization") != f"Bearer {OPENAI_KEY}":
        _json(
            conn,
            401,
            {
                "error": {
                    "message": "Incorrect API key",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        )
        return
    body = json.loads(request.body)
    model = body.get("model")
    if path == "/v1/embeddings":
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, _ in enumerate(inputs):
            vector = [0.5, -0.25, float(index)]
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack("<3f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        _json(conn, 200, {"object": "list", "data": data, "model": model, "usage": usage})
        return
    messages = body["messages"]
    text = _last_user(messages)
    failure = _failure(text, "openai") if "steady" not in model else None
    if failure is not None:
        _json(conn, *failure)
        return
    answer = f"Hello from openai {model}: {text[:40]}"
    prompt, completion = _words(messages), len(answer.split())
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    base = {"id": "chatcmpl-1", "created": 1700000000, "model": model, "system_fingerprint": None}
    if not body.get("stream"):
        message = {"role": "assistant", "content": answer, "refusal": None}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        _json(conn, 200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        return
    with_usage = (body.get("stream_options") or {}).get("include_usage") is True
    _chunked(conn, 200, "text/event-stream")
    pieces = [answer[i : i + 8] for i in range(0, len(answer), 8)]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": piece} for piece in pieces]
    for index, delta in enumerate(deltas):
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        chunk: dict[str, Any] = {**base, "object": "chat.completion.chunk", "choices": [choice]}
        if with_usage:
            chunk["usage"] = None
        _chunk(conn, b"data: " + json.dumps(chunk).encode() + b"\n\n")
        del index
    last: dict[str, Any] = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    chunk = {**base, "object": "chat.completion.chunk", "choices": [last]}
    if with_usage:
        chunk["usage"] = None
    _chunk(conn, b"data: " + json.dumps(chunk).encode() + b"\n\n")
    if with_usage:
        chunk = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        _chunk(conn, b"data: " + json.dumps(chunk).encode() + b"\n\n")
    _chunk(conn, b"data: [DONE]\n\n")
    conn.send(b"0\r\n\r\n")


def _anthropic(conn: Conn, request: Request, path: str) -> None:
    if request.header("x-api-key") != ANTHROPIC_KEY or request.header("authorization"):
        error = {"type": "authentication_error", "message": "invalid x-api-key"}
        _json(conn, 401, {"type": "error", "error": error})
        return
    body = json.loads(request.body)
    model = body.get("model")
    messages = body["messages"]
    if path == "/v1/messages/count_tokens":
        _json(conn, 200, {"input_tokens": _words(messages)})
        return
    text = _last_user(messages)
    failure = _failure(text, "anthropic") if "steady" not in model else None
    if failure is not None:
        _json(conn, *failure)
        return
    answer = f"Hello from anthropic {model}: {text[:40]}"
    prompt, completion = _words(messages), len(answer.split())
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": answer}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": completion},
    }
    if not body.get("stream"):
        _json(conn, 200, message)
        return
    _chunked(conn, 200, "text/event-stream")

    def event(name: str, data: dict[str, Any]) -> None:
        _chunk(conn, f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": prompt, "output_tokens": 1},
    }
    event("message_start", {"type": "message_start", "message": start})
    event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    for i in range(0, len(answer), 8):
        delta = {"type": "text_delta", "text": answer[i : i + 8]}
        event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    event("content_block_stop", {"type": "content_block_stop", "index": 0})
    event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": completion},
        },
    )
    event("message_stop", {"type": "message_stop"})
    conn.send(b"0\r\n\r\n")
