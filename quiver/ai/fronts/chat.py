"""OpenAI ``POST {prefix}/chat/completions``.

To a provider that speaks OpenAI's chat API (openai, azure-openai, mistral, ollama,
openai-compatible) the request goes as the client sent it with only ``model``
replaced, and the answer comes back as the provider sent it.  Other providers are
reached through their converters (:mod:`quiver.ai.completions`).  A stream always
asks the provider for its usage (``stream_options.include_usage``), so that every
call is counted; a client that did not ask gets the stream without it: no ``usage``
member on the chunks and no final ``choices: []`` chunk, as OpenAI sends it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from quiver.ai.completions import converter_of, post_chat
from quiver.ai.completions import stream as chunks_of
from quiver.ai.errors import InvalidRequest, ProviderUnavailable
from quiver.ai.gateway import JSON, NO_CACHE, SSE, Call, Gateway
from quiver.ai.router import Model
from quiver.ai.transports.sse import SSEParser
from quiver.ai.upstream import Deployment
from quiver.plugins.base import PluginRequest
from quiver.plugins.outbound import OutboundResponse
from quiver.plugins.responder import Response

_DONE = b"data: [DONE]\n\n"


def parse_body(request: PluginRequest) -> dict[str, Any]:
    """The request's JSON object; InvalidRequest when it is not one."""
    try:
        body = orjson.loads(request.body or b"")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def check_chat(gateway: Gateway, chat: dict[str, Any]) -> Model:
    """The model a chat request names, once the request looks like one."""
    model = gateway.model(chat.get("model"))
    if model.config.embeddings:
        raise InvalidRequest(f"'{model.name}' is an embedding model", param="model")
    messages = chat.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    return model


async def chat_completions(gateway: Gateway, request: PluginRequest, call: Call) -> Response:
    chat = parse_body(request)
    model = check_chat(gateway, chat)
    await gateway.admit(request, call, model, chat)
    try:
        if chat.get("stream") is True:
            return await _stream(gateway, chat, model, call)
        raw = await _complete(gateway, chat, model, call)
    except BaseException:
        await gateway.settle(call, None)
        raise
    await gateway.settle(call, call.usage_document())
    return Response(200, [JSON, call.overhead()], raw)


async def _complete(gateway: Gateway, chat: dict[str, Any], model: Model, call: Call) -> bytes:
    async def send(current: Model, deployment: Deployment) -> bytes:
        await gateway.admit_deployment(call, current, deployment, chat)
        response = await post_chat(gateway, deployment, chat, call, stream=False)
        started = time.perf_counter()
        try:
            raw = await response.read()
        finally:
            call.upstream += time.perf_counter() - started
        converter = converter_of(deployment)
        if converter is None:
            return raw  # (as the provider sent it)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderUnavailable(
                f"{deployment.provider.name} answered something that is not JSON",
                provider=deployment.provider.name,
            ) from None
        return orjson.dumps(converter.convert_response(body, current.name))

    raw, answered, deployment = await gateway.router.run(model, send)
    call.answered_by(answered, deployment)
    try:
        usage = orjson.loads(raw).get("usage")
    except (orjson.JSONDecodeError, AttributeError):
        usage = None
    if isinstance(usage, dict):
        call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return raw


async def _stream(gateway: Gateway, chat: dict[str, Any], model: Model, call: Call) -> Response:
    options = chat.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    first = model.deployments[0]
    if first.kind.wire == "openai" and all(d.kind.wire == "openai" for d in _reachable(model)):
        # the provider's own stream, relayed as it comes
        async def send(current: Model, deployment: Deployment) -> OutboundResponse:
            await gateway.admit_deployment(call, current, deployment, chat)
            return await post_chat(gateway, deployment, chat, call, stream=True)

        response, answered, deployment = await gateway.router.run(model, send)
        call.answered_by(answered, deployment)
        body = _relay(gateway, response, call, wants_usage)
    else:
        chunks, answered, deployment = await chunks_of(gateway, model, chat, call)
        body = _written(gateway, chunks, call, wants_usage)
    return Response(200, [SSE, NO_CACHE, call.overhead()], body)


def _reachable(model: Model) -> list[Deployment]:
    """Every deployment a call to ``model`` may end on (its fallbacks' too)."""
    found: list[Deployment] = []
    for current in (model, *model.fallbacks):
        found += current.deployments
    return found


async def _relay(
    gateway: Gateway, response: OutboundResponse, call: Call, wants_usage: bool
) -> AsyncIterator[bytes]:
    """The provider's stream as the client asked for it, its usage noted on the way."""
    parser = SSEParser()
    first = True
    try:
        async for piece in response.stream():
            if first:
                call.first_token()
                first = False
            if wants_usage:
                # as sent; only the events that carry usage are looked into
                for event in parser.feed(piece):
                    if '"usage"' in event.data:
                        _note_usage(call, event.data)
                yield piece
                continue
            out = []
            for event in parser.feed(piece):
                if event.data == "[DONE]":
                    out.append(_DONE)
                    continue
                try:
                    chunk = orjson.loads(event.data)
                except orjson.JSONDecodeError:
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
        await _settle_stream(gateway, call)


async def _written(
    gateway: Gateway, chunks: AsyncIterator[dict[str, Any]], call: Call, wants_usage: bool
) -> AsyncIterator[bytes]:
    """Converted chunks written as OpenAI's stream."""
    first = True
    try:
        async for chunk in chunks:
            if first:
                call.first_token()
                first = False
            usage = chunk.get("usage")
            if isinstance(usage, dict):
                call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
            if not wants_usage:
                chunk.pop("usage", None)
                if not chunk.get("choices"):
                    continue
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield _DONE
    finally:
        await _settle_stream(gateway, call)


async def _settle_stream(gateway: Gateway, call: Call) -> None:
    """A finished stream settles to its usage; one cut before its usage came keeps
    what it reserved (it may have used all of it)."""
    usage = call.usage_document()
    if usage is not None:
        await gateway.settle(call, usage)


def _note_usage(call: Call, data: str) -> None:
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    usage = chunk.get("usage") if isinstance(chunk, dict) else None
    if isinstance(usage, dict):
        call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
