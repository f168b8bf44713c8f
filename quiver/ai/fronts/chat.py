"""OpenAI ``POST {prefix}/chat/completions``.

To a provider that speaks OpenAI's chat API (openai, azure-openai, mistral, ollama,
openai-compatible) the request goes as the client sent it with only ``model``
replaced, and the answer comes back as the provider sent it.  A stream always asks
the provider for its usage (``stream_options.include_usage``), so that every call is
counted; a client that did not ask gets the stream without it: no ``usage`` member
on the chunks and no final ``choices: []`` chunk, exactly as the provider would
have sent it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from quiver.ai.errors import InvalidRequest, Unsupported
from quiver.ai.fronts.events import EventSplitter
from quiver.ai.gateway import JSON, NO_CACHE, SSE, Call, Gateway
from quiver.ai.router import Model
from quiver.ai.upstream import Deployment
from quiver.plugins.base import PluginRequest
from quiver.plugins.outbound import OutboundResponse
from quiver.plugins.responder import Response

_DONE = b"[DONE]"


def parse_body(request: PluginRequest) -> dict[str, Any]:
    """The request's JSON object; InvalidRequest when it is not one."""
    try:
        body = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


async def chat_completions(gateway: Gateway, request: PluginRequest, call: Call) -> Response:
    chat = parse_body(request)
    model = gateway.model(chat.get("model"))
    if model.config.embeddings:
        raise InvalidRequest(f"'{model.name}' is an embedding model", param="model")
    messages = chat.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    if chat.get("stream") is True:
        return await _stream(gateway, chat, model, call)

    async def send(current: Model, deployment: Deployment) -> bytes:
        if deployment.kind.wire != "openai":
            raise Unsupported(f"provider type {deployment.provider.type!r} is not available")
        chat["model"] = deployment.model
        started = time.perf_counter()
        try:
            response = await deployment.post(
                gateway.outbound, deployment.chat_url, orjson.dumps(chat)
            )
            return await response.read()
        finally:
            call.upstream += time.perf_counter() - started

    raw, answered, deployment = await gateway.router.run(model, send)
    call.answered_by(answered, deployment)
    try:
        usage = orjson.loads(raw).get("usage")
    except (orjson.JSONDecodeError, AttributeError):
        usage = None
    if isinstance(usage, dict):
        call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return Response(200, [JSON, call.overhead()], raw)


async def _stream(gateway: Gateway, chat: dict[str, Any], model: Model, call: Call) -> Response:
    options = chat.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True

    async def send(current: Model, deployment: Deployment) -> OutboundResponse:
        if deployment.kind.wire != "openai":
            raise Unsupported(f"provider type {deployment.provider.type!r} is not available")
        chat["model"] = deployment.model
        chat["stream_options"] = {**(options or {}), "include_usage": True}
        started = time.perf_counter()
        try:
            return await deployment.post(
                gateway.outbound, deployment.stream_url, orjson.dumps(chat)
            )
        finally:
            call.upstream += time.perf_counter() - started

    response, answered, deployment = await gateway.router.run(model, send)
    call.answered_by(answered, deployment)
    body = _relay(response, call, wants_usage)
    return Response(200, [SSE, NO_CACHE, call.overhead()], body)


async def _relay(response: OutboundResponse, call: Call, wants_usage: bool) -> AsyncIterator[bytes]:
    """The provider's stream as the client asked for it, its usage noted on the way."""
    splitter = EventSplitter()
    first = True
    try:
        async for piece in response.stream():
            if first:
                call.first_token()
                first = False
            if wants_usage:
                # as sent; only the events that carry usage are looked into
                for _, data in splitter.feed(piece):
                    if b'"usage"' in data and data != _DONE:
                        _note_usage(call, data)
                yield piece
                continue
            out = []
            for _, data in splitter.feed(piece):
                if data == _DONE:
                    out.append(b"data: [DONE]\n\n")
                    continue
                try:
                    chunk = orjson.loads(data)
                except orjson.JSONDecodeError:
                    out.append(b"data: " + data + b"\n\n")
                    continue
                if isinstance(chunk, dict) and "usage" in chunk:
                    usage = chunk.pop("usage")
                    if isinstance(usage, dict):
                        call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
                        if not chunk.get("choices"):
                            continue  # (the usage chunk the client did not ask for)
                out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if out:
                yield b"".join(out)
    finally:
        response.close()


def _note_usage(call: Call, data: bytes) -> None:
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    usage = chunk.get("usage") if isinstance(chunk, dict) else None
    if isinstance(usage, dict):
        call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
