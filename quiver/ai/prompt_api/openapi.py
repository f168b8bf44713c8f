"""The OpenAPI 3.1 document of a prompt API (``GET <path>/openapi.json``)."""

from __future__ import annotations

import re
from typing import Any

from quiver.config.ai_prompt import AIPrompt

#: the answer without ``output_schema``
TEXT_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"output": {"type": "string", "description": "The model's answer."}},
    "required": ["output"],
}
_PROBLEM: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "violations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"pointer": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}
_STREAM = (
    'With `Accept: text/event-stream`, server-sent events: `data: {"delta": "..."}` for '
    "each piece of the answer as the model writes it, then `event: done` with "
    '`data: {"output": ...}` (the whole answer, checked against the output schema) or '
    "`event: error` with a problem document."
)


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def document(prompt: AIPrompt, route: str, path: str) -> dict[str, Any]:
    """The document of the prompt API of ``route`` served at ``path``."""
    output = prompt.output_schema or TEXT_OUTPUT
    operation: dict[str, Any] = {
        "operationId": re.sub(r"[^A-Za-z0-9_]", "_", route),
        "summary": prompt.summary or f"Ask {prompt.model} through the {route} prompt",
        "requestBody": {
            "required": True,
            "description": "The variables of the prompt template.",
            "content": {"application/json": {"schema": prompt.variables_schema()}},
        },
        "responses": {
            "200": {
                "description": "The model's answer. " + _STREAM,
                "content": {
                    "application/json": {"schema": output},
                    "text/event-stream": {"schema": {"type": "string"}},
                },
            },
            "400": _problem("The body is not an object of variables matching their schema."),
            "429": _problem("A limit or budget of the gateway, or the provider's, is spent."),
            "502": _problem("The model failed, or its answer does not match the output schema."),
        },
    }
    if prompt.description:
        operation["description"] = prompt.description
    return {
        "openapi": "3.1.0",
        "info": {"title": prompt.summary or f"{route} prompt API", "version": "1"},
        "paths": {path: {"post": operation}},
        "components": {"schemas": {"Problem": _PROBLEM}},
    }
