"""Anthropic Messages clients (``POST /v1/messages``) served by any provider, through chat.

Request: ``system`` becomes the first message; content blocks become chat parts
(``image`` -> ``image_url`` with a ``data:`` URL or the source URL, PDF ``document`` ->
``file``); ``tool_result`` blocks become ``tool`` messages placed before the rest of
their user turn; ``tool_use`` blocks become ``tool_calls``; ``tool_choice`` any / tool /
none and ``disable_parallel_tool_use`` map to ``tool_choice`` and
``parallel_tool_calls``; ``output_config.format`` becomes ``response_format``.  Thinking
blocks, ``top_k`` and images inside tool results have no chat equivalent and are left
out; Anthropic server tools (web search, code execution...) are refused.

Response and stream: the answer becomes a ``message`` with ``text`` and ``tool_use``
blocks; the stream is the exact event sequence Anthropic's SDKs expect::

    message_start
    content_block_start / content_block_delta (text_delta | input_json_delta)... /
    content_block_stop    (once per block, blocks one after the other)
    message_delta         (stop_reason, usage with input and output tokens)
    message_stop
"""

from __future__ import annotations

from typing import Any

from quiver.ai.converters.chat import (
    ConversionError,
    dumps,
    loads_arguments,
    new_id,
    text_of,
)

__all__ = ["StreamConverter", "convert_request", "convert_response", "count_tokens_request"]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def convert_request(body: dict[str, Any]) -> dict[str, Any]:
    """A Messages request body as a chat-completions request."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else _blocks_text(system)
        if text:
            messages.append({"role": "system", "content": text})
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ConversionError("messages must be a non-empty list")
    for message in raw:
        if not isinstance(message, dict):
            raise ConversionError("each message must be an object")
        role = message.get("role")
        content = message.get("content")
        if role not in ("user", "assistant"):
            raise ConversionError(f"unsupported message role {role!r}")
        if isinstance(content, str):
            messages.append({"role": role, "content": content})
        elif not isinstance(content, list):
            raise ConversionError("message content must be a string or a list of blocks")
        elif role == "user":
            _user(content, messages)
        else:
            messages.append(_assistant(content))

    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if body.get("max_tokens") is not None:
        chat["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        chat["user"] = user
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    fmt = (body.get("output_config") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        chat["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": fmt.get("schema") or {}},
        }
    _tools(body, chat)
    return chat


def count_tokens_request(body: dict[str, Any]) -> dict[str, Any]:
    """A ``/v1/messages/count_tokens`` body (no ``max_tokens``) as a chat request to count."""
    chat = convert_request(body)
    chat.pop("stream", None)
    chat.pop("stream_options", None)
    return chat


def _blocks_text(blocks: Any) -> str:
    if not isinstance(blocks, list):
        raise ConversionError("system must be a string or a list of text blocks")
    return "\n\n".join(
        block.get("text") or ""
        for block in blocks
        if isinstance(block, dict) and block.get("type") == "text"
    )


def _user(blocks: list[Any], messages: list[dict[str, Any]]) -> None:
    parts: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text") or ""})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _source_url(block)}})
        elif kind == "document":
            parts.append(_document(block))
        elif kind == "tool_result":
            # tool messages must follow the assistant turn that called: they go first
            content = block.get("content")
            text = content if isinstance(content, str) else _blocks_text(content or [])
            messages.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}
            )
        else:
            raise ConversionError(f"content block type {kind!r} is not supported on this model")
    if not parts:
        return
    if all(part["type"] == "text" for part in parts):
        messages.append({"role": "user", "content": "".join(part["text"] for part in parts)})
    else:
        messages.append({"role": "user", "content": parts})


def _source_url(block: dict[str, Any]) -> str:
    source = block.get("source") or {}
    kind = source.get("type")
    if kind == "base64":
        return f"data:{source.get('media_type')};base64,{source.get('data')}"
    if kind == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    raise ConversionError(f"{block.get('type')} source type {kind!r} is not supported")


def _document(block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "text":
        return {"type": "text", "text": source.get("data") or ""}
    if source.get("type") != "base64":
        raise ConversionError("documents must be base64 PDF or text sources on this model")
    name = block.get("title") or "document.pdf"
    return {"type": "file", "file": {"file_data": _source_url(block), "filename": name}}


def _assistant(blocks: list[Any]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            function = {"name": block.get("name"), "arguments": dumps(block.get("input") or {})}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        # thinking / redacted_thinking blocks have no chat equivalent
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(body: dict[str, Any], chat: dict[str, Any]) -> None:
    tools = body.get("tools")
    if not tools:
        return
    out = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise ConversionError(f"tool type {kind!r} is not supported on this model")
        function: dict[str, Any] = {"name": tool.get("name")}
        if tool.get("description"):
            function["description"] = tool["description"]
        function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
        out.append({"type": "function", "function": function})
    chat["tools"] = out
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    if choice.get("disable_parallel_tool_use"):
        chat["parallel_tool_calls"] = False


def _usage(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "input_tokens": (usage.get("prompt_tokens") or 0) - cached,
        "output_tokens": usage.get("completion_tokens") or 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def convert_response(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """A ``chat.completion`` as an Anthropic ``message``."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = text_of(message.get("content")) or message.get("refusal") or ""
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": function.get("name"),
                "input": loads_arguments(function.get("arguments")),
            }
        )
    return {
        "id": "msg_" + str(completion.get("id") or new_id("")).removeprefix("chatcmpl-"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(completion.get("usage")),
    }


class StreamConverter:
    """Chat chunks -> Anthropic stream events ``(event_name, data)``."""

    def __init__(self, model: str, message_id: str) -> None:
        self.model = model
        self.message_id = message_id
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self._started = False
        self._blocks = 0  # content blocks opened so far
        self._open: int | None = None  # index of the block still open
        self._open_text = False
        self._tools: dict[int, int] = {}  # tool_calls index -> block index

    def _start(self) -> list[tuple[str, dict[str, Any]]]:
        self._started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def _close(self, out: list[tuple[str, dict[str, Any]]]) -> None:
        if self._open is not None:
            out.append(("content_block_stop", {"type": "content_block_stop", "index": self._open}))
            self._open = None
            self._open_text = False

    def _open_block(self, out: list[tuple[str, dict[str, Any]]], block: dict[str, Any]) -> int:
        self._close(out)
        index = self._open = self._blocks
        self._blocks += 1
        event = {"type": "content_block_start", "index": index, "content_block": block}
        out.append(("content_block_start", event))
        return index

    def feed(self, chunk: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """One ``chat.completion.chunk`` -> zero or more stream events."""
        out = [] if self._started else self._start()
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                if not self._open_text:
                    self._open_block(out, {"type": "text", "text": ""})
                    self._open_text = True
                event = {
                    "type": "content_block_delta",
                    "index": self._open,
                    "delta": {"type": "text_delta", "text": text},
                }
                out.append(("content_block_delta", event))
            for call in delta.get("tool_calls") or ():
                self._tool_delta(call, out)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    def _tool_delta(self, call: dict[str, Any], out: list[tuple[str, dict[str, Any]]]) -> None:
        position = call.get("index", 0)
        function = call.get("function") or {}
        block = self._tools.get(position)
        if block is None:
            tool_use: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or new_id("toolu_"),
                "name": function.get("name") or "",
                "input": {},
            }
            block = self._tools[position] = self._open_block(out, tool_use)
        arguments = function.get("arguments")
        if arguments:
            # a fragment of an earlier call (interleaved parallel calls) keeps its block index
            delta = {"type": "input_json_delta", "partial_json": arguments}
            event = {"type": "content_block_delta", "index": block, "delta": delta}
            out.append(("content_block_delta", event))

    def finish(self) -> list[tuple[str, dict[str, Any]]]:
        """Closes the open block, then ``message_delta`` (stop reason, usage), ``message_stop``."""
        out = [] if self._started else self._start()
        self._close(out)
        usage = _usage(self.usage)
        stop_reason = STOP_REASONS.get(self.finish_reason or "stop", "end_turn")
        delta = {"stop_reason": stop_reason, "stop_sequence": None}
        out.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out
