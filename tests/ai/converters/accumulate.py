"""Rebuild a chat completion from its stream chunks, the way the openai SDK does."""

from __future__ import annotations

from typing import Any


def accumulate(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """The message, finish reason and usage a client assembles from ``chunks``.

    Also checks the chunk invariants every client relies on: one id, ``usage: null`` on
    every chunk but the last, which has ``choices: []``.
    """
    assert chunks, "no chunks"
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1, ids
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    *body, last = chunks
    assert last["choices"] == [] and isinstance(last["usage"], dict), last
    assert all(c["usage"] is None and len(c["choices"]) == 1 for c in body)
    content = ""
    role = None
    finish = None
    calls: dict[int, dict[str, Any]] = {}
    for c in body:
        choice = c["choices"][0]
        delta = choice["delta"]
        role = delta.get("role", role)
        content += delta.get("content") or ""
        for call in delta.get("tool_calls") or ():
            slot = calls.setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
            if call.get("id"):
                assert slot["id"] is None, "a tool call id was sent twice"
                slot["id"] = call["id"]
            function = call.get("function") or {}
            if function.get("name"):
                slot["name"] = function["name"]
            slot["arguments"] += function.get("arguments") or ""
        if choice["finish_reason"]:
            assert finish is None, "two finish reasons"
            finish = choice["finish_reason"]
    return {
        "role": role,
        "content": content,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish_reason": finish,
        "usage": last["usage"],
    }
