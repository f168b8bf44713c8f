"""Anthropic's Messages API: ``/v1/messages`` (plain and SSE) and ``count_tokens``.

As the real API: ``x-api-key`` and ``anthropic-version`` are required, ``max_tokens`` is
required, roles are only ``user``/``assistant`` (a ``system`` role is refused with the
real message), a ``tool_result`` must answer a ``tool_use`` of the previous assistant
turn, errors are ``{"type": "error", "error": {...}, "request_id": ...}``, and a stream is
message_start, content_block_start, ping, content_block_delta (``text_delta`` /
``input_json_delta``, the first of these empty), content_block_stop, message_delta (stop
reason and output tokens), message_stop.  Structured outputs (``output_config.format``)
are honoured.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tests.ai.mock_providers.script import Plan, Prompt, ident, json_asked_in, plan
from tests.ai.mock_providers.server import CUT, Cut, MockRequest, Reply, StreamReply, json_reply

IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")  # 2023-06-01 and every dated version after it


def error(status: int, kind: str, message: str, request: MockRequest, **options: Any) -> Reply:
    body = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": ident(request.body + request.target.encode(), 24, "req_011C"),
    }
    return json_reply(status, body, **options)


class Anthropic:
    def __init__(self, key: str) -> None:
        self.key = key

    async def handle(self, request: MockRequest) -> Reply | StreamReply:
        path = request.path.split("?", 1)[0]
        # current SDKs send the key as a bearer token, older ones (and most gateways)
        # as x-api-key: the API takes either
        bearer = request.header("authorization") or ""
        given = request.header("x-api-key") or bearer.removeprefix("Bearer ") or None
        if given is None:
            return error(401, "authentication_error", "x-api-key header is required", request)
        if given != self.key:
            return error(401, "authentication_error", "invalid x-api-key", request)
        version = request.header("anthropic-version")
        if version is None:
            return error(
                400, "invalid_request_error", "anthropic-version: header is required", request
            )
        if not VERSION.fullmatch(version) or version < "2023-01-01":
            message = f"anthropic-version: invalid version {version!r}"
            return error(400, "invalid_request_error", message, request)
        if request.method != "POST" or path not in ("/v1/messages", "/v1/messages/count_tokens"):
            return error(404, "not_found_error", "Not found", request)
        try:
            body = request.json = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return error(
                400, "invalid_request_error", "There was an error parsing the body", request
            )
        if not isinstance(body, dict):
            return error(400, "invalid_request_error", "Input should be an object", request)
        counting = path.endswith("/count_tokens")
        for name in ("model", "messages") if counting else ("model", "messages", "max_tokens"):
            if name not in body:
                return error(400, "invalid_request_error", f"{name}: Field required", request)
        problem = _check_messages(body["messages"])
        if problem is not None:
            return error(400, "invalid_request_error", problem, request)
        prompt = _prompt(str(body["model"]), body)
        plan_ = plan(prompt)
        if counting:
            request.usage = (plan_.prompt_tokens, 0)
            return json_reply(200, {"input_tokens": plan_.prompt_tokens})
        request.usage = (plan_.prompt_tokens, plan_.completion_tokens)
        if plan_.failure == "429":
            message = (
                "This request would exceed the rate limit for your organization of 50 requests "
                "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."
            )
            return error(429, "rate_limit_error", message, request, headers=[("retry-after", "1")])
        if plan_.failure == "500":
            return error(500, "api_error", "Internal server error", request)
        if plan_.failure == "context":
            tokens = 200_000 + plan_.prompt_tokens
            message = f"prompt is too long: {tokens} tokens > 200000 maximum"
            return error(400, "invalid_request_error", message, request)
        message_id = ident(request.body, 24, "msg_01")
        model = str(body["model"])
        request_id = [("request-id", ident(request.body, 24, "req_011C"))]
        if not body.get("stream"):
            return json_reply(
                200,
                _message(plan_, model, message_id, request.body),
                request_id,
                delay=plan_.delay,
                cut=plan_.cut,
            )
        return StreamReply(
            200,
            _stream(plan_, model, message_id, request.body),
            [
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-cache"),
                *request_id,
            ],
        )


def _check_messages(messages: Any) -> str | None:
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    previous_uses: set[str] = set()
    for number, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return (
                f'messages: Unexpected role "{role}". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        last_assistant = number == len(messages) - 1 and role == "assistant"
        if not content and not last_assistant:
            return (
                f"messages.{number}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )
        for index, block in enumerate(blocks):
            if block.get("type") == "text" and not block.get("text"):
                return (
                    f"messages.{number}.content.{index}.text: text content blocks must be non-empty"
                )
        answered = set()
        for index, block in enumerate(blocks):
            if block.get("type") == "image" and (problem := _check_image(block.get("source"))):
                return f"messages.{number}.content.{index}.image.source: {problem}"
            if block.get("type") == "tool_result":
                if block.get("tool_use_id") not in previous_uses:
                    return (
                        f"messages.{number}.content.{index}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                        "block must have a corresponding `tool_use` block in the previous message."
                    )
                answered.add(block.get("tool_use_id"))
        if previous_uses - answered:
            return (
                f"messages.{number - 1}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(sorted(previous_uses - answered))}. Each "
                "`tool_use` block must have a corresponding `tool_result` block in the next "
                "message."
            )
        previous_uses = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
    return None


def _check_image(source: Any) -> str | None:
    if not isinstance(source, dict):
        return "Field required"
    if source.get("type") == "base64":
        if source.get("media_type") not in IMAGE_TYPES:
            return (
                "base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' "
                "or 'image/webp'"
            )
        return None if source.get("data") else "base64.data: Field required"
    if source.get("type") == "url":
        return (
            None
            if str(source.get("url", "")).startswith(("http://", "https://"))
            else "url.url: invalid"
        )
    return "Input tag does not match any of the expected tags: 'base64', 'url', 'file'"


def _block_text(block: dict[str, Any]) -> list[str]:
    kind = block.get("type")
    if kind == "text":
        return [str(block.get("text", ""))]
    if kind == "tool_use":
        return [str(block.get("name", "")), json.dumps(block.get("input", {}))]
    if kind == "tool_result":
        return [_content_text(block.get("content", ""))]
    return []


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for b in content if isinstance(b, dict) for t in _block_text(b))
    return ""


def _prompt(model: str, body: dict[str, Any]) -> Prompt:
    prompt = Prompt("anthropic", model)
    system = _content_text(body.get("system", ""))
    prompt.texts.append(system)
    messages = body["messages"]
    for message in messages:
        prompt.texts.append(_content_text(message.get("content")))
    for tool in body.get("tools") or []:
        prompt.tools.append(str(tool.get("name", "")))
        prompt.texts += [
            str(tool.get("name", "")),
            str(tool.get("description", "")),
            json.dumps(tool.get("input_schema", {})),
        ]
    last = messages[-1] if messages else {}
    content = last.get("content")
    blocks = content if isinstance(content, list) else []
    results = [b for b in blocks if b.get("type") == "tool_result"]
    said = [str(b.get("text", "")) for b in blocks if b.get("type") == "text"]
    if last.get("role") == "user" and results and not said:
        prompt.after_tool = True
        prompt.steering = " ".join(_content_text(b.get("content", "")) for b in results)
    else:  # (the user's words, not the tool results beside them)
        users = [m for m in messages if m.get("role") == "user"]
        words_of = users[-1].get("content") if users else ""
        if isinstance(words_of, list):
            words_of = [b for b in words_of if b.get("type") == "text"]
        prompt.steering = _content_text(words_of)
    choice = body.get("tool_choice") or {"type": "auto"}
    kind = choice.get("type", "auto")
    prompt.choice = {"any": "required", "tool": str(choice.get("name", ""))}.get(kind, kind)
    prompt.parallel = not choice.get("disable_parallel_tool_use", False)
    # structured outputs: output_config.format (GA), output_format (the earlier beta)
    output_format = (body.get("output_config") or {}).get("format") or body.get("output_format")
    output_format = output_format or {}
    if output_format.get("type") == "json_schema":
        prompt.schema = output_format.get("schema") or {}
    else:
        json_asked_in(prompt, system)
    cap = body.get("max_tokens")
    prompt.max_output = cap if isinstance(cap, int) else None
    return prompt


def _stop(plan_: Plan) -> str:
    if plan_.tool_calls:
        return "tool_use"
    if plan_.refused:
        return "refusal"
    return "max_tokens" if plan_.truncated else "end_turn"


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def _tool_id(seed: bytes, index: int) -> str:
    return ident(seed + bytes([index]), 22, "toolu_01")


def _message(plan_: Plan, model: str, message_id: str, seed: bytes) -> dict[str, Any]:
    content: list[dict[str, Any]] = [
        {
            "type": "tool_use",
            "id": _tool_id(seed, i),
            "name": call.name,
            "input": json.loads(call.arguments),
        }
        for i, call in enumerate(plan_.tool_calls)
    ] or [{"type": "text", "text": plan_.text}]
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop(plan_),
        "stop_sequence": None,
        "usage": _usage(plan_.prompt_tokens, plan_.completion_tokens),
    }


def _events(
    plan_: Plan, model: str, message_id: str, seed: bytes
) -> list[tuple[str, dict[str, Any]]]:
    start: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(plan_.prompt_tokens, 1),
    }
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if plan_.tool_calls:
        for i, call in enumerate(plan_.tool_calls):
            block = {"type": "tool_use", "id": _tool_id(seed, i), "name": call.name, "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": part}
                for part in ["", *call.fragments()]
            ]
            blocks.append((block, deltas))
    else:
        deltas = [{"type": "text_delta", "text": piece} for piece in plan_.pieces()]
        blocks.append(({"type": "text", "text": ""}, deltas))
    for index, (block, deltas) in enumerate(blocks):
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        if index == 0:
            events.append(("ping", {"type": "ping"}))
        for delta in deltas:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop(plan_), "stop_sequence": None},
                "usage": {"output_tokens": plan_.completion_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


async def _stream(
    plan_: Plan, model: str, message_id: str, seed: bytes
) -> AsyncIterator[bytes | Cut]:
    deltas = 0
    for name, data in _events(plan_, model, message_id, seed):
        if name == "content_block_delta":
            if deltas == 0 and plan_.delay:
                await asyncio.sleep(plan_.delay)
            deltas += 1
            if plan_.cut and deltas == 3:
                yield CUT
                return
            if plan_.broken and deltas == 3:
                overloaded = {"type": "overloaded_error", "message": "Overloaded"}
                error_event = {"type": "error", "error": overloaded}
                yield b"event: error\ndata: " + orjson.dumps(error_event) + b"\n\n"
                return
        yield b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
