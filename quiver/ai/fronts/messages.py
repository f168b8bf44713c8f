"""Anthropic ``POST {prefix}/messages`` and ``POST {prefix}/messages/count_tokens``.

To an ``anthropic`` provider the request goes as the client sent it with only
``model`` replaced (and the client's ``anthropic-version`` and ``anthropic-beta``
fields, when it sent them), and the answer (a stream too) comes back byte for
byte; the usage is read on the way (``message_start`` carries the input tokens,
``message_delta`` the output tokens).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from quiver.ai.errors import InvalidRequest, Unsupported
from quiver.ai.fronts.chat import parse_body
from quiver.ai.gateway import JSON, NO_CACHE, SSE, Call, Gateway
from quiver.ai.router import Model
from quiver.ai.transports.sse import SSEParser
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
    if not isinstance(body.get("messages"), list):
        raise InvalidRequest("messages: Field required", param="messages")
    await gateway.admit(request, call, model, body)
    try:
        return await _messages(gateway, request, call, body, model)
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

    response, answered, deployment = await gateway.router.run(model, send)
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
    fields = _client_fields(request)

    async def send(current: Model, deployment: Deployment) -> bytes:
        if deployment.count_tokens_url is None:
            raise Unsupported(
                f"provider type {deployment.provider.type!r} cannot count tokens here"
            )
        started = time.perf_counter()
        try:
            response = await deployment.post(
                gateway.outbound,
                deployment.count_tokens_url,
                orjson.dumps(dict(body, model=deployment.model)),
                headers=fields,
            )
            return await response.read()
        finally:
            call.upstream += time.perf_counter() - started

    raw, answered, deployment = await gateway.router.run(model, send)
    call.answered_by(answered, deployment)
    return Response(200, [JSON, call.overhead()], raw)
