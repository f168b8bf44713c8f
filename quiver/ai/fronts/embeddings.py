"""OpenAI ``POST {prefix}/embeddings``: floats or base64 (little-endian float32).

To an OpenAI-like provider the request goes with only ``model`` replaced, so the
provider encodes the vectors as asked.
"""

from __future__ import annotations

import time

import orjson

from quiver.ai.errors import InvalidRequest, Unsupported
from quiver.ai.fronts.chat import parse_body
from quiver.ai.gateway import JSON, Call, Gateway
from quiver.ai.router import Model
from quiver.ai.upstream import Deployment
from quiver.plugins.base import PluginRequest
from quiver.plugins.responder import Response


async def embeddings(gateway: Gateway, request: PluginRequest, call: Call) -> Response:
    body = parse_body(request)
    model = gateway.model(body.get("model"))
    if "input" not in body:
        raise InvalidRequest("'input' is required", param="input")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise InvalidRequest(
            "'encoding_format' must be 'float' or 'base64'", param="encoding_format"
        )

    async def send(current: Model, deployment: Deployment) -> bytes:
        if deployment.embeddings_url is None:
            raise Unsupported(
                f"provider type {deployment.provider.type!r} has no embeddings API",
                param="model",
            )
        if deployment.kind.wire != "openai":
            raise Unsupported(f"provider type {deployment.provider.type!r} is not available")
        body["model"] = deployment.model
        started = time.perf_counter()
        try:
            response = await deployment.post(
                gateway.outbound, deployment.embeddings_url, orjson.dumps(body)
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
        call.usage(usage.get("prompt_tokens"), 0)
    return Response(200, [JSON, call.overhead()], raw)
