"""OpenAI chat completions -> Anthropic Messages API (``POST /v1/messages``), and back.

Request: system/developer messages become ``system``; ``tool`` messages become
``tool_result`` blocks of one user turn (parallel results stay together, ahead of any
text); ``tool_calls`` become ``tool_use`` blocks; image parts become ``image`` blocks
(base64 for ``data:`` URLs, ``url`` sources otherwise); ``max_tokens`` defaults to 4096
(Anthropic requires it); ``temperature`` is clamped to Anthropic's 0..1;
``response_format`` ``json_schema`` becomes ``output_config.format`` (Anthropic's
structured outputs), ``json_object`` a system instruction.

Response and stream: ``text`` blocks -> ``content``, ``tool_use`` -> ``tool_calls``,
``stop_reason`` -> ``finish_reason``; ``usage.prompt_tokens`` counts cached input too
(Anthropic's ``input_tokens`` excludes cache reads and writes), with the cache reads as
``prompt_tokens_details.cached_tokens``.  Thinking blocks are not carried over.
"""

from __future__ import annotations

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
    functions_of,
    image_url_of,
    json_error,
    json_instruction,
    json_schema_of,
    loads_arguments,
    max_tokens_of,
    messages_of,
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

__all__ = ["StreamConverter", "convert_request", "convert_response", "error_message"]

DEFAULT_MAX_TOKENS = 4096

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def convert_request(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat-completions request as an Anthropic Messages request body."""
    system, rest = system_text(messages_of(chat))
    used_tools: dict[str, None] = {}
    messages = turns(
        rest,
        _user_blocks,
        lambda message: _assistant_blocks(message, used_tools),
        _tool_result,
    )
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens_of(chat) or DEFAULT_MAX_TOKENS,
        "messages": messages,
    }
    wanted = json_schema_of(chat)
    if wanted is not None:
        kind, schema = wanted
        if kind == "json_schema":
            body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
        else:
            instruction = json_instruction(kind, schema)
            system = f"{system}\n\n{instruction}" if system else instruction
    if system:
        body["system"] = system
    _tools(chat, body, used_tools)
    temperature = chat.get("temperature")
    if temperature is not None:
        body["temperature"] = min(float(temperature), 1.0)
    if chat.get("top_p") is not None:
        body["top_p"] = chat["top_p"]
    stop = stop_list(chat.get("stop"))
    if stop:
        body["stop_sequences"] = stop
    user = chat.get("user")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    if chat.get("stream"):
        body["stream"] = True
    return body


def _user_blocks(content: Any) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in content_parts(content):
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if text:
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            blocks.append(_image_block(image_url_of(part)))
        elif kind == "file":
            blocks.append(_document_block(part))
        else:
            raise ConversionError(f"content part type {kind!r} is not supported by Anthropic")
    return blocks


def _image_block(url: str) -> dict[str, Any]:
    inline = data_url(url)
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = inline
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document_block(part: dict[str, Any]) -> dict[str, Any]:
    file = part.get("file")
    inline = data_url(file.get("file_data") or "") if isinstance(file, dict) else None
    if inline is None:
        raise ConversionError("file parts need file.file_data as a base64 data: URL")
    media_type, data = inline
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def _assistant_blocks(message: dict[str, Any], used_tools: dict[str, None]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = text_of(message.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = function.get("name")
        if not isinstance(name, str) or not isinstance(call.get("id"), str):
            raise ConversionError("each tool call needs an id and function.name")
        used_tools[name] = None
        blocks.append(
            {
                "type": "tool_use",
                "id": bare_call_id(call["id"]),
                "name": name,
                "input": loads_arguments(function.get("arguments")),
            }
        )
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        raise ConversionError("a tool message needs tool_call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": bare_call_id(call_id)}
    text = text_of(message.get("content"))
    if text:
        block["content"] = text
    return block


def _tools(chat: dict[str, Any], body: dict[str, Any], used_tools: dict[str, None]) -> None:
    functions = functions_of(chat)
    tools = [
        {
            "name": function["name"],
            **({"description": function["description"]} if function.get("description") else {}),
            "input_schema": function.get("parameters") or _EMPTY_SCHEMA,
        }
        for function in functions
    ]
    # Anthropic refuses tool_use / tool_result blocks in a request that declares no tools
    declared = {tool["name"] for tool in tools}
    tools.extend(
        {"name": name, "input_schema": _EMPTY_SCHEMA} for name in used_tools if name not in declared
    )
    if not tools:
        return
    body["tools"] = tools
    if not functions:
        body["tool_choice"] = {"type": "none"}
        return
    mode, name = tool_choice_of(chat)
    choice: dict[str, Any]
    if mode == "none":
        body["tool_choice"] = {"type": "none"}
        return
    if mode == "required":
        choice = {"type": "any"}
    elif mode == "function":
        choice = {"type": "tool", "name": name}
    else:
        choice = {"type": "auto"}
    if chat.get("parallel_tool_calls") is False:
        choice["disable_parallel_tool_use"] = True
    if choice != {"type": "auto"}:
        body["tool_choice"] = choice


def _usage(raw: dict[str, Any] | None) -> dict[str, Any]:
    raw = raw or {}
    cached = raw.get("cache_read_input_tokens") or 0
    prompt = (raw.get("input_tokens") or 0) + (raw.get("cache_creation_input_tokens") or 0)
    return usage(prompt + cached, raw.get("output_tokens") or 0, cached)


def convert_response(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An Anthropic message as a ``chat.completion``."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in body.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append(tool_call(block.get("id"), block.get("name"), block.get("input")))
    message = assistant_message(texts, calls)
    reason = body.get("stop_reason")
    return completion(
        "chatcmpl-" + str(body.get("id") or "").removeprefix("msg_"),
        int(time.time()),
        model,
        message,
        FINISH_REASONS.get(reason, "stop") if reason else None,
        _usage(body.get("usage")),
    )


class StreamConverter:
    """Anthropic stream events ``(event_name, data)`` -> ``chat.completion.chunk`` dicts."""

    def __init__(self, model: str, completion_id: str, created: int) -> None:
        self.model = model
        self.completion_id = completion_id
        self.created = created
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None
        self._raw_usage: dict[str, Any] = {}
        self._started = False
        self._tools: dict[int, int] = {}  # Anthropic block index -> tool_calls index

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return chunk(self.completion_id, self.created, self.model, delta, finish_reason)

    def feed(self, event: Any) -> list[dict[str, Any]]:
        """One ``(event_name, data)`` pair of the SSE stream -> chunks."""
        data = event[1]
        kind = data.get("type") or event[0]
        out: list[dict[str, Any]] = []
        if not self._started and kind in ("message_start", "content_block_start"):
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            dkind = delta.get("type")
            if dkind == "text_delta" and delta.get("text"):
                out.append(self._chunk({"content": delta["text"]}))
            elif dkind == "input_json_delta" and delta.get("partial_json"):
                index = self._tools.get(data.get("index", -1))
                if index is not None:
                    call = {"index": index, "function": {"arguments": delta["partial_json"]}}
                    out.append(self._chunk({"tool_calls": [call]}))
        elif kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tools[data.get("index", -1)] = len(self._tools)
                call = {
                    "index": index,
                    "id": block.get("id"),
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
                out.append(self._chunk({"tool_calls": [call]}))
            elif block.get("type") == "text" and block.get("text"):
                out.append(self._chunk({"content": block["text"]}))
        elif kind == "message_start":
            self._raw_usage.update((data.get("message") or {}).get("usage") or {})
        elif kind == "message_delta":
            self._raw_usage.update(
                (k, v) for k, v in (data.get("usage") or {}).items() if v is not None
            )
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish_reason = FINISH_REASONS.get(reason, "stop")
                out.append(self._chunk({}, self.finish_reason))
            self.usage = _usage(self._raw_usage)
        elif kind == "error":
            error = data.get("error") or {}
            raise StreamError(str(error.get("type") or "error"), str(error.get("message") or ""))
        return out

    def finish(self) -> list[dict[str, Any]]:
        """The final ``choices: []`` chunk with the usage of the whole call."""
        if self.usage is None:
            self.usage = _usage(self._raw_usage)
        return [usage_chunk(self.completion_id, self.created, self.model, self.usage)]


def error_message(status: int, body: bytes) -> tuple[str, str]:
    """``(error type, message)`` of an Anthropic error body (``{"type": "error", ...}``)."""
    parsed = json_error(status, body)
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return str(error.get("type") or f"http_{status}"), str(error.get("message") or "")
    return raw_error(status, body)
