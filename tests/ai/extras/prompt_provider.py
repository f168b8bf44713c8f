"""A fake OpenAI chat provider for the prompt API's tests.

It records each request. The answer's text is the user message itself, unless
``response_format`` asks for JSON: then ``{"summary": <the user message>}``, or,
when the message holds ``BAD_JSON``, text that is not JSON, or with ``WRONG_SHAPE``
``{"other": 1}``. ``FAIL_429`` is answered 429 with ``Retry-After: 7``. Streams come
in pieces of 5 characters, then a usage chunk and ``[DONE]``.
"""

from __future__ import annotations

import json
from typing import Any

from tests.support.upstream import Conn

KEY = "sk-prompt-upstream"


def _answer(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if (body.get("response_format") or {}).get("type") != "json_schema":
        return str(text)
    if "BAD_JSON" in text:
        return "Sure! Here is a summary."
    if "WRONG_SHAPE" in text:
        return '{"other": 1}'
    return "```json\n" + json.dumps({"summary": text}) + "\n```"  # (some models fence it)


def prompt_provider(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        body = json.loads(request.body)
        if request.header("Authorization") != f"Bearer {KEY}":
            conn.respond(401, b'{"error": {"message": "bad key", "type": "auth"}}')
            continue
        if "FAIL_429" in body["messages"][-1]["content"]:
            error = {"error": {"message": "slow down", "type": "rate_limit_error", "code": None}}
            conn.respond(
                429,
                json.dumps(error).encode(),
                [("Content-Type", "application/json"), ("Retry-After", "7")],
            )
            continue
        text = _answer(body)
        usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        if not body.get("stream"):
            completion = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            conn.respond(
                200, json.dumps(completion).encode(), [("Content-Type", "application/json")]
            )
            continue
        conn.send(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunks: list[dict[str, Any]] = [
            {"choices": [{"index": 0, "delta": {"content": text[i : i + 5]}}]}
            for i in range(0, len(text), 5)
        ]
        chunks.append({"choices": [], "usage": usage})
        for chunk in chunks:
            event = b"data: " + json.dumps({"object": "chat.completion.chunk", **chunk}).encode()
            event += b"\n\n"
            conn.send(b"%x\r\n%s\r\n" % (len(event), event))
        done = b"data: [DONE]\n\n"
        conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
