"""Amazon Bedrock runtime: Converse, ConverseStream (event stream) and Titan embeddings.

As the real service: every request must carry a valid SigV4 signature for service
``bedrock`` (403 with ``x-amzn-ErrorType`` otherwise), errors are ``{"message": ...}``
with the exception's name in ``x-amzn-ErrorType``, roles are only ``user``/``assistant``,
a conversation starts with a user turn and alternates, blank text blocks and
toolUse/toolResult blocks without a ``toolConfig`` are refused,
ConverseStream answers ``application/vnd.amazon.eventstream`` frames (messageStart,
contentBlockStart only for a toolUse, contentBlockDelta, contentBlockStop, messageStop,
metadata) whose JSON payloads carry the ``p`` padding field, and
``/model/amazon.titan-embed-text-v2:0/invoke`` answers Titan's embedding body.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import orjson

from tests.ai.mock_providers import eventstream, sigv4
from tests.ai.mock_providers.script import (
    Plan,
    Prompt,
    failure,
    ident,
    json_asked_in,
    plan,
    vector,
    words,
)
from tests.ai.mock_providers.server import CUT, Cut, MockRequest, Reply, StreamReply, json_reply

PADDING = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"
TITAN_DIMENSIONS = (256, 512, 1024)
CODA = "http://internal.amazon.com/coral/com.amazon.bedrock/"
UNEXPECTED = "The system encountered an unexpected error during processing. Try your request again."


def error(status: int, kind: str, message: str, **options: Any) -> Reply:
    headers = [("x-amzn-ErrorType", f"{kind}:{CODA}"), *options.pop("headers", [])]
    return json_reply(status, {"message": message}, headers, **options)


class Bedrock:
    """``credentials``: secret key and session token (None: long-term keys) by key id."""

    def __init__(self, credentials: dict[str, tuple[str, str | None]], region: str) -> None:
        self.credentials, self.region = credentials, region

    async def handle(self, request: MockRequest) -> Reply | StreamReply:
        named = sigv4.key_id(request.headers) or ""
        secret, token = self.credentials.get(named, ("", None))
        problem = sigv4.verify(
            request.method,
            request.target,
            request.headers,
            request.body,
            access_key=named if named in self.credentials else "",
            secret_key=secret,
            region=self.region,
            service="bedrock",
            session_token=token,
        )
        if problem is not None:
            kind = {
                "Missing Authentication Token": "MissingAuthenticationTokenException",
                sigv4.UNKNOWN_KEY: "UnrecognizedClientException",
            }.get(problem, "InvalidSignatureException")
            return error(403, kind, problem)
        parts = request.path.split("?", 1)[0].split("/")
        if request.method != "POST" or len(parts) != 4 or parts[1] != "model":
            return error(404, "UnknownOperationException", "Unknown operation")
        model, operation = unquote(parts[2]), parts[3]
        try:
            body = request.json = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return error(
                400,
                "SerializationException",
                "Malformed input request, please reformat your input and try again.",
            )
        if not isinstance(body, dict):
            return error(
                400,
                "SerializationException",
                "Malformed input request, please reformat your input and try again.",
            )
        embedding = model.startswith("amazon.titan-embed")
        if operation == "invoke" and embedding:
            return self._embed(request, body, model)
        if operation in ("converse", "converse-stream") and not embedding:
            return self._converse(request, body, model, operation == "converse-stream")
        return error(
            400,
            "ValidationException",
            "This action doesn't support the model that you provided. Try again with a "
            "supported text or chat model.",
        )

    def _converse(
        self, request: MockRequest, body: dict[str, Any], model: str, stream: bool
    ) -> Reply | StreamReply:
        problem = _check(body)
        if problem is not None:
            return error(400, "ValidationException", problem)
        prompt = _prompt(model, body)
        plan_ = plan(prompt)
        request.usage = (plan_.prompt_tokens, plan_.completion_tokens)
        retry = [("Retry-After", "1")]
        if plan_.failure == "429":
            return error(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
                headers=retry,
            )
        if plan_.failure == "500":
            return error(
                500,
                "InternalServerException",
                UNEXPECTED,
            )
        if plan_.failure == "context":
            return error(400, "ValidationException", "Input is too long for requested model.")
        request_id = [("x-amzn-RequestId", _uuid(request.body))]
        if not stream:
            return json_reply(
                200, _response(plan_, request.body), request_id, delay=plan_.delay, cut=plan_.cut
            )
        return StreamReply(
            200,
            _stream(plan_, request.body),
            [("Content-Type", "application/vnd.amazon.eventstream"), *request_id],
        )

    def _embed(self, request: MockRequest, body: dict[str, Any], model: str) -> Reply:
        text = body.get("inputText")
        if not isinstance(text, str) or not text:
            return error(
                400,
                "ValidationException",
                "Malformed input request: #: required key [inputText] not found, please "
                "reformat your input and try again.",
            )
        dimensions = body.get("dimensions", 1024)
        if dimensions not in TITAN_DIMENSIONS:
            return error(
                400,
                "ValidationException",
                f"Malformed input request: #/dimensions: {dimensions} is not a valid enum "
                "value, please reformat your input and try again.",
            )
        failed = failure(text, "bedrock", model)
        if failed == "429":
            return error(
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
                headers=[("Retry-After", "1")],
            )
        if failed == "context":
            return error(400, "ValidationException", "Input is too long for requested model.")
        if failed is not None:
            return error(500, "InternalServerException", UNEXPECTED)
        values = vector(text, dimensions)
        if body.get("normalize", True):
            norm = math.sqrt(sum(v * v for v in values)) or 1.0
            values = [v / norm for v in values]
        count = words(text)
        request.usage = (count, 0)
        result = {
            "embedding": values,
            "embeddingsByType": {"float": values},
            "inputTextTokenCount": count,
        }
        return json_reply(200, result, [("x-amzn-RequestId", _uuid(request.body))])


def _uuid(seed: bytes) -> str:
    raw = ident(seed, 32).lower()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _check(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return (
            "A conversation must start with a user message. Try again with a conversation "
            "that starts with a user message."
        )
    uses_tools = False
    previous_uses: list[str] = []
    if messages[0].get("role") != "user":
        return (
            "A conversation must start with a user message. Try again with a conversation "
            "that starts with a user message."
        )
    for number, message in enumerate(messages):
        role = message.get("role")
        if number and role == messages[number - 1].get("role"):
            return (
                "A conversation must alternate between user and assistant roles. Make sure "
                "the conversation alternates between user and assistant roles and try again."
            )
        if role not in ("user", "assistant"):
            return (
                f"1 validation error detected: Value '{role}' at "
                f"'messages.{number + 1}.member.role' failed to satisfy constraint: Member "
                "must satisfy enum value set: [user, assistant]"
            )
        results: list[str] = []
        for index, block in enumerate(message.get("content") or []):
            if "text" in block and not str(block["text"]).strip():
                return (
                    f"The text field in the ContentBlock object at messages.{number}.content."
                    f"{index} is blank. Add text to the text field, and try again."
                )
            image = block.get("image")
            if image is not None and (
                image.get("format") not in ("png", "jpeg", "gif", "webp")
                or not (image.get("source") or {}).get("bytes")
            ):
                return (
                    f"The image at messages.{number}.content.{index} is invalid: it needs a "
                    "format (png, jpeg, gif or webp) and source.bytes."
                )
            uses_tools = uses_tools or "toolUse" in block or "toolResult" in block
            if "toolResult" in block:
                results.append(str(block["toolResult"].get("toolUseId")))
        if len(results) > len(previous_uses):
            return (
                f"The number of toolResult blocks at messages.{number}.content exceeds the "
                "number of toolUse blocks of previous turn."
            )
        if sorted(results) != sorted(previous_uses) and (results or role == "user"):
            missing = ", ".join(u for u in previous_uses if u not in results) or results[0]
            return (
                f"Expected toolResult blocks at messages.{number}.content for the following "
                f"Ids: {missing}"
            )
        previous_uses = [
            str(b["toolUse"].get("toolUseId"))
            for b in message.get("content") or []
            if "toolUse" in b
        ]
    if uses_tools and not body.get("toolConfig"):
        return (
            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        )
    return None


def _block_texts(block: dict[str, Any]) -> list[str]:
    if "text" in block:
        return [str(block["text"])]
    if "toolUse" in block:
        use = block["toolUse"]
        return [str(use.get("name", "")), json.dumps(use.get("input", {}))]
    if "toolResult" in block:
        return [t for item in block["toolResult"].get("content", []) for t in _result_texts(item)]
    return []


def _result_texts(item: dict[str, Any]) -> list[str]:
    if "text" in item:
        return [str(item["text"])]
    if "json" in item:
        value = item["json"]
        if (
            isinstance(value, dict)
            and len(value) == 1
            and isinstance(next(iter(value.values())), str)
        ):
            return [next(iter(value.values()))]  # (a tool's text output wrapped in an object)
        return [json.dumps(value)]
    return []


def _prompt(model: str, body: dict[str, Any]) -> Prompt:
    prompt = Prompt("bedrock", model)
    system = " ".join(str(block.get("text", "")) for block in body.get("system") or [])
    prompt.texts.append(system)
    messages = body["messages"]
    for message in messages:
        for block in message.get("content") or []:
            prompt.texts += _block_texts(block)
    tool_config = body.get("toolConfig") or {}
    for tool in tool_config.get("tools") or []:
        spec = tool.get("toolSpec", {})
        prompt.tools.append(str(spec.get("name", "")))
        schema = (spec.get("inputSchema") or {}).get("json", {})
        prompt.texts += [
            str(spec.get("name", "")),
            str(spec.get("description", "")),
            json.dumps(schema),
        ]
    choice = tool_config.get("toolChoice") or {"auto": {}}
    if "any" in choice:
        prompt.choice = "required"
    elif "tool" in choice:
        prompt.choice = str(choice["tool"].get("name", ""))
    last = messages[-1]
    results = [b for b in last.get("content") or [] if "toolResult" in b]
    said = [b for b in last.get("content") or [] if "text" in b]
    if last.get("role") == "user" and results and not said:
        prompt.after_tool = True
        prompt.steering = " ".join(t for b in results for t in _block_texts(b))
    else:
        users = [m for m in messages if m.get("role") == "user"]
        prompt.steering = " ".join(
            str(b["text"]) for b in (users[-1].get("content") or [] if users else []) if "text" in b
        )
    json_asked_in(prompt, system)
    cap = (body.get("inferenceConfig") or {}).get("maxTokens")
    prompt.max_output = cap if isinstance(cap, int) else None
    return prompt


def _stop(plan_: Plan) -> str:
    if plan_.tool_calls:
        return "tool_use"
    if plan_.refused:
        return "content_filtered"
    return "max_tokens" if plan_.truncated else "end_turn"


def _usage(plan_: Plan) -> dict[str, int]:
    return {
        "inputTokens": plan_.prompt_tokens,
        "outputTokens": plan_.completion_tokens,
        "totalTokens": plan_.prompt_tokens + plan_.completion_tokens,
    }


def _tool_id(seed: bytes, index: int) -> str:
    return ident(seed + bytes([index]), 22, "tooluse_")


def _response(plan_: Plan, seed: bytes) -> dict[str, Any]:
    content: list[dict[str, Any]] = [
        {
            "toolUse": {
                "toolUseId": _tool_id(seed, i),
                "name": c.name,
                "input": json.loads(c.arguments),
            }
        }
        for i, c in enumerate(plan_.tool_calls)
    ] or [{"text": plan_.text}]
    if plan_.refused:
        content = []
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _stop(plan_),
        "usage": _usage(plan_),
        "metrics": {"latencyMs": 42},
    }


def _events(plan_: Plan, seed: bytes) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = [("messageStart", {"role": "assistant"})]
    if plan_.tool_calls:
        for i, call in enumerate(plan_.tool_calls):
            start = {"toolUse": {"toolUseId": _tool_id(seed, i), "name": call.name}}
            events.append(("contentBlockStart", {"contentBlockIndex": i, "start": start}))
            for fragment in call.fragments():
                delta = {"toolUse": {"input": fragment}}
                events.append(("contentBlockDelta", {"contentBlockIndex": i, "delta": delta}))
            events.append(("contentBlockStop", {"contentBlockIndex": i}))
    elif not plan_.refused:
        for piece in plan_.pieces():
            events.append(("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}))
        events.append(("contentBlockStop", {"contentBlockIndex": 0}))
    events.append(("messageStop", {"stopReason": _stop(plan_)}))
    events.append(("metadata", {"usage": _usage(plan_), "metrics": {"latencyMs": 42}}))
    return events


async def _stream(plan_: Plan, seed: bytes) -> AsyncIterator[bytes | Cut]:
    deltas = 0
    for number, (name, payload) in enumerate(_events(plan_, seed)):
        if name == "contentBlockDelta":
            if deltas == 0 and plan_.delay:
                await asyncio.sleep(plan_.delay)
            deltas += 1
            if plan_.cut and deltas == 3:
                yield CUT
                return
            if plan_.broken and deltas == 3:
                exception = {
                    ":exception-type": "modelStreamErrorException",
                    ":content-type": "application/json",
                    ":message-type": "exception",
                }
                message = {"message": "The model stream failed. Try your request again."}
                yield eventstream.encode(exception, orjson.dumps(message))
                return
        padded = {**payload, "p": PADDING[: 1 + (number * 7) % len(PADDING)]}
        headers = {
            ":event-type": name,
            ":content-type": "application/json",
            ":message-type": "event",
        }
        yield eventstream.encode(headers, orjson.dumps(padded))
