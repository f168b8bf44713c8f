"""OpenAI chat completions -> Bedrock Converse / ConverseStream, and Titan text embeddings.

Request: system/developer messages become ``system`` text blocks; turns become
``messages`` of content blocks (consecutive turns of one role merged: Converse wants
them alternating): ``text``, ``image`` (``data:`` URLs only: Converse takes bytes or S3
locations, and converters do no I/O), ``document`` (PDF files), ``toolUse`` and
``toolResult`` (one user turn carries the results of parallel calls).  Tools become
``toolConfig`` (``toolSpec`` with ``inputSchema.json``; ``tool_choice`` auto / any /
tool; Converse has no "none": the tools stay declared when the history uses them,
otherwise they are left out).  Converse refuses tool blocks without a ``toolConfig``, so
tools used in the history but not declared are declared with an empty schema.
``max_tokens``, ``temperature``, ``top_p``, ``stop`` go to ``inferenceConfig``;
``response_format`` becomes a system instruction (it works with every model Bedrock
hosts).

Stream: the event-stream messages ``messageStart``, ``contentBlockStart`` (tool use),
``contentBlockDelta`` (``text`` / ``toolUse.input`` fragments), ``contentBlockStop``,
``messageStop`` (``stopReason``) and ``metadata`` (``usage``); an exception message
(``throttlingException``...) raises :class:`~quiver.ai.converters.chat.StreamError`.

Embeddings use the Titan text embeddings v2 ``invoke`` body, one text per call:
:func:`embeddings_requests` gives one body per input and
:func:`merge_embeddings_responses` puts the answers back into one OpenAI list.
"""

from __future__ import annotations

import re
import time
from typing import Any

from quiver.ai.converters.chat import (
    ConversionError,
    StreamError,
    assistant_message,
    bare_call_id,
    chunk,
    completion,
    content_parts,
    data_url,
    embedding_inputs,
    embeddings_list,
    functions_of,
    image_url_of,
    json_error,
    json_instruction,
    json_schema_of,
    loads_arguments,
    max_tokens_of,
    messages_of,
    new_id,
    raw_error,
    stop_list,
    system_text,
    text_of,
    tool_call,
    tool_choice_of,
    turns,
    usage,
    usage_chunk,
)

__all__ = [
    "StreamConverter",
    "convert_embeddings_request",
    "convert_embeddings_response",
    "convert_request",
    "convert_response",
    "embeddings_requests",
    "error_message",
    "merge_embeddings_responses",
]

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
# Converse document names: alphanumerics, single spaces, hyphens, parentheses, brackets
_DOCUMENT_NAME = re.compile(r"[^A-Za-z0-9\-()\[\] ]+")
_ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def convert_request(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat-completions request as a Converse body (the model id is in the URL)."""
    system, rest = system_text(messages_of(chat))
    used_tools: dict[str, None] = {}
    messages = turns(
        rest,
        _user_blocks,
        lambda message: _assistant_blocks(message, used_tools),
        _tool_result,
    )
    body: dict[str, Any] = {"messages": messages}
    wanted = json_schema_of(chat)
    if wanted is not None:
        instruction = json_instruction(*wanted)
        system = f"{system}\n\n{instruction}" if system else instruction
    if system:
        body["system"] = [{"text": system}]
    config: dict[str, Any] = {}
    max_tokens = max_tokens_of(chat)
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    if chat.get("temperature") is not None:
        config["temperature"] = chat["temperature"]
    if chat.get("top_p") is not None:
        config["topP"] = chat["top_p"]
    stop = stop_list(chat.get("stop"))
    if stop:
        config["stopSequences"] = stop
    if config:
        body["inferenceConfig"] = config
    _tools(chat, body, used_tools)
    return body


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            inline = data_url(image_url_of(part))
            if inline is None:
                raise ConversionError(
                    "Bedrock takes images as data: URLs only (base64), not as links"
                )
            fmt = _IMAGE_FORMATS.get(inline[0])
            if fmt is None:
                raise ConversionError(f"image type {inline[0]} is not supported by Bedrock")
            blocks.append({"image": {"format": fmt, "source": {"bytes": inline[1]}}})
        elif kind == "file":
            blocks.append(_document(part))
        else:
            raise ConversionError(f"content part type {kind!r} is not supported by Bedrock")
    return blocks


def _document(part: dict[str, Any]) -> dict[str, Any]:
    file = part.get("file")
    inline = data_url(file.get("file_data") or "") if isinstance(file, dict) else None
    if inline is None or inline[0] != "application/pdf":
        raise ConversionError("file parts need file.file_data as a base64 PDF data: URL")
    raw_name = str((file or {}).get("filename") or "document").rsplit(".", 1)[0]
    name = " ".join(_DOCUMENT_NAME.sub(" ", raw_name).split()) or "document"
    return {"document": {"format": "pdf", "name": name, "source": {"bytes": inline[1]}}}


def _assistant_blocks(message: dict[str, Any], used_tools: dict[str, None]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = text_of(message.get("content"))
    if text:
        blocks.append({"text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = function.get("name")
        if not isinstance(name, str) or not isinstance(call.get("id"), str):
            raise ConversionError("each tool call needs an id and function.name")
        used_tools[name] = None
        tool_use = {
            "toolUseId": bare_call_id(call["id"]),
            "name": name,
            "input": loads_arguments(function.get("arguments")),
        }
        blocks.append({"toolUse": tool_use})
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise ConversionError("a tool message needs tool_call_id")
    text = text_of(message.get("content"))
    # Converse wants at least one non-blank content block in a tool result
    result = {"toolUseId": bare_call_id(call_id), "content": [{"text": text or "(empty)"}]}
    return {"toolResult": result}


def _tools(chat: dict[str, Any], body: dict[str, Any], used_tools: dict[str, None]) -> None:
    functions = functions_of(chat)
    mode, name = tool_choice_of(chat)
    if mode == "none" and not used_tools:
        return
    tools = []
    for function in functions:
        spec: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            spec["description"] = function["description"]
        spec["inputSchema"] = {"json": function.get("parameters") or _EMPTY_SCHEMA}
        tools.append({"toolSpec": spec})
    declared = {function["name"] for function in functions}
    tools.extend(
        {"toolSpec": {"name": used, "inputSchema": {"json": _EMPTY_SCHEMA}}}
        for used in used_tools
        if used not in declared
    )
    if not tools:
        return
    config: dict[str, Any] = {"tools": tools}
    if functions and mode == "required":
        config["toolChoice"] = {"any": {}}
    elif functions and mode == "function":
        config["toolChoice"] = {"tool": {"name": name}}
    body["toolConfig"] = config


def _usage(raw: dict[str, Any] | None) -> dict[str, Any]:
    raw = raw or {}
    cached = raw.get("cacheReadInputTokens") or 0
    prompt = (raw.get("inputTokens") or 0) + (raw.get("cacheWriteInputTokens") or 0) + cached
    return usage(prompt, raw.get("outputTokens") or 0, cached)


def convert_response(body: dict[str, Any], model: str) -> dict[str, Any]:
    """A Converse response as a ``chat.completion``."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    message = ((body.get("output") or {}).get("message")) or {}
    for block in message.get("content") or ():
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            tool_use = block["toolUse"]
            calls.append(
                tool_call(tool_use.get("toolUseId"), tool_use.get("name"), tool_use.get("input"))
            )
    out = assistant_message(texts, calls)
    reason = body.get("stopReason")
    return completion(
        new_id("chatcmpl-"),
        int(time.time()),
        model,
        out,
        FINISH_REASONS.get(reason, "stop") if reason else None,
        _usage(body.get("usage")),
    )


class StreamConverter:
    """ConverseStream ``(event_type, payload)`` pairs -> ``chat.completion.chunk`` dicts."""

    def __init__(self, model: str, completion_id: str, created: int) -> None:
        self.model = model
        self.completion_id = completion_id
        self.created = created
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None
        self._raw_usage: dict[str, Any] | None = None
        self._started = False
        self._tools: dict[int, int] = {}  # contentBlockIndex -> tool_calls index

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return chunk(self.completion_id, self.created, self.model, delta, finish_reason)

    def feed(self, event: Any) -> list[dict[str, Any]]:
        """One decoded event-stream message as ``(event_type, payload)`` -> chunks."""
        kind, payload = event
        if kind.endswith("Exception"):
            raise StreamError(kind, str(payload.get("message") or payload.get("Message") or ""))
        out: list[dict[str, Any]] = []
        if not self._started and kind in ("messageStart", "contentBlockStart", "contentBlockDelta"):
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if kind == "contentBlockDelta":
            delta = payload.get("delta") or {}
            if delta.get("text"):
                out.append(self._chunk({"content": delta["text"]}))
            elif "toolUse" in delta:
                index = self._tools.get(payload.get("contentBlockIndex", -1))
                fragment = (delta["toolUse"] or {}).get("input")
                if index is not None and fragment:
                    call = {"index": index, "function": {"arguments": fragment}}
                    out.append(self._chunk({"tool_calls": [call]}))
        elif kind == "contentBlockStart":
            tool_use = (payload.get("start") or {}).get("toolUse")
            if tool_use:
                index = self._tools[payload.get("contentBlockIndex", -1)] = len(self._tools)
                call = {
                    "index": index,
                    "id": tool_use.get("toolUseId"),
                    "type": "function",
                    "function": {"name": tool_use.get("name"), "arguments": ""},
                }
                out.append(self._chunk({"tool_calls": [call]}))
        elif kind == "messageStop":
            reason = payload.get("stopReason")
            self.finish_reason = FINISH_REASONS.get(reason, "stop")
            out.append(self._chunk({}, self.finish_reason))
        elif kind == "metadata":
            self._raw_usage = payload.get("usage")
            self.usage = _usage(self._raw_usage)
        return out

    def finish(self) -> list[dict[str, Any]]:
        """The final ``choices: []`` chunk with the usage of the whole call."""
        if self.usage is None:
            self.usage = _usage(self._raw_usage)
        return [usage_chunk(self.completion_id, self.created, self.model, self.usage)]


def _titan_body(text: str, body: dict[str, Any]) -> dict[str, Any]:
    titan: dict[str, Any] = {"inputText": text}
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if dimensions not in (256, 512, 1024):
            raise ConversionError("dimensions must be 256, 512 or 1024 for Titan embeddings v2")
        titan["dimensions"] = dimensions
    return titan


def embeddings_requests(body: dict[str, Any], model: str) -> list[dict[str, Any]]:
    """One Titan ``invoke`` body per input of an OpenAI embeddings request."""
    return [_titan_body(text, body) for text in embedding_inputs(body)]


def convert_embeddings_request(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The Titan ``invoke`` body of a one-input embeddings request (see embeddings_requests)."""
    inputs = embedding_inputs(body)
    if len(inputs) != 1:
        raise ConversionError("Titan embeds one text per call: use embeddings_requests")
    return _titan_body(inputs[0], body)


def merge_embeddings_responses(
    bodies: list[dict[str, Any]], model: str, encoding_format: str = "float"
) -> dict[str, Any]:
    """Titan responses, in input order, as one OpenAI embeddings list."""
    vectors = [body.get("embedding") or [] for body in bodies]
    tokens = sum(body.get("inputTextTokenCount") or 0 for body in bodies)
    return embeddings_list(vectors, model, tokens, encoding_format)


def convert_embeddings_response(
    body: dict[str, Any], model: str, n_inputs: int, encoding_format: str = "float"
) -> dict[str, Any]:
    """One Titan response (``n_inputs`` must be 1) as an OpenAI embeddings list."""
    if n_inputs != 1:
        raise ValueError("one Titan response holds one embedding: use merge_embeddings_responses")
    return merge_embeddings_responses([body], model, encoding_format)


def error_message(status: int, body: bytes) -> tuple[str, str]:
    """``(exception name, message)`` of a Bedrock error (``{"message": ...}``)."""
    parsed = json_error(status, body)
    if isinstance(parsed, dict) and ("message" in parsed or "Message" in parsed):
        kind = str(parsed.get("__type") or _ERROR_TYPES.get(status, f"http_{status}"))
        return kind.rsplit("#", 1)[-1], str(parsed.get("message") or parsed.get("Message"))
    return raw_error(status, body)
