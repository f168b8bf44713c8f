"""Google AI's Gemini API (v1beta): generateContent, streamGenerateContent, embeddings.

As the real API: the key comes in ``x-goog-api-key`` (or ``?key=``; none → 403
PERMISSION_DENIED, a wrong one → 400 API_KEY_INVALID), roles are ``user``/``model``
only, a stream is ``?alt=sse`` events separated by CRLF CRLF (without ``alt=sse`` one
JSON array), tool calls come whole as ``functionCall`` parts with finishReason STOP,
usage is ``usageMetadata``, and errors are ``{"error": {"code", "message", "status",
"details"}}``.  Request fields are read in camelCase or snake_case, as the service does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import orjson

from tests.ai.mock_providers.script import (
    Plan,
    Prompt,
    failure,
    ident,
    json_asked_in,
    plan,
    vector,
    words,
)
from tests.ai.mock_providers.server import CUT, Cut, MockRequest, Reply, StreamReply, json_reply

EMBEDDING_DIMENSIONS = 8
#: the fields of Gemini's Schema (an OpenAPI 3.0 subset) in ``parameters`` and
#: ``responseSchema``; ``parametersJsonSchema`` / ``responseJsonSchema`` take JSON Schema
SCHEMA_FIELDS = frozenset(
    [
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    ]
)
BLOCKED = [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]


def error(
    status: int, code: str, message: str, details: list[Any] | None = None, **options: Any
) -> Reply:
    body: dict[str, Any] = {"error": {"code": status, "message": message, "status": code}}
    if details:
        body["error"]["details"] = details
    return json_reply(status, body, **options)


def _get(data: dict[str, Any], camel: str, default: Any = None) -> Any:
    """A field by its camelCase name or its snake_case one."""
    if camel in data:
        return data[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return data.get(snake, default)


class Gemini:
    def __init__(self, key: str) -> None:
        self.key = key

    async def handle(self, request: MockRequest) -> Reply | StreamReply:
        given = request.header("x-goog-api-key") or request.query.get("key")
        if given is None:
            return error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if given != self.key:
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
            return error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details
            )
        path = request.path.split("?", 1)[0]
        prefix = "/v1beta/models/"
        if request.method != "POST" or not path.startswith(prefix) or ":" not in path:
            return error(404, "NOT_FOUND", "Requested entity was not found.")
        model, method = unquote(path[len(prefix) :]).rsplit(":", 1)
        try:
            body = request.json = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if not isinstance(body, dict):
            return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if method in ("generateContent", "streamGenerateContent", "countTokens"):
            return await self._generate(request, body, model, method)
        if method == "batchEmbedContents":
            return self._embed(request, body, model)
        if method == "embedContent":
            return self._embed(
                request, {"requests": [{"model": f"models/{model}", **body}]}, model, single=True
            )
        return error(
            404,
            "NOT_FOUND",
            f"models/{model} is not found for API version v1beta, or is not supported for "
            f"{method}.",
        )

    async def _generate(
        self, request: MockRequest, body: dict[str, Any], model: str, method: str
    ) -> Reply | StreamReply:
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return error(
                400,
                "INVALID_ARGUMENT",
                "* GenerateContentRequest.contents: contents is not specified\n",
            )
        calls = 0
        for content in contents:
            if content.get("role", "user") not in ("user", "model"):
                return error(400, "INVALID_ARGUMENT", "Please use a valid role: user, model.")
            parts = content.get("parts") or []
            if not parts:
                return error(
                    400,
                    "INVALID_ARGUMENT",
                    "* GenerateContentRequest.contents: contents.parts must not be empty.\n",
                )
            if any("text" in part and not part["text"] for part in parts):
                message = (
                    "Unable to submit request because it has an empty text parameter. Add a "
                    "value to the parameter and try again."
                )
                return error(400, "INVALID_ARGUMENT", message)
            for part in parts:
                inline = _get(part, "inlineData")
                if inline is not None and not (_get(inline, "mimeType") and inline.get("data")):
                    message = (
                        "Invalid value at 'contents.parts.inline_data': mime_type and data are "
                        "required."
                    )
                    return error(400, "INVALID_ARGUMENT", message)
            results = sum(1 for p in parts if _get(p, "functionResponse"))
            if results and not calls:
                message = (
                    "Please ensure that function response turn comes immediately after a "
                    "function call turn."
                )
                return error(400, "INVALID_ARGUMENT", message)
            if results and results != calls:
                message = (
                    "Please ensure that the number of function response parts is equal to the "
                    "number of function call parts of the function call turn."
                )
                return error(400, "INVALID_ARGUMENT", message)
            calls = sum(1 for p in parts if _get(p, "functionCall"))
        if (problem := _schemas_problem(body)) is not None:
            return error(400, "INVALID_ARGUMENT", problem)
        prompt = _prompt(model, body)
        plan_ = plan(prompt)
        if method == "countTokens":
            request.usage = (plan_.prompt_tokens, 0)
            return json_reply(200, {"totalTokens": plan_.prompt_tokens})
        request.usage = (plan_.prompt_tokens, plan_.completion_tokens)
        if plan_.failure == "429":
            details = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/"
                            "generate_content_free_tier_requests",
                            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        }
                    ],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"},
            ]
            message = "You exceeded your current quota, please check your plan and billing details."
            return error(
                429, "RESOURCE_EXHAUSTED", message, details, headers=[("Retry-After", "1")]
            )
        if plan_.failure == "500":
            message = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
            return error(500, "INTERNAL", message)
        if plan_.failure == "context":
            tokens = 1_048_576 + plan_.prompt_tokens
            message = (
                f"The input token count ({tokens}) exceeds the maximum number of tokens "
                "allowed (1048576)."
            )
            return error(400, "INVALID_ARGUMENT", message)
        response_id = ident(request.body, 22)
        if method == "generateContent":
            answer = _response(plan_, model, response_id, [plan_.text], True)
            return json_reply(200, answer, delay=plan_.delay, cut=plan_.cut)
        sse = request.query.get("alt") == "sse"
        kind = "text/event-stream" if sse else "application/json; charset=UTF-8"
        return StreamReply(200, _stream(plan_, model, response_id, sse), [("Content-Type", kind)])

    def _embed(
        self, request: MockRequest, body: dict[str, Any], model: str, single: bool = False
    ) -> Reply:
        items = body.get("requests")
        if not isinstance(items, list) or not items:
            return error(
                400,
                "INVALID_ARGUMENT",
                "* BatchEmbedContentsRequest.requests: requests is not specified\n",
            )
        embeddings = []
        total = 0
        for number, item in enumerate(items):
            if item.get("model") != f"models/{model}":
                message = (
                    f"Model names in requests[{number}] ({item.get('model')}) must match the "
                    f"model in the URL (models/{model})."
                )
                return error(400, "INVALID_ARGUMENT", message)
            text = " ".join(
                str(p.get("text", "")) for p in (item.get("content") or {}).get("parts", [])
            )
            failed = failure(text, "gemini", model)
            if failed == "429":
                return error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Resource has been exhausted (e.g. check quota).",
                    headers=[("Retry-After", "1")],
                )
            if failed == "context":
                message = "The input token count exceeds the maximum number of tokens allowed."
                return error(400, "INVALID_ARGUMENT", message)
            if failed is not None:
                return error(500, "INTERNAL", "An internal error has occurred.")
            total += words(text)
            dimensions = _get(item, "outputDimensionality") or EMBEDDING_DIMENSIONS
            embeddings.append({"values": vector(text, int(dimensions))})
        request.usage = (total, 0)
        if single:
            return json_reply(200, {"embedding": embeddings[0]})
        return json_reply(200, {"embeddings": embeddings})


def _unknown_field(schema: Any, where: str) -> str | None:
    """The first field of ``schema`` Gemini's Schema type does not have, as its error."""
    if not isinstance(schema, dict):
        return None
    for name, value in schema.items():
        if name not in SCHEMA_FIELDS:
            return (
                f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                "Cannot find field."
            )
        children: list[tuple[str, Any]] = []
        if name == "properties" and isinstance(value, dict):
            children = [(f"{where}.properties[{k}].value", v) for k, v in value.items()]
        elif name == "items":
            children = [(f"{where}.items", value)]
        elif name == "anyOf" and isinstance(value, list):
            children = [(f"{where}.any_of[{i}]", v) for i, v in enumerate(value)]
        for inner_where, inner in children:
            if (problem := _unknown_field(inner, inner_where)) is not None:
                return problem
    return None


def _schemas_problem(body: dict[str, Any]) -> str | None:
    for t, tool in enumerate(body.get("tools") or []):
        for d, declaration in enumerate(_get(tool, "functionDeclarations") or []):
            where = f"tools[{t}].function_declarations[{d}].parameters"
            if (problem := _unknown_field(declaration.get("parameters"), where)) is not None:
                return problem
    generation = _get(body, "generationConfig") or {}
    return _unknown_field(_get(generation, "responseSchema"), "generation_config.response_schema")


def _parts_text(parts: list[dict[str, Any]]) -> list[str]:
    texts = []
    for part in parts:
        if "text" in part:
            texts.append(str(part["text"]))
        call = _get(part, "functionCall")
        if call:
            texts += [str(call.get("name", "")), json.dumps(call.get("args", {}))]
        result = _get(part, "functionResponse")
        if result:
            texts.append(json.dumps(result.get("response", {})))
    return texts


def _result_text(response: Any) -> str:
    """What the model reads of a function's response: a lone string member as is (a
    tool's text output wrapped in an object), anything else as JSON."""
    if isinstance(response, dict) and len(response) == 1:
        [value] = response.values()
        if isinstance(value, str):
            return value
    return json.dumps(response)


def _prompt(model: str, body: dict[str, Any]) -> Prompt:
    prompt = Prompt("gemini", model)
    system_instruction = _get(body, "systemInstruction") or {}
    system = " ".join(_parts_text(system_instruction.get("parts", [])))
    prompt.texts.append(system)
    contents = body["contents"]
    for content in contents:
        prompt.texts += _parts_text(content.get("parts", []))
    for tool in body.get("tools") or []:
        for declaration in _get(tool, "functionDeclarations") or []:
            prompt.tools.append(str(declaration.get("name", "")))
            schema = (
                declaration.get("parameters") or _get(declaration, "parametersJsonSchema") or {}
            )
            prompt.texts += [
                str(declaration.get("name", "")),
                str(declaration.get("description", "")),
                json.dumps(schema),
            ]
    last_parts = contents[-1].get("parts", [])
    results = [_get(p, "functionResponse") for p in last_parts if _get(p, "functionResponse")]
    said = [p for p in last_parts if "text" in p]
    if contents[-1].get("role", "user") == "user" and results and not said:
        prompt.after_tool = True
        prompt.steering = " ".join(_result_text(r.get("response", {})) for r in results)
    else:
        users = [c for c in contents if c.get("role", "user") == "user"]
        prompt.steering = " ".join(
            str(p["text"]) for p in (users[-1].get("parts", []) if users else []) if "text" in p
        )
    config = _get(_get(body, "toolConfig") or {}, "functionCallingConfig") or {}
    mode = str(config.get("mode", "AUTO")).upper()
    allowed = _get(config, "allowedFunctionNames") or []
    if mode == "NONE":
        prompt.choice = "none"
    elif mode == "ANY":
        prompt.choice = allowed[0] if len(allowed) == 1 else "required"
    generation = _get(body, "generationConfig") or {}
    schema = _get(generation, "responseJsonSchema") or _get(generation, "responseSchema")
    if _get(generation, "responseMimeType") == "application/json":
        if schema:
            prompt.schema = schema
        else:
            prompt.json_object = True
    else:
        json_asked_in(prompt, system)
    cap = _get(generation, "maxOutputTokens")
    prompt.max_output = cap if isinstance(cap, int) else None
    return prompt


def _usage(plan_: Plan, candidates: int | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": plan_.prompt_tokens}
    if candidates is not None:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = plan_.prompt_tokens + (candidates or 0)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan_.prompt_tokens}]
    return usage


def _response(
    plan_: Plan,
    model: str,
    response_id: str,
    texts: list[str],
    last: bool,
    candidates: int | None = None,
) -> dict[str, Any]:
    if plan_.tool_calls:
        parts: list[dict[str, Any]] = [
            {"functionCall": {"name": c.name, "args": json.loads(c.arguments)}}
            for c in plan_.tool_calls
        ]
    else:
        parts = [{"text": text} for text in texts]
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if last:
        candidate["finishReason"] = "MAX_TOKENS" if plan_.truncated else "STOP"
    if plan_.refused:  # (a blocked answer has no content, only its safety ratings)
        candidate = {"finishReason": "SAFETY", "safetyRatings": BLOCKED}
    candidate["index"] = 0
    return {
        "candidates": [candidate],
        "usageMetadata": _usage(plan_, plan_.completion_tokens if last else candidates),
        "modelVersion": model,
        "responseId": response_id,
    }


async def _stream(
    plan_: Plan, model: str, response_id: str, sse: bool
) -> AsyncIterator[bytes | Cut]:
    if plan_.tool_calls:
        chunks = [_response(plan_, model, response_id, [], True)]
    else:
        pieces = plan_.pieces()
        chunks = []
        said = 0
        for number, piece in enumerate(pieces):
            said += words(piece)
            chunks.append(
                _response(plan_, model, response_id, [piece], number == len(pieces) - 1, said)
            )
    if plan_.delay:
        await asyncio.sleep(plan_.delay)
    if plan_.broken:  # the error object is the stream's last element
        failure = {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
        chunks = [*chunks[:2], {"error": failure}]
    for number, chunk in enumerate(chunks):
        if plan_.cut and number == 2:
            yield CUT
            return
        data = orjson.dumps(chunk)
        if sse:
            yield b"data: " + data + b"\r\n\r\n"
        else:
            yield (
                (b"[" if number == 0 else b"\n,\r\n")
                + data
                + (b"]" if number == len(chunks) - 1 else b"")
            )
