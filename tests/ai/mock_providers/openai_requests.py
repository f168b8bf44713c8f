"""Reading an OpenAI chat-completions request as the mocks need it, and writing SSE.

:func:`prompt_of` reduces a request to the :class:`~.script.Prompt` the steering rules
read; :func:`tool_order_problem` and :func:`image_problem` refuse what OpenAI refuses
(tool messages out of turn, image parts without a usable URL); :func:`sse` writes the
chunks as ``data:`` events ending with ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tests.ai.mock_providers.script import Plan, Prompt, schema_in
from tests.ai.mock_providers.server import CUT, Cut


def image_problem(messages: list[Any]) -> str | None:
    """Image parts must carry an http(s) or a data:image URL."""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                if not url.startswith(("http://", "https://", "data:image/")):
                    return f"Invalid image URL: {url[:30]!r}"
    return None


def tool_order_problem(messages: list[Any]) -> str | None:
    """OpenAI's rule: tool messages answer the tool calls of the assistant message just
    before them, and every call is answered."""
    pending: list[str] = []
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"Invalid type for 'messages[{number}]': expected an object."
        if message.get("role") == "tool":
            if message.get("tool_call_id") not in pending:
                return (
                    f"Invalid parameter: messages with role 'tool' must be a response to a "
                    f"preceeding message with 'tool_calls'. (messages[{number}])"
                )
            pending.remove(message["tool_call_id"])
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(pending)}"
            )
        pending = [str(c.get("id")) for c in message.get("tool_calls") or []]
    return None


def _text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        )
    return ""


def prompt_of(provider: str, model: str, body: dict[str, Any]) -> Prompt:
    messages: list[dict[str, Any]] = [m for m in body["messages"] if isinstance(m, dict)]
    prompt = Prompt(provider, model)
    for message in messages:
        prompt.texts.append(_text(message.get("content")))
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            prompt.texts += [str(function.get("name", "")), str(function.get("arguments", ""))]
    tools = body.get("tools") or []
    for tool in tools:
        function = tool.get("function", {}) if isinstance(tool, dict) else {}
        prompt.tools.append(str(function.get("name", "")))
        prompt.texts += [
            str(function.get("name", "")),
            str(function.get("description", "")),
            json.dumps(function.get("parameters", {})),
        ]
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        prompt.after_tool = True
        results = []
        for message in reversed(messages):
            if message.get("role") != "tool":
                break
            results.append(_text(message.get("content")))
        prompt.steering = " ".join(reversed(results))
    else:
        users = [m for m in messages if m.get("role") == "user"]
        prompt.steering = _text(users[-1].get("content")) if users else ""
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        prompt.choice = str(choice.get("function", {}).get("name", "auto"))
    elif choice in ("none", "required", "any"):
        prompt.choice = "required" if choice == "any" else str(choice)
    prompt.parallel = body.get("parallel_tool_calls") is not False
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        prompt.schema = response_format.get("json_schema", {}).get("schema") or {}
    elif response_format.get("type") == "json_object":
        prompt.json_object = True
    else:
        system = " ".join(
            _text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
        )
        prompt.schema = schema_in(system)
    cap = body.get("max_completion_tokens", body.get("max_tokens"))
    prompt.max_output = int(cap) if isinstance(cap, int) else None
    return prompt


async def sse(chunks: list[dict[str, Any]], plan_: Plan) -> AsyncIterator[bytes | Cut]:
    """``data: <chunk>`` events, then ``data: [DONE]``; delays and cuts as planned."""
    for number, item in enumerate(chunks):
        if number == 0 and plan_.delay:
            await asyncio.sleep(plan_.delay)
        if plan_.cut and number == 3:
            yield CUT
            return
        yield b"data: " + orjson.dumps(item) + b"\n\n"
    yield b"data: [DONE]\n\n"
