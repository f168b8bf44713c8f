"""OpenAI chat completions -> Gemini ``generateContent`` / ``streamGenerateContent``, and back.

Request: system/developer messages become ``systemInstruction``; turns become
``contents`` (role ``user`` / ``model``, consecutive turns of one role merged) of
``parts``: ``text``, ``inlineData`` (``data:`` URLs), ``fileData`` (other URLs),
``functionCall`` (assistant tool calls) and ``functionResponse`` (tool messages, named
after the call they answer; a result that is not a JSON object is wrapped as
``{"result": ...}``).  Tools become ``functionDeclarations``; ``tool_choice`` becomes
``toolConfig.functionCallingConfig`` (AUTO / ANY / NONE, ``allowedFunctionNames``);
sampling options and ``response_format`` go to ``generationConfig``
(``responseMimeType`` + ``responseSchema``).  JSON Schemas (tool parameters, response
schema) are rewritten into Gemini's OpenAPI subset by :mod:`.json_schema_to_gemini_schema`.

Gemini does not always give function calls ids, and its thinking models want each
call's ``thoughtSignature`` back on the next turn: a call's id is ``call_<hex>`` (or
Gemini's own id), followed by ``_sig_<signature>`` (in the URL-safe base64 alphabet)
when there is one, so the signature makes the round trip through the client and is
restored on the way back.  The other provider converters send the bare id.
"""

from __future__ import annotations

import mimetypes
import time
from typing import Any

from quiver.ai.converters.chat import (
    SIGNATURE_SEPARATOR,
    ConversionError,
    StreamError,
    assistant_message,
    chunk,
    completion,
    content_parts,
    data_url,
    dumps,
    embedding_inputs,
    embeddings_list,
    functions_of,
    image_url_of,
    json_error,
    json_schema_of,
    loads_arguments,
    max_tokens_of,
    messages_of,
    new_id,
    raw_error,
    stop_list,
    system_text,
    text_of,
    tool_choice_of,
    turns,
    usage,
    usage_chunk,
)
from quiver.ai.converters.json_schema_to_gemini_schema import json_schema_to_gemini

__all__ = [
    "StreamConverter",
    "convert_embeddings_request",
    "convert_embeddings_response",
    "convert_request",
    "convert_response",
    "error_message",
    "json_schema_to_gemini",
]

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def convert_request(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat-completions request as a ``generateContent`` body (the model is in the URL)."""
    system, rest = system_text(messages_of(chat))
    names: dict[str, str] = {}  # tool call id -> function name
    contents = turns(
        rest,
        _user_parts,
        lambda message: _model_parts(message, names),
        lambda message: _function_response(message, names),
        model_role="model",
        key="parts",
    )
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    _tools(chat, body)
    config = _generation_config(chat)
    if config:
        body["generationConfig"] = config
    return body


def _user_parts(content: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            parts.append(_media_part(image_url_of(part)))
        elif kind == "file":
            file = part.get("file")
            url = file.get("file_data") if isinstance(file, dict) else None
            if not isinstance(url, str) or data_url(url) is None:
                raise ConversionError("file parts need file.file_data as a base64 data: URL")
            parts.append(_media_part(url))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            kind = str(audio.get("format") or "wav")
            parts.append({"inlineData": {"mimeType": f"audio/{kind}", "data": audio.get("data")}})
        else:
            raise ConversionError(f"content part type {kind!r} is not supported by Gemini")
    return parts


def _media_part(url: str) -> dict[str, Any]:
    inline = data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    file_data = {"fileUri": url}
    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
    if guessed:
        file_data = {"mimeType": guessed, "fileUri": url}
    return {"fileData": file_data}


def _model_parts(message: dict[str, Any], names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = text_of(message.get("content"))
    if text:
        parts.append({"text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = function.get("name")
        call_id = call.get("id")
        if not isinstance(name, str) or not isinstance(call_id, str):
            raise ConversionError("each tool call needs an id and function.name")
        names[call_id] = name
        part: dict[str, Any] = {
            "functionCall": {"name": name, "args": loads_arguments(function.get("arguments"))}
        }
        _, _, signature = call_id.partition(SIGNATURE_SEPARATOR)
        if signature:
            # back from the URL-safe alphabet of the id to standard base64
            padding = "=" * (-len(signature) % 4)
            part["thoughtSignature"] = signature.replace("-", "+").replace("_", "/") + padding
        parts.append(part)
    return parts


def _function_response(message: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise ConversionError("a tool message must answer a tool call of an earlier message")
    text = text_of(message.get("content"))
    result = loads_arguments(text) if text.startswith("{") else {}
    return {"functionResponse": {"name": name, "response": result or {"result": text}}}


def _tools(chat: dict[str, Any], body: dict[str, Any]) -> None:
    functions = functions_of(chat)
    if not functions:
        return
    declarations = []
    for function in functions:
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if isinstance(parameters, dict) and parameters.get("properties"):
            declaration["parameters"] = json_schema_to_gemini(parameters)
        declarations.append(declaration)
    body["tools"] = [{"functionDeclarations": declarations}]
    mode, name = tool_choice_of(chat)
    if mode == "auto":
        return
    config: dict[str, Any] = {"mode": {"none": "NONE", "required": "ANY"}.get(mode, "ANY")}
    if name is not None:
        config["allowedFunctionNames"] = [name]
    body["toolConfig"] = {"functionCallingConfig": config}


def _generation_config(chat: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ):
        if chat.get(source) is not None:
            config[target] = chat[source]
    if chat.get("n") not in (None, 1):
        config["candidateCount"] = chat["n"]
    max_tokens = max_tokens_of(chat)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = stop_list(chat.get("stop"))
    if stop:
        config["stopSequences"] = stop
    wanted = json_schema_of(chat)
    if wanted is not None:
        config["responseMimeType"] = "application/json"
        if wanted[0] == "json_schema":
            config["responseSchema"] = json_schema_to_gemini(wanted[1])
    return config


def _call_id(function_call: dict[str, Any], signature: Any) -> str:
    call_id = function_call.get("id")
    if not isinstance(call_id, str) or not call_id:
        call_id = new_id("call_")
    if isinstance(signature, str) and signature:
        # ids travel through clients and other providers: only [A-Za-z0-9_-] in them
        safe = signature.replace("+", "-").replace("/", "_").rstrip("=")
        call_id += SIGNATURE_SEPARATOR + safe
    return call_id


def _tool_call(part: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    function_call = part["functionCall"]
    call: dict[str, Any] = {} if index is None else {"index": index}
    call["id"] = _call_id(function_call, part.get("thoughtSignature"))
    call["type"] = "function"
    call["function"] = {
        "name": function_call.get("name"),
        "arguments": dumps(function_call.get("args") or {}),
    }
    return call


def _usage(meta: dict[str, Any] | None) -> dict[str, Any]:
    meta = meta or {}
    prompt = (meta.get("promptTokenCount") or 0) + (meta.get("toolUsePromptTokenCount") or 0)
    # thinking tokens are billed as output tokens
    output = (meta.get("candidatesTokenCount") or 0) + (meta.get("thoughtsTokenCount") or 0)
    return usage(prompt, output, meta.get("cachedContentTokenCount") or 0)


def _finish(reason: Any, has_calls: bool) -> str:
    finish = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if has_calls and finish == "stop" else finish


def convert_response(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A ``GenerateContentResponse`` as a ``chat.completion`` (one choice per candidate)."""
    choices = []
    for position, candidate in enumerate(body.get("candidates") or ()):
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in (candidate.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                calls.append(_tool_call(part))
            elif "text" in part and not part.get("thought"):
                texts.append(part["text"])
        message = assistant_message(texts, calls)
        choices.append(
            {
                "index": candidate.get("index", position),
                "message": message,
                "logprobs": None,
                "finish_reason": _finish(candidate.get("finishReason"), bool(calls)),
            }
        )
    if not choices:  # the prompt itself was blocked (promptFeedback.blockReason)
        message = {"role": "assistant", "content": "", "refusal": None}
        choices.append(
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "content_filter"}
        )
    out = completion(
        "chatcmpl-" + str(body.get("responseId") or new_id("")),
        int(time.time()),
        model,
        choices[0]["message"],
        choices[0]["finish_reason"],
        _usage(body.get("usageMetadata")),
    )
    out["choices"] = choices
    return out


class StreamConverter:
    """``streamGenerateContent?alt=sse`` events (parsed ``data``) -> chat chunks."""

    def __init__(self, model: str, completion_id: str, created: int) -> None:
        self.model = model
        self.completion_id = completion_id
        self.created = created
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None
        self._meta: dict[str, Any] | None = None
        self._started = False
        self._calls = 0

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return chunk(self.completion_id, self.created, self.model, delta, finish_reason)

    def feed(self, event: Any) -> list[dict[str, Any]]:
        """One parsed SSE ``data`` object (a partial ``GenerateContentResponse``) -> chunks."""
        error = event.get("error")
        if isinstance(error, dict):
            raise StreamError(str(error.get("status") or "error"), str(error.get("message") or ""))
        out: list[dict[str, Any]] = []
        if not self._started:
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if event.get("usageMetadata"):
            self._meta = event["usageMetadata"]
        candidates = event.get("candidates")
        if not candidates:
            if (event.get("promptFeedback") or {}).get("blockReason"):
                self.finish_reason = "content_filter"
                out.append(self._chunk({}, self.finish_reason))
            return out
        candidate = candidates[0]
        for part in (candidate.get("content") or {}).get("parts") or ():
            if "functionCall" in part:
                call = _tool_call(part, self._calls)
                self._calls += 1
                out.append(self._chunk({"tool_calls": [call]}))
            elif part.get("text") and not part.get("thought"):
                out.append(self._chunk({"content": part["text"]}))
        reason = candidate.get("finishReason")
        if reason and self.finish_reason is None:
            self.finish_reason = _finish(reason, self._calls > 0)
            out.append(self._chunk({}, self.finish_reason))
        return out

    def finish(self) -> list[dict[str, Any]]:
        """The final ``choices: []`` chunk with the usage of the whole call."""
        self.usage = _usage(self._meta)
        return [usage_chunk(self.completion_id, self.created, self.model, self.usage)]


def convert_embeddings_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI embeddings request as a ``batchEmbedContents`` body."""
    dimensions = body.get("dimensions")
    requests = []
    for text in embedding_inputs(body):
        request: dict[str, Any] = {
            "model": f"models/{model}",
            "content": {"parts": [{"text": text}]},
        }
        if dimensions is not None:
            request["outputDimensionality"] = dimensions
        requests.append(request)
    return {"requests": requests}


def convert_embeddings_response(
    body: dict[str, Any], model: str, n_inputs: int, encoding_format: str = "float"
) -> dict[str, Any]:
    """A ``batchEmbedContents`` response as an OpenAI embeddings list.

    Gemini reports no token count here: ``usage`` is 0 and left to a local count.
    """
    vectors = [item.get("values") or [] for item in body.get("embeddings") or ()]
    if len(vectors) != n_inputs:
        raise ValueError(f"Gemini returned {len(vectors)} embeddings for {n_inputs} inputs")
    return embeddings_list(vectors, model, 0, encoding_format)


def error_message(status: int, body: bytes) -> tuple[str, str]:
    """``(status name, message)`` of a Google API error (``{"error": {"status", ...}}``)."""
    parsed = json_error(status, body)
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return str(error.get("status") or f"http_{status}"), str(error.get("message") or "")
    return raw_error(status, body)
