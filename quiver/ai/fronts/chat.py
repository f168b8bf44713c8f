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

from collections.abc import AsyncIterator
from typing import Any

import orjson

from quiver.ai.accounting.tokens import completion_estimate, estimate, prompt_estimate
from quiver.ai.completions import converter_of, json_answer, post_chat, read_answer
from quiver.ai.completions import stream as chunks_of
from quiver.ai.errors import AIError, InvalidRequest, stream_error
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
    call.info["model"] = model.name
    if gateway.accounting is not None:
        await gateway.admit(request, call, model, chat)
    try:
        if chat.get("stream") is True:
            return await _stream(gateway, chat, model, call)
        raw = await _complete(gateway, chat, model, call)
    except BaseException:
        await gateway.settle(call, None)
        raise
    if call.reservation is None and not call.held:  # (nothing reserved to correct)
        gateway.note_cost(call, call.usage_document())
    else:
        await gateway.settle(call, call.usage_document())
    return Response(200, [JSON, call.overhead()], raw)


async def _complete(gateway: Gateway, chat: dict[str, Any], model: Model, call: Call) -> bytes:
    async def send(current: Model, deployment: Deployment) -> bytes:
        if gateway.checks(deployment):
            await gateway.admit_deployment(call, current, deployment, chat)
        response = await post_chat(gateway, deployment, chat, call, stream=False)
        raw = await read_answer(response, call)
        converter = converter_of(deployment)
        if converter is None:
            return raw  # (as the provider sent it)
        body = json_answer(raw, deployment)
        return orjson.dumps(converter.convert_response(body, current.name))

    raw, answered, deployment = await gateway.router.run(model, send, waited=call.waited)
    call.answered_by(answered, deployment)
    try:
        completion = orjson.loads(raw)
    except orjson.JSONDecodeError:
        completion = None
    usage = completion.get("usage") if isinstance(completion, dict) else None
    if isinstance(usage, dict):
        call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
    elif isinstance(completion, dict):  # (a server that reports none: counted here)
        prompt, output = prompt_estimate(chat), completion_estimate(completion)
        call.usage(prompt, output)
        usage = {"prompt_tokens": prompt, "completion_tokens": output}
        completion["usage"] = {**usage, "total_tokens": prompt + output}
        return orjson.dumps(completion)
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

        response, answered, deployment = await gateway.router.run(model, send, waited=call.waited)
        call.answered_by(answered, deployment)
        exact = wants_usage and deployment.kind.exact_stream
        body = _relay(gateway, response, call, chat, wants_usage, exact)
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
    gateway: Gateway,
    response: OutboundResponse,
    call: Call,
    chat: dict[str, Any],
    wants_usage: bool,
    exact: bool,
) -> AsyncIterator[bytes]:
    """The provider's stream as the client asked for it, its usage noted on the way;
    ``exact``: the provider's bytes as they come."""
    parser = SSEParser()
    first = True
    sent_usage = False
    last: dict[str, Any] | None = None  # (the last chunk with choices)
    texts: list[str] = []  # (the answer, counted here if the provider reports no usage)
    seen: list[str] = []  # (exact: the events before any usage)
    try:
        async for piece in response.stream():
            if first:
                call.first_token()
                first = False
            if exact:
                # as sent; only the events that name usage are looked into (and, until
                # usage came, kept to count the answer if it never does: a chunk saying
                # ``usage: null`` is not the usage)
                for event in parser.feed(piece):
                    data = event.data
                    if '"usage"' in data:
                        _note_usage(call, data)
                    if call.usage_document() is not None:
                        continue
                    if data == "[DONE]":
                        piece = _with_usage(piece, seen, call, chat)
                    else:
                        seen.append(data)
                yield piece
                continue
            out = []
            for event in parser.feed(piece):
                if event.data == "[DONE]":
                    if call.usage_document() is None:
                        call.usage(prompt_estimate(chat), estimate("".join(texts)))
                    if wants_usage and not sent_usage and last is not None:
                        out.append(_usage_chunk(last, call))  # (Mistral's, moved)
                    out.append(_DONE)
                    continue
                try:
                    chunk = orjson.loads(event.data)
                except orjson.JSONDecodeError:
                    continue
                if not isinstance(chunk, dict):
                    continue
                usage = chunk.get("usage")
                if isinstance(usage, dict):
                    call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
                if "error" in chunk:  # (the provider's in-stream error: the client's too)
                    out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
                    continue
                if not chunk.get("choices"):
                    if wants_usage and isinstance(usage, dict):
                        sent_usage = True  # (the usage chunk the client asked for)
                        out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
                    # else the usage chunk the client did not ask for, or Azure's
                    # first chunk of prompt filter results
                    continue
                last = chunk
                if call.usage_document() is None:
                    texts.extend(_delta_texts(chunk))
                if wants_usage:
                    chunk["usage"] = None
                else:
                    chunk.pop("usage", None)
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
    try:
        async for chunk in chunks:
            if not wants_usage:
                chunk.pop("usage", None)
                if not chunk.get("choices"):
                    continue
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield _DONE
    except AIError as exc:  # (after the first bytes: told inside the stream, no [DONE])
        yield stream_error(exc, "openai")
    finally:
        await _settle_stream(gateway, call)


async def _settle_stream(gateway: Gateway, call: Call) -> None:
    """A finished stream settles to its usage; one cut before its usage came keeps
    what it reserved (it may have used all of it)."""
    usage = call.usage_document()
    if usage is not None:
        await gateway.settle(call, usage)


def _with_usage(piece: bytes, seen: list[str], call: Call, chat: dict[str, Any]) -> bytes:
    """``piece`` with a usage chunk before its [DONE], counted here: the provider sent
    none although it was asked (some OpenAI-compatible servers)."""
    texts: list[str] = []
    last: dict[str, Any] | None = None
    for data in seen:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(chunk, dict) and chunk.get("choices"):
            last = chunk
            texts.extend(_delta_texts(chunk))
    call.usage(prompt_estimate(chat), estimate("".join(texts)))
    done = piece.rfind(b"data: [DONE]")
    if last is None or done < 0:
        return piece  # ([DONE] cut across two pieces: counted, not told)
    return piece[:done] + _usage_chunk(last, call) + piece[done:]


def _delta_texts(chunk: dict[str, Any]) -> list[str]:
    texts = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            content = delta.get("content")
            if isinstance(content, str):
                texts.append(content)
            for tool_call in delta.get("tool_calls") or ():
                arguments = (tool_call.get("function") or {}).get("arguments")
                if isinstance(arguments, str):
                    texts.append(arguments)
    return texts


def _usage_chunk(last: dict[str, Any], call: Call) -> bytes:
    """The final ``choices: []`` chunk a provider put elsewhere (Mistral: on its last
    chunk with choices)."""
    usage = call.usage_document() or {"prompt_tokens": 0, "completion_tokens": 0}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    chunk: dict[str, Any] = {
        key: last[key] for key in ("id", "object", "created", "model") if key in last
    }
    chunk["choices"] = []
    chunk["usage"] = usage
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _note_usage(call: Call, data: str) -> None:
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    usage = chunk.get("usage") if isinstance(chunk, dict) else None
    if isinstance(usage, dict):
        call.usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
