"""OpenAI ``POST {prefix}/embeddings``: floats or base64 (little-endian float32).

To an OpenAI-like provider the request goes with only ``model`` replaced, so the
provider encodes the vectors as asked.  Gemini (``batchEmbedContents``, one call for
every input) and Bedrock (Titan text embeddings v2 ``invoke``, one call per input,
sent together) are reached through their converters, which encode base64 themselves.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from quiver.ai.accounting.tokens import estimate
from quiver.ai.converters import openai_chat_to_bedrock_converse as bedrock
from quiver.ai.converters import openai_chat_to_gemini as gemini
from quiver.ai.converters.chat import ConversionError, embedding_inputs
from quiver.ai.errors import InvalidRequest, ProviderUnavailable, Unsupported
from quiver.ai.fronts.chat import parse_body
from quiver.ai.gateway import JSON, Call, Gateway
from quiver.ai.router import Model
from quiver.ai.upstream import Deployment
from quiver.plugins.base import PluginRequest
from quiver.plugins.responder import Response


async def embeddings(gateway: Gateway, request: PluginRequest, call: Call) -> Response:
    body = parse_body(request)
    model = gateway.model(body.get("model"))
    call.info["model"] = model.name
    if "input" not in body:
        raise InvalidRequest("'input' is required", param="input")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        message = "'encoding_format' must be 'float' or 'base64'"
        raise InvalidRequest(message, param="encoding_format")

    async def send(current: Model, deployment: Deployment) -> bytes:
        url = deployment.embeddings_url
        if url is None:
            raise Unsupported(
                f"provider type {deployment.provider.type!r} has no embeddings API",
                param="model",
            )
        started = time.perf_counter()
        try:
            wire = deployment.kind.wire
            if wire == "openai":
                response = await deployment.post(
                    gateway.outbound, url, orjson.dumps(dict(body, model=deployment.model))
                )
                return await response.read()
            try:
                converted = await _converted(gateway, deployment, url, body, current.name)
            except ConversionError as exc:
                raise InvalidRequest(str(exc)) from None
            except (ValueError, TypeError, AttributeError) as exc:  # (an odd answer)
                raise ProviderUnavailable(
                    f"{deployment.provider.name}: {exc}", provider=deployment.provider.name
                ) from None
            return orjson.dumps(converted)
        finally:
            call.upstream += time.perf_counter() - started

    raw, answered, deployment = await gateway.router.run(model, send, waited=call.waited)
    call.answered_by(answered, deployment)
    try:
        usage = orjson.loads(raw).get("usage")
    except (orjson.JSONDecodeError, AttributeError):
        usage = None
    if isinstance(usage, dict):
        call.usage(usage.get("prompt_tokens"), 0)
    return Response(200, [JSON, call.overhead()], raw)


async def _converted(
    gateway: Gateway, deployment: Deployment, url: str, body: dict[str, Any], name: str
) -> dict[str, Any]:
    encoding = body.get("encoding_format", "float")
    if deployment.kind.wire == "gemini":
        request = gemini.convert_embeddings_request(body, deployment.model)
        response = await deployment.post(gateway.outbound, url, orjson.dumps(request))
        answer = orjson.loads(await response.read())
        count = len(request["requests"])
        converted = gemini.convert_embeddings_response(answer, name, count, encoding)
        # (Gemini reports no token count: Quiver's own estimate of the inputs)
        tokens = sum(estimate(text) for text in embedding_inputs(body))
        converted["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        return converted
    requests = bedrock.embeddings_requests(body, deployment.model)

    async def one(request: dict[str, Any]) -> dict[str, Any]:
        response = await deployment.post(gateway.outbound, url, orjson.dumps(request))
        answer: dict[str, Any] = orjson.loads(await response.read())
        return answer

    answers = await asyncio.gather(*(one(request) for request in requests))
    return bedrock.merge_embeddings_responses(list(answers), name, encoding)
