"""OpenAI's wire format and its relatives: Azure OpenAI, Mistral, Ollama's /v1, others.

One module because they share the chat-completions and embeddings shapes; each
:class:`Flavor` records where a relative differs from OpenAI, as the real service does:
Azure takes the deployment from the path, wants ``api-version`` and an ``api-key``
header, and adds content-filter results (its first stream chunk has no choices at all);
Mistral rejects unknown body fields with 422 (``stream_options`` among them), takes
only 9-character alphanumeric tool call ids and puts usage on its last chunk unasked;
Mistral and Ollama stream a tool call whole; Ollama needs no key.  Errors keep each
service's own shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from tests.ai.mock_providers.openai_requests import (
    image_problem,
    prompt_of,
    sse,
    tool_order_problem,
)
from tests.ai.mock_providers.script import (
    Plan,
    base64_vector,
    failure,
    ident,
    plan,
    vector,
    words,
)
from tests.ai.mock_providers.server import (
    MockRequest,
    Reply,
    StreamReply,
    json_reply,
)

CREATED = 1_767_225_600  # 2026-01-01T00:00:00Z: answers are byte-for-byte repeatable
EMBEDDING_DIMENSIONS = 8
#: Azure's dated api-versions (2023-05-15 on, GA or -preview); others answer 404
AZURE_API_VERSION = re.compile(r"20(2[3-9])-\d{2}-\d{2}(-preview)?")
MISTRAL_CHAT_FIELDS = frozenset(
    [
        "model",
        "messages",
        "temperature",
        "top_p",
        "max_tokens",
        "stream",
        "stop",
        "random_seed",
        "response_format",
        "tools",
        "tool_choice",
        "presence_penalty",
        "frequency_penalty",
        "n",
        "prediction",
        "parallel_tool_calls",
        "prompt_mode",
        "safe_prompt",
    ]
)
MISTRAL_EMBEDDING_FIELDS = frozenset(
    ["model", "input", "output_dimension", "output_dtype", "encoding_format"]
)
AZURE_FILTER = {
    category: {"filtered": False, "severity": "safe"}
    for category in ("hate", "self_harm", "sexual", "violence")
}


@dataclass(frozen=True)
class Flavor:
    name: str  # the provider type the mock plays
    key: str | None  # the key it accepts (None: no authentication)
    models: tuple[str, ...]  # what GET /models lists
    owned_by: str = "system"


MISTRAL_TOOL_ID = re.compile(r"[a-zA-Z0-9]{9}")


def _mistral_tool_id(messages: list[Any]) -> str | None:
    """The first tool call id Mistral refuses (it takes 9 letters or digits only)."""
    for message in messages:
        ids = [call.get("id") for call in message.get("tool_calls") or []]
        if message.get("role") == "tool":
            ids.append(message.get("tool_call_id"))
        for value in ids:
            if not MISTRAL_TOOL_ID.fullmatch(str(value)):
                return str(value)
    return None


def _error(
    status: int, message: str, kind: str, code: Any = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class OpenAILike:
    """The handler of one flavor; ``path`` is the part after the flavor's prefix."""

    def __init__(self, flavor: Flavor) -> None:
        self.flavor = flavor

    # ------------------------------------------------------------------ dispatch

    async def handle(self, request: MockRequest) -> Reply | StreamReply:
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        path = request.path.split("?", 1)[0]
        if self.flavor.name == "azure-openai":
            return self._azure(request, path)
        if path == "/v1/models" and request.method == "GET":
            return self._models()
        if request.method != "POST":
            return self._not_found(request)
        body = _json(request)
        if not isinstance(body, dict):
            return json_reply(
                400, self._invalid("We could not parse the JSON body of your request.")
            )
        if path == "/v1/chat/completions":
            return self._chat(request, body, str(body.get("model", "")))
        if path == "/v1/embeddings":
            return self._embeddings(request, body, str(body.get("model", "")))
        return self._not_found(request)

    def _azure(self, request: MockRequest, path: str) -> Reply | StreamReply:
        version = request.query.get("api-version")
        if version is None or not AZURE_API_VERSION.fullmatch(version) or version < "2023-05-15":
            return json_reply(404, {"error": {"code": "404", "message": "Resource not found"}})
        parts = path.split("/")
        # /openai/deployments/{deployment}/{operation...}
        if len(parts) < 5 or parts[1:3] != ["openai", "deployments"] or request.method != "POST":
            return json_reply(404, {"error": {"code": "404", "message": "Resource not found"}})
        deployment, operation = parts[3], "/".join(parts[4:])
        body = _json(request)
        if not isinstance(body, dict):
            return json_reply(
                400, self._invalid("We could not parse the JSON body of your request.")
            )
        if operation == "chat/completions":
            return self._chat(request, body, deployment)
        if operation == "embeddings":
            return self._embeddings(request, body, deployment)
        return json_reply(404, {"error": {"code": "404", "message": "Resource not found"}})

    def _authenticate(self, request: MockRequest) -> Reply | None:
        key = self.flavor.key
        if key is None:
            return None
        if self.flavor.name == "azure-openai":
            if request.header("api-key") == key:
                return None
            return json_reply(
                401,
                {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to invalid subscription key or wrong API "
                        "endpoint. Make sure to provide a valid key for an active subscription "
                        "and use a correct regional API endpoint for your resource.",
                    }
                },
            )
        given = request.header("authorization")
        if given == f"Bearer {key}":
            return None
        if self.flavor.name == "mistral":
            return json_reply(401, {"detail": "Unauthorized"})
        if given is None:
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return json_reply(401, _error(401, message, "invalid_request_error"))
        shown = given.removeprefix("Bearer ")
        message = f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}."
        return json_reply(401, _error(401, message, "invalid_request_error", "invalid_api_key"))

    def _not_found(self, request: MockRequest) -> Reply:
        message = f"Invalid URL ({request.method} {request.path})"
        return json_reply(404, _error(404, message, "invalid_request_error"))

    def _invalid(self, message: str, param: str | None = None) -> dict[str, Any]:
        if self.flavor.name == "mistral":
            return {
                "object": "error",
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": None,
            }
        return _error(400, message, "invalid_request_error", None, param)

    def _extra_forbidden(self, body: dict[str, Any], allowed: frozenset[str]) -> Reply | None:
        extra = [name for name in body if name not in allowed]
        if not extra:
            return None
        detail = [
            {
                "type": "extra_forbidden",
                "loc": ["body", name],
                "msg": "Extra inputs are not permitted",
                "input": body[name],
            }
            for name in extra
        ]
        return json_reply(
            422,
            {
                "object": "error",
                "message": {"detail": detail},
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            },
        )

    # ------------------------------------------------------------------ failures

    def _failure(self, plan_: Plan, model: str) -> Reply:
        name = self.flavor.name
        retry = [("Retry-After", "1")]
        if plan_.failure == "429":
            if name == "azure-openai":
                message = (
                    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                    "version 2024-10-21 have exceeded call rate limit of your current OpenAI "
                    "S0 pricing tier. Please retry after 1 second."
                )
                body: dict[str, Any] = {"error": {"code": "429", "message": message}}
                return json_reply(429, body, [*retry, ("retry-after-ms", "1000")])
            if name == "mistral":
                body = {
                    "object": "error",
                    "message": "Requests rate limit exceeded",
                    "type": "rate_limited",
                    "param": None,
                    "code": "1300",
                }
                return json_reply(429, body, retry)
            message = (
                f"Rate limit reached for {model} in organization org-mock on requests per min "
                "(RPM): Limit 3, Used 3, Requested 1. Please try again in 1s."
            )
            return json_reply(429, _error(429, message, "requests", "rate_limit_exceeded"), retry)
        if plan_.failure == "500":
            if name == "mistral":
                body = {
                    "object": "error",
                    "message": "Service unavailable.",
                    "type": "internal_server_error",
                    "param": None,
                    "code": "1000",
                }
                return json_reply(500, body)
            message = "The server had an error while processing your request. Sorry about that!"
            return json_reply(500, _error(500, message, "server_error"))
        tokens = 128_000 + plan_.prompt_tokens
        if name == "mistral":
            body = {
                "object": "error",
                "message": f"Prompt contains {tokens} tokens and 0 draft tokens, too large "
                "for model with 131072 maximum context length",
                "type": "invalid_request_message_error",
                "param": None,
                "code": "3051",
            }
            return json_reply(400, body)
        if name == "ollama":
            message = "the input length exceeds the context length"
            return json_reply(400, _error(400, message, "invalid_request_error"))
        message = (
            "This model's maximum context length is 128000 tokens. However, your messages "
            f"resulted in {tokens} tokens. Please reduce the length of the messages."
        )
        return json_reply(
            400,
            _error(400, message, "invalid_request_error", "context_length_exceeded", "messages"),
        )

    # ------------------------------------------------------------------ models

    def _models(self) -> Reply:
        data = [
            {"id": model, "object": "model", "created": CREATED, "owned_by": self.flavor.owned_by}
            for model in self.flavor.models
        ]
        return json_reply(200, {"object": "list", "data": data})

    # ------------------------------------------------------------------ chat

    def _chat(self, request: MockRequest, body: dict[str, Any], model: str) -> Reply | StreamReply:
        name = self.flavor.name
        if name == "mistral" and (refused := self._extra_forbidden(body, MISTRAL_CHAT_FIELDS)):
            return refused
        if not model:
            return json_reply(400, self._invalid("you must provide a model parameter", "model"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            message = "[] is too short - 'messages'" if messages == [] else "Missing 'messages'"
            return json_reply(400, self._invalid(message, "messages"))
        if name in ("openai", "azure-openai", "mistral") and (
            problem := tool_order_problem(messages)
        ):
            return json_reply(400, self._invalid(problem, "messages"))
        if problem := image_problem(messages):
            return json_reply(400, self._invalid(problem, "messages"))
        if name == "mistral" and (bad := _mistral_tool_id(messages)) is not None:
            body = {
                "object": "error",
                "message": f"Tool call id was {bad} but must be a-z, A-Z, 0-9, with a length of 9.",
                "type": "invalid_function_call",
                "param": None,
                "code": "3280",
                "raw_status_code": 400,
            }
            return json_reply(400, body)
        kind = (body.get("response_format") or {}).get("type")
        if (
            name in ("openai", "azure-openai")
            and kind == "json_object"
            and (b"json" not in orjson.dumps(messages).lower())
        ):
            message = (
                "'messages' must contain the word 'json' in some form, to use "
                "'response_format' of type 'json_object'."
            )
            return json_reply(400, self._invalid(message, "messages"))
        stream = bool(body.get("stream"))
        options = body.get("stream_options")
        if options is not None and not stream:
            message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            return json_reply(400, self._invalid(message, "stream_options"))
        prompt = prompt_of(name, model, body)
        plan_ = plan(prompt)
        request.usage = (plan_.prompt_tokens, plan_.completion_tokens)
        if plan_.failure is not None:
            return self._failure(plan_, model)
        seed = request.body
        if not stream:
            return json_reply(
                200, self._completion(plan_, model, seed), delay=plan_.delay, cut=plan_.cut
            )
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        include_usage = include_usage and not plan_.no_usage
        obfuscate = name == "openai" and not (
            isinstance(options, dict) and options.get("include_obfuscation") is False
        )
        pieces = self._chunks(plan_, model, seed, include_usage, obfuscate)
        return StreamReply(
            200, sse(pieces, plan_), [("Content-Type", "text/event-stream; charset=utf-8")]
        )

    def _call_id(self, seed: bytes, index: int) -> str:
        if self.flavor.name == "mistral":
            return ident(seed + bytes([index]), 9)
        if self.flavor.name == "ollama":
            return ident(seed + bytes([index]), 8, "call_").lower()
        return ident(seed + bytes([index]), 24, "call_")

    def _completion_id(self, seed: bytes) -> str:
        if self.flavor.name == "mistral":
            return ident(seed, 32).lower()
        if self.flavor.name == "ollama":
            return f"chatcmpl-{int.from_bytes(seed[-2:] or b'1', 'big') % 1000}"
        return ident(seed, 29, "chatcmpl-")

    def _usage(self, plan_: Plan) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": plan_.prompt_tokens,
            "completion_tokens": plan_.completion_tokens,
            "total_tokens": plan_.prompt_tokens + plan_.completion_tokens,
        }
        if self.flavor.name in ("openai", "azure-openai"):
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
        return usage

    def _finish(self, plan_: Plan) -> str:
        if plan_.tool_calls:
            return "tool_calls"
        if plan_.refused:
            return "content_filter"
        return "length" if plan_.truncated else "stop"

    def _completion(self, plan_: Plan, model: str, seed: bytes) -> dict[str, Any]:
        name = self.flavor.name
        message: dict[str, Any] = {"role": "assistant", "content": plan_.text or None}
        if plan_.tool_calls:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": self._call_id(seed, i),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for i, call in enumerate(plan_.tool_calls)
            ]
        elif name == "mistral":
            message["tool_calls"] = None
        if name in ("openai", "azure-openai"):
            message["refusal"] = None
            message["annotations"] = []
        choice: dict[str, Any] = {"index": 0, "message": message}
        if name != "mistral":
            choice["logprobs"] = None
        choice["finish_reason"] = self._finish(plan_)
        result: dict[str, Any] = {
            "id": self._completion_id(seed),
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [choice],
            "usage": self._usage(plan_),
        }
        if name == "openai":
            result["service_tier"] = "default"
        if name in ("openai", "azure-openai", "ollama"):
            result["system_fingerprint"] = "fp_ollama" if name == "ollama" else "fp_mock0001"
        if plan_.no_usage:
            del result["usage"]
        if name == "azure-openai":
            choice["content_filter_results"] = AZURE_FILTER
            result["prompt_filter_results"] = [
                {"prompt_index": 0, "content_filter_results": AZURE_FILTER}
            ]
        return result

    def _chunks(
        self, plan_: Plan, model: str, seed: bytes, include_usage: bool, obfuscate: bool
    ) -> list[dict[str, Any]]:
        """The stream's chunks, in order (before ``[DONE]``)."""
        name = self.flavor.name
        chunk_id = self._completion_id(seed)
        chunks: list[dict[str, Any]] = []

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice: dict[str, Any] = {"index": 0, "delta": delta}
            if name != "mistral":
                choice["logprobs"] = None
            choice["finish_reason"] = finish
            if name == "azure-openai":
                choice["content_filter_results"] = {} if finish else AZURE_FILTER
            item: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
            }
            if name == "openai":
                item["service_tier"] = "default"
            if name in ("openai", "azure-openai", "ollama"):
                item["system_fingerprint"] = "fp_ollama" if name == "ollama" else "fp_mock0001"
            item["choices"] = [choice]
            if include_usage:
                item["usage"] = None
            if obfuscate:
                item["obfuscation"] = "Qx7"
            return item

        if name == "azure-openai":
            chunks.append(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": [
                        {"prompt_index": 0, "content_filter_results": AZURE_FILTER}
                    ],
                }
            )
        whole_calls = name in ("mistral", "ollama")
        if plan_.tool_calls:
            for i, call in enumerate(plan_.tool_calls):
                head = {
                    "index": i,
                    "id": self._call_id(seed, i),
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.arguments if whole_calls else "",
                    },
                }
                if whole_calls:
                    if i == 0:
                        calls = [
                            {
                                "index": j,
                                "id": self._call_id(seed, j),
                                "type": "function",
                                "function": {"name": c.name, "arguments": c.arguments},
                            }
                            for j, c in enumerate(plan_.tool_calls)
                        ]
                        chunks.append(
                            chunk({"role": "assistant", "content": "", "tool_calls": calls})
                        )
                    continue
                delta: dict[str, Any] = {"tool_calls": [head]}
                if i == 0:
                    delta = {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [head],
                        "refusal": None,
                    }
                chunks.append(chunk(delta))
                for fragment in call.fragments():
                    chunks.append(
                        chunk({"tool_calls": [{"index": i, "function": {"arguments": fragment}}]})
                    )
        else:
            first: dict[str, Any] = {"role": "assistant", "content": ""}
            if name in ("openai", "azure-openai"):
                first["refusal"] = None
            chunks.append(chunk(first))
            for piece in plan_.pieces():
                delta = {"content": piece}
                if name == "ollama":
                    delta = {"role": "assistant", "content": piece}
                chunks.append(chunk(delta))
        last = chunk({} if name != "mistral" else {"content": ""}, self._finish(plan_))
        if name == "mistral" and not (plan_.no_usage or plan_.null_usage):
            last["usage"] = self._usage(plan_)
        chunks.append(last)
        if include_usage and not plan_.null_usage:
            final = chunk({})
            final["choices"] = []
            final["usage"] = self._usage(plan_)
            chunks.append(final)
        return chunks

    # ------------------------------------------------------------------ embeddings

    def _embeddings(self, request: MockRequest, body: dict[str, Any], model: str) -> Reply:
        if self.flavor.name == "mistral" and (
            refused := self._extra_forbidden(body, MISTRAL_EMBEDDING_FIELDS)
        ):
            return refused
        if not model:
            return json_reply(400, self._invalid("you must provide a model parameter", "model"))
        raw = body.get("input")
        if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
            inputs: list[Any] = [raw]
        elif isinstance(raw, list) and raw:
            inputs = raw
        else:
            return json_reply(
                400, self._invalid("'input' : input must be a string or an array", "input")
            )
        texts = [item if isinstance(item, str) else " ".join(map(str, item)) for item in inputs]
        steering = texts[-1]
        prompt_tokens = sum(words(item) if isinstance(item, str) else len(item) for item in inputs)
        request.usage = (prompt_tokens, 0)
        failed = Plan(prompt_tokens=prompt_tokens)
        failed.failure = failure(steering, self.flavor.name, model)
        if failed.failure is not None:
            return self._failure(failed, model)
        dimensions = body.get("dimensions") or body.get("output_dimension") or EMBEDDING_DIMENSIONS
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return json_reply(
                400, self._invalid("encoding_format must be float or base64", "encoding_format")
            )
        data = []
        for index, text in enumerate(texts):
            values = vector(text, int(dimensions))
            embedding: Any = base64_vector(values) if encoding == "base64" else values
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        usage: dict[str, Any] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
        result: dict[str, Any] = {"object": "list", "data": data, "model": model, "usage": usage}
        if self.flavor.name == "mistral":
            usage["completion_tokens"] = 0
            result["id"] = ident(request.body, 32).lower()
        return json_reply(200, result)


def _json(request: MockRequest) -> Any:
    try:
        request.json = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return None
    return request.json
