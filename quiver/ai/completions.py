"""A chat completion from any provider, in the canonical format (OpenAI chat
completions as plain dicts).

A provider that speaks OpenAI's chat API gets the request with ``model`` replaced;
any other gets it through its converter (``quiver.ai.converters.openai_chat_to_<p>``:
``convert_request``, ``convert_response`` and a ``StreamConverter``).  The fronts use
:func:`complete` and :func:`stream` when the client's format differs from the
provider's; when they match they pass bodies through themselves.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

import orjson

from quiver.ai.converters import (
    openai_chat_to_anthropic_messages,
    openai_chat_to_bedrock_converse,
    openai_chat_to_gemini,
)
from quiver.ai.converters.chat import ConversionError, StreamError, new_id
from quiver.ai.errors import InvalidRequest, ProviderUnavailable, Unsupported
from quiver.ai.gateway import Call, Gateway
from quiver.ai.router import Model
from quiver.ai.transports.eventstream import EventStreamDecoder, EventStreamError
from quiver.ai.transports.sse import SSEParser
from quiver.ai.upstream import Deployment
from quiver.plugins.outbound import OutboundResponse


class ProviderStream(Protocol):
    usage: dict[str, int] | None

    def feed(self, event: Any) -> list[dict[str, Any]]: ...
    def finish(self) -> list[dict[str, Any]]: ...


class ProviderConverter(Protocol):
    """What a provider-side converter module exposes (AI_SPEC: converters)."""

    def convert_request(self, chat: dict[str, Any], model: str) -> dict[str, Any]: ...
    def convert_response(self, body: dict[str, Any], model: str) -> dict[str, Any]: ...
    def stream_converter(self, model: str, completion_id: str, created: int) -> ProviderStream: ...


class _Module:
    """A converter module seen through :class:`ProviderConverter`."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def convert_request(self, chat: dict[str, Any], model: str) -> dict[str, Any]:
        result: dict[str, Any] = self.module.convert_request(chat, model)
        return result

    def convert_response(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        result: dict[str, Any] = self.module.convert_response(body, model)
        return result

    def stream_converter(self, model: str, completion_id: str, created: int) -> ProviderStream:
        converter: ProviderStream = self.module.StreamConverter(model, completion_id, created)
        return converter


#: converters by the wire format of the provider (OpenAI-like providers need none)
CONVERTERS: dict[str, ProviderConverter] = {
    "anthropic": _Module(openai_chat_to_anthropic_messages),
    "gemini": _Module(openai_chat_to_gemini),
    "bedrock": _Module(openai_chat_to_bedrock_converse),
}


def converter_of(deployment: Deployment) -> ProviderConverter | None:
    wire = deployment.kind.wire
    if wire == "openai":
        return None
    converter = CONVERTERS.get(wire)
    if converter is None:
        raise Unsupported(f"provider type {deployment.provider.type!r} is not available")
    return converter


async def post_chat(
    gateway: Gateway, deployment: Deployment, chat: dict[str, Any], call: Call, *, stream: bool
) -> OutboundResponse:
    """Send ``chat`` to ``deployment`` in its own format; the response once its head is in."""
    converter = converter_of(deployment)
    if converter is None:
        body = dict(chat, model=deployment.model)
        if stream:
            body["stream"] = True
            if deployment.kind.stream_options:
                options = chat.get("stream_options")
                body["stream_options"] = {**(options or {}), "include_usage": True}
            else:
                body.pop("stream_options", None)
        if deployment.kind.dialect is not None:
            body = deployment.kind.dialect(body)
    else:
        try:
            body = converter.convert_request(dict(chat, stream=stream), deployment.model)
        except ConversionError as exc:
            raise InvalidRequest(str(exc)) from None
    url = deployment.stream_url if stream else deployment.chat_url
    started = time.perf_counter()
    try:
        return await deployment.post(gateway.outbound, url, orjson.dumps(body))
    finally:
        call.upstream += time.perf_counter() - started


async def read_answer(response: OutboundResponse, call: Call) -> bytes:
    """A provider's whole answer, the time spent reading it counted as upstream time."""
    started = time.perf_counter()
    try:
        return await response.read()
    finally:
        call.upstream += time.perf_counter() - started


def json_answer(raw: bytes, deployment: Deployment) -> Any:
    """A provider's answer parsed as JSON; ProviderUnavailable when it is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProviderUnavailable(
            f"{deployment.provider.name} answered something that is not JSON",
            provider=deployment.provider.name,
        ) from None


async def complete(
    gateway: Gateway,
    model: Model,
    chat: dict[str, Any],
    call: Call,
    prefer: Deployment | None = None,
) -> tuple[dict[str, Any], Model, Deployment]:
    """A ``chat.completion`` for ``chat`` from whichever deployment answers (``prefer``
    tried first)."""

    async def send(current: Model, deployment: Deployment) -> dict[str, Any]:
        await gateway.admit_deployment(call, current, deployment, chat)
        response = await post_chat(gateway, deployment, chat, call, stream=False)
        body = json_answer(await read_answer(response, call), deployment)
        converter = converter_of(deployment)
        if converter is None:
            return dict(body)
        return converter.convert_response(body, current.name)

    completion, answered, deployment = await gateway.router.run(model, send, prefer, call.waited)
    call.answered_by(answered, deployment)
    usage = completion.get("usage")
    if isinstance(usage, dict):
        call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    return completion, answered, deployment


async def stream(
    gateway: Gateway,
    model: Model,
    chat: dict[str, Any],
    call: Call,
    prefer: Deployment | None = None,
) -> tuple[AsyncIterator[dict[str, Any]], Model, Deployment]:
    """The ``chat.completion.chunk`` dicts for ``chat``, ending with one ``choices: []``
    chunk carrying the usage; the provider is chosen (and its head in) on return.  The
    first chunk's time and the usage are noted on ``call`` as the chunks come."""

    async def send(current: Model, deployment: Deployment) -> OutboundResponse:
        await gateway.admit_deployment(call, current, deployment, chat)
        return await post_chat(gateway, deployment, chat, call, stream=True)

    response, answered, deployment = await gateway.router.run(model, send, prefer, call.waited)
    call.answered_by(answered, deployment)
    converter = converter_of(deployment)
    if converter is None:
        return _noted(_openai_chunks(response, deployment), call), answered, deployment
    created = int(time.time())
    state = converter.stream_converter(answered.name, new_id("chatcmpl-"), created)
    return _noted(_converted_chunks(response, state, deployment), call), answered, deployment


async def _noted(
    chunks: AsyncIterator[dict[str, Any]], call: Call
) -> AsyncIterator[dict[str, Any]]:
    """``chunks`` as they come, the first one's time and any ``usage`` noted on ``call``."""
    first = True
    async for chunk in chunks:
        if first:
            call.first_token()
            first = False
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        yield chunk


async def _openai_chunks(
    response: OutboundResponse, deployment: Deployment
) -> AsyncIterator[dict[str, Any]]:
    parser = SSEParser()
    try:
        async for piece in response.stream():
            for event in parser.feed(piece):
                if event.data == "[DONE]":
                    continue
                try:
                    chunk = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(chunk, dict):
                    error = chunk.get("error")
                    if error is not None:  # (the provider failed after its first bytes)
                        raise stream_failure(deployment, error)
                    yield chunk
    finally:
        response.close()


def stream_failure(deployment: Deployment, error: object) -> ProviderUnavailable:
    """An in-stream error a provider sent, as the error the front reports."""
    message = error.get("message") if isinstance(error, dict) else error
    name = deployment.provider.name
    return ProviderUnavailable(f"{name}: {message or 'the stream failed'}", provider=name)


async def _converted_chunks(
    response: OutboundResponse, state: ProviderStream, deployment: Deployment
) -> AsyncIterator[dict[str, Any]]:
    wire = deployment.kind.wire
    units = _bedrock_units(response) if wire == "bedrock" else _sse_units(response, wire)
    try:
        async for unit in units:
            try:
                chunks = state.feed(unit)
            except StreamError as exc:
                raise ProviderUnavailable(
                    f"{deployment.provider.name}: {exc}", provider=deployment.provider.name
                ) from None
            for chunk in chunks:
                yield chunk
        for chunk in state.finish():
            yield chunk
    finally:
        response.close()


async def _sse_units(response: OutboundResponse, wire: str) -> AsyncIterator[Any]:
    """A provider's SSE stream as its converter's units: Anthropic's named events as
    ``(name, data)``, Gemini's data alone."""
    parser = SSEParser()
    named = wire == "anthropic"
    async for piece in response.stream():
        for event in parser.feed(piece):
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                continue
            yield (event.event, data) if named else data


async def _bedrock_units(response: OutboundResponse) -> AsyncIterator[Any]:
    """A ConverseStream (AWS event stream) as ``(event type, payload)`` pairs."""
    decoder = EventStreamDecoder()
    async for piece in response.stream():
        try:
            messages = decoder.feed(piece)
        except EventStreamError as exc:
            raise ProviderUnavailable(f"bedrock stream: {exc}", provider="bedrock") from None
        for message in messages:
            headers = message.headers
            kind = headers.get(":event-type") or headers.get(":exception-type") or ""
            try:
                payload = orjson.loads(message.payload) if message.payload else {}
            except orjson.JSONDecodeError:
                payload = {}
            yield str(kind), payload
