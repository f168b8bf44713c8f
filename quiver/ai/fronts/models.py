"""OpenAI ``GET {prefix}/models`` and ``GET {prefix}/models/{name}``: the models the
route serves (answered from what the config compiled, no provider call)."""

from __future__ import annotations

from urllib.parse import unquote

import orjson

from quiver.ai.errors import ModelNotFound
from quiver.ai.gateway import JSON, Gateway
from quiver.plugins.responder import Response


def list_models(gateway: Gateway) -> Response:
    return Response(200, [JSON], gateway.models_body)


def retrieve_model(gateway: Gateway, name: str) -> Response:
    wanted = unquote(name)
    for entry in gateway.model_list:
        if entry["id"] == wanted:
            return Response(200, [JSON], orjson.dumps(entry))
    raise ModelNotFound(f"The model '{wanted}' does not exist", param="model")
