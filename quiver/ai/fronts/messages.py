"""Anthropic ``POST {prefix}/messages`` and ``POST {prefix}/messages/count_tokens``.

To an ``anthropic`` provider the request goes as the client sent it with only
``model`` replaced (and the client's ``anthropic-version`` and ``anthropic-beta``
fields, when it sent them), and the answer (a stream too) comes back byte for
byte; the usage is read on the way (``message_start`` carries the input tokens,
``message_delta`` the output tokens).  A model whose deployments (or fallbacks) are
on other providers is reached in the canonical chat format and answered as
Anthropic would (:mod:`quiver.ai.converters.anthropic_messages_to_openai_chat`),
streams with the full event sequence.

``count_tokens`` asks an Anthropic provider; for any other the count is Quiver's own
estimate (:mod:`quiver.ai.accounting.tokens`: the prompt's tokens at the bound the
budgets reserve, an upper bound rather than the provider's exact count).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from quiver.ai import completions
from quiver.ai.accounting.tokens import prompt_upper_bound
from quiver.ai.converters import anthropic_messages_to_openai_chat as front
from quiver.ai.converters.chat import ConversionError, new_id
from quiver.ai.errors import AIError, InvalidRequest, Unsupported, stream_error
from quiver.ai.fronts.chat import parse_body
from quiver.ai.gateway import JSON, NO_CACHE, SSE, Call, Gateway
from quiver.ai.router import Model
from quiver.ai.transports.sse import SSEParser, event
from quiver.ai.upstream import Deployment
from quiver.plugins.base import PluginRequest
from quiver.plugins.outbound import OutboundResponse
from quiver.plugins.responder import Response

_FORWARDED = (b"anthropic-version", b"anthropic-beta")


def _client_fields(request: PluginRequest) -> dict[str, str] | None:
    fields = None
    for name in _FORWARDED:
        value = request.get(name)
        if value is not None:
            fields = fields or {}
            fields[name.decode()] = value.decode("latin-1")
    return fields


async def messages(gateway: Gateway, request: PluginRequest, call: Call) -> Response:
    body = parse_body(request)
    model = gateway.model(body.get("model"))
    call.info["model"] = model.name
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("messages: Field required", param="messages")
    await gateway.admit(request, call, model, body)
    try:
        if all(d.kind.wire == "anthropic" for d in _reachable(model)):
            return await _messages(gateway, request, call, body, model)
        return await _converted(gateway, call, body, model)
    except BaseException:
        await gateway.settle(call, None)
        raise


async def _messages(
    gateway: Gateway, request: PluginRequest, call: Call, body: dict[str, Any], model: Model
) -> Response:
    stream = body.get("stream") is True
    fields = _client_fields(request)

    async def send(current: Model, deployment: Deployment) -> OutboundResponse:
        if deployment.kind.wire != "anthropic":
            raise Unsupported(f"provider type {deployment.provider.type!r} is not available")
        await gateway.admit_deployment(call, current, deployment, body)
        started = time.perf_counter()
        try:
            return await deployment.post(
                gateway.outbound,
                deployment.chat_url,
                orjson.dumps(dict(body, model=deployment.model)),
                headers=fields,
            )
        finally:
            call.upstream += time.perf_counter() - started

    response, answered, deployment = await gateway.router.run(model, send, waited=call.waited)
    call.answered_by(answered, deployment)
    if stream:
        relay = _relay(gateway, response, call)
        return Response(200, [SSE, NO_CACHE, call.overhead()], relay)
    started = time.perf_counter()
    raw = await response.read()
    call.upstream += time.perf_counter() - started
    try:
        usage = orjson.loads(raw).get("usage")
    except (orjson.JSONDecodeError, AttributeError):
        usage = None
    if isinstance(usage, dict):
        call.usage(usage.get("input_tokens"), usage.get("output_tokens"))
    await gateway.settle(call, call.usage_document())
    return Response(200, [JSON, call.overhead()], raw)


def _reachable(model: Model) -> list[Deployment]:
    return [d for current in (model, *model.fallbacks) for d in current.deployments]


def _chat_of(body: dict[str, Any]) -> dict[str, Any]:
    try:
        return front.convert_request(body)
    except ConversionError as exc:
        raise InvalidRequest(str(exc)) from None


async def _converted(gateway: Gateway, call: Call, body: dict[str, Any], model: Model) -> Response:
    """A Messages call answered by a provider of another format, through chat."""
    chat = _chat_of(body)
    if body.get("stream") is True:
        chunks, answered, _ = await completions.stream(gateway, model, chat, call)
        converter = front.StreamConverter(answered.name, new_id("msg_"))
        written = _written(gateway, call, chunks, converter)
        return Response(200, [SSE, NO_CACHE, call.overhead()], written)
    completion, answered, _ = await completions.complete(gateway, model, chat, call)
    message = front.convert_response(completion, answered.name)
    await gateway.settle(call, call.usage_document())
    return Response(200, [JSON, call.overhead()], orjson.dumps(message))


async def _written(
    gateway: Gateway,
    call: Call,
    chunks: AsyncIterator[dict[str, Any]],
    converter: front.StreamConverter,
) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            events = converter.feed(chunk)
            if events:
                yield b"".join(event(orjson.dumps(data), name.encode()) for name, data in events)
        yield b"".join(
            event(orjson.dumps(data), name.encode()) for name, data in converter.finish()
        )
    except AIError as exc:  # (after the first bytes: an error event, no message_stop)
        yield stream_error(exc, "anthropic")
    finally:
        usage_seen = call.usage_document()
        if usage_seen is not None:
            await gateway.settle(call, usage_seen)


def _events(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(event(orjson.dumps(data), name.encode()) for name, data in events)


async def _relay(gateway: Gateway, response: OutboundResponse, call: Call) -> AsyncIterator[bytes]:
    parser = SSEParser()
    first = True
    prompt: Any = None
    try:
        async for piece in response.stream():
            if first:
                call.first_token()
                first = False
            for event in parser.feed(piece):
                if '"usage"' not in event.data:
                    continue
                try:
                    data = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(data, dict):
                    continue
                message = data.get("message")
                usage = (message if isinstance(message, dict) else data).get("usage")
                if isinstance(usage, dict):
                    prompt = usage.get("input_tokens", prompt)
                    call.usage(prompt, usage.get("output_tokens"))
            yield piece
    finally:
        response.close()
        usage_seen = call.usage_document()
        if usage_seen is not None:  # (a stream cut before its usage keeps its reservation)
            await gateway.settle(call, usage_seen)


async def count_tokens(gateway: Gateway, request: PluginRequest, call: Call) -> Response:
    body = parse_body(request)
    model = gateway.model(body.get("model"))
    call.info["model"] = model.name
    fields = _client_fields(request)
    if not any(d.count_tokens_url is not None for d in model.deployments):
        try:
            chat = front.count_tokens_request(body)
        except ConversionError as exc:
            raise InvalidRequest(str(exc)) from None
        counted = {"input_tokens": prompt_upper_bound(chat)}
        return Response(200, [JSON, call.overhead()], orjson.dumps(counted))

    async def send(current: Model, deployment: Deployment) -> bytes:
        url = deployment.count_tokens_url
        if url is None:
            raise Unsupported(f"provider type {deployment.provider.type!r} cannot count tokens")
        started = time.perf_counter()
        try:
            response = await deployment.post(
                gateway.outbound,
                url,
                orjson.dumps(dict(body, model=deployment.model)),
                headers=fields,
            )
            return await response.read()
        finally:
            call.upstream += time.perf_counter() - started

    raw, answered, deployment = await gateway.router.run(model, send, waited=call.waited)
    call.answered_by(answered, deployment)
    return Response(200, [JSON, call.overhead()], raw)
