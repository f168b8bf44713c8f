"""OpenAI ``POST {prefix}/responses`` (and ``GET`` / ``DELETE {prefix}/responses/{id}``).

Every provider is reached through chat completions
(:mod:`quiver.ai.converters.openai_responses_to_openai_chat`): the request becomes a
chat request, the completion (or its chunks) the Responses API's response object (or
its event sequence).

A response id names the deployment that answered
(``resp_<deployment key>_<random>``, see :func:`quiver.ai.router.deployment_key`), so
that a follow-up with ``previous_response_id`` goes to that deployment first: the
one that holds the conversation (a provider-side cache, the same model version).
With ``store`` (the default, as in OpenAI's API) the conversation up to the response
is kept (:mod:`quiver.ai.stored`) and a follow-up continues it on any worker.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import orjson

from quiver.ai import completions
from quiver.ai.converters import openai_responses_to_openai_chat as front
from quiver.ai.converters.chat import ConversionError
from quiver.ai.errors import AIError, InvalidRequest
from quiver.ai.fronts.chat import parse_body
from quiver.ai.gateway import JSON, NO_CACHE, SSE, Call, Gateway
from quiver.ai.router import Model, deployment_key
from quiver.ai.stored import valid_id
from quiver.ai.transports.sse import event
from quiver.ai.upstream import Deployment
from quiver.plugins.base import PluginRequest
from quiver.plugins.responder import Response


def response_id(model: Model, deployment: Deployment) -> str:
    return f"resp_{deployment_key(model, deployment)}_{secrets.token_hex(12)}"


def _key_of(response_id: str) -> str:
    return response_id.removeprefix("resp_").partition("_")[0]


async def responses(gateway: Gateway, request: PluginRequest, call: Call) -> Response:
    body = parse_body(request)
    model = gateway.model(body.get("model"))
    call.info["model"] = model.name
    history: list[dict[str, Any]] = []
    prefer: Deployment | None = None
    previous = body.get("previous_response_id")
    if previous is not None:
        record = await _stored(gateway, previous, "previous_response_id")
        history = list(record.get("history") or [])
        prefer = gateway.router.find(model, _key_of(previous))
    try:
        chat = front.convert_request(body, history)
    except ConversionError as exc:
        raise InvalidRequest(str(exc)) from None
    chat.pop("stream", None)
    chat.pop("stream_options", None)
    await gateway.admit(request, call, model, chat)
    try:
        if body.get("stream") is True:
            return await _stream(gateway, call, body, chat, model, history, prefer)
        completion, answered, deployment = await completions.complete(
            gateway, model, chat, call, prefer
        )
    except BaseException:
        await gateway.settle(call, None)
        raise
    await gateway.settle(call, call.usage_document())
    identifier = response_id(answered, deployment)
    answer = front.convert_response(completion, body, identifier)
    answer["model"] = answered.name
    await _keep(gateway, body, answer, history, identifier)
    return Response(200, [JSON, call.overhead()], orjson.dumps(answer))


async def _stream(
    gateway: Gateway,
    call: Call,
    body: dict[str, Any],
    chat: dict[str, Any],
    model: Model,
    history: list[dict[str, Any]],
    prefer: Deployment | None,
) -> Response:
    chunks, answered, deployment = await completions.stream(gateway, model, chat, call, prefer)
    identifier = response_id(answered, deployment)
    converter = front.StreamConverter(answered.name, identifier, body)

    async def written() -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                events = converter.feed(chunk)
                if events:
                    yield _events(events)
            yield _events(converter.finish())
            if converter.response is not None:
                await _keep(gateway, body, converter.response, history, identifier)
        except AIError as exc:  # (after the first bytes: an error event, no completion)
            error = {"type": "error", "code": exc.code, "message": exc.message, "param": exc.param}
            yield event(orjson.dumps(error), b"error")
        finally:
            usage_seen = call.usage_document()
            if usage_seen is not None:
                await gateway.settle(call, usage_seen)

    return Response(200, [SSE, NO_CACHE, call.overhead()], written())


def _events(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(event(orjson.dumps(data), name.encode()) for name, data in events)


async def _keep(
    gateway: Gateway,
    body: dict[str, Any],
    answer: dict[str, Any],
    history: list[dict[str, Any]],
    identifier: str,
) -> None:
    if body.get("store") is False:
        return
    record = {
        "response": answer,
        "history": [*history, *front.messages_of(body, answer)],
    }
    await gateway.responses.put(identifier, record)


async def _stored(gateway: Gateway, identifier: object, param: str) -> dict[str, Any]:
    if not isinstance(identifier, str) or not valid_id(identifier):
        raise InvalidRequest(f"Invalid '{param}': {identifier!r}.", param=param)
    record = await gateway.responses.get(identifier)
    if record is None:
        raise InvalidRequest(
            f"Response with id '{identifier}' not found.", status=404, param=param, code="not_found"
        )
    return record


async def retrieve(gateway: Gateway, identifier: str) -> Response:
    record = await _stored(gateway, identifier, "response_id")
    return Response(200, [JSON], orjson.dumps(record["response"]))


async def delete(gateway: Gateway, identifier: str) -> Response:
    await _stored(gateway, identifier, "response_id")
    await gateway.responses.delete(identifier)
    answer = {"id": identifier, "object": "response.deleted", "deleted": True}
    return Response(200, [JSON], orjson.dumps(answer))
