"""OpenAI Responses clients (``POST /v1/responses``) served by any provider, through chat.

Request: ``instructions`` becomes the system message (instructions are not carried over
from a previous response, as in OpenAI's API); the history of the previous responses
comes next, then the ``input`` items: messages (``input_text`` / ``input_image`` /
``input_file`` / ``output_text`` parts), ``function_call`` items (consecutive ones, and
one that follows an assistant message, join that assistant message's ``tool_calls``: one
model turn stays one message, which Gemini and Anthropic need for parallel calls) and
``function_call_output`` items (``tool`` messages).  ``reasoning`` items are skipped;
built-in tools (web search, file search...) are refused.

Response: a ``message`` output item with one ``output_text`` part, then one
``function_call`` item per tool call (``call_id`` = the chat tool call id).  A stream
is the event sequence of the Responses API, every event with an increasing
``sequence_number``::

    response.created, response.in_progress
    per text run: response.output_item.added (message), response.content_part.added,
        response.output_text.delta..., response.output_text.done,
        response.content_part.done, response.output_item.done
    per call: response.output_item.added (function_call),
        response.function_call_arguments.delta..., response.function_call_arguments.done,
        response.output_item.done
    response.completed (response.incomplete when cut by max_output_tokens or a filter)

No delta is ever sent for an item that is not open: text arriving after tool calls
opens a new message item, and an answer made only of tool calls has no message item.
"""

from __future__ import annotations

import time
from typing import Any

from quiver.ai.converters.chat import ConversionError, new_id, text_of

__all__ = ["StreamConverter", "convert_request", "convert_response", "messages_of"]

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def convert_request(body: dict[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """A Responses request (plus the chat messages of its previous responses) as chat."""
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    messages.extend(history)
    messages.extend(input_messages(body))
    if not messages:
        raise ConversionError("input must not be empty")
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        if body.get(name) is not None:
            chat[name] = body[name]
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        chat["user"] = user
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    fmt = (body.get("text") or {}).get("format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_schema":
            spec = {k: fmt[k] for k in ("name", "schema", "description", "strict") if k in fmt}
            chat["response_format"] = {"type": "json_schema", "json_schema": spec}
        elif fmt.get("type") == "json_object":
            chat["response_format"] = {"type": "json_object"}
    _tools(body, chat)
    return chat


def input_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The chat messages of a Responses request's ``input`` (without its instructions)."""
    value = body.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise ConversionError("input must be a string or a list of items")
    messages: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise ConversionError("each input item must be an object")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            _message(item, messages)
        elif kind == "function_call":
            call = {
                "id": item.get("call_id"),
                "type": "function",
                "function": {"name": item.get("name"), "arguments": item.get("arguments") or ""},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else text_of(output or [])
            messages.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": text})
        elif kind == "reasoning":
            continue
        else:
            raise ConversionError(f"input item type {kind!r} is not supported on this model")
    return messages


def _message(item: dict[str, Any], messages: list[dict[str, Any]]) -> None:
    role = item.get("role")
    content = item.get("content")
    if role in ("system", "developer"):
        messages.append({"role": "system", "content": text_of(content)})
    elif role == "assistant":
        if isinstance(content, list):
            text = "".join(
                part.get("text") or part.get("refusal") or ""
                for part in content
                if isinstance(part, dict)
            )
        else:
            text = text_of(content)
        messages.append({"role": "assistant", "content": text})
    elif role == "user":
        if isinstance(content, str):
            messages.append({"role": "user", "content": content})
            return
        parts = [_user_part(part) for part in content or ()]
        if all(part["type"] == "text" for part in parts):
            messages.append({"role": "user", "content": "".join(p["text"] for p in parts)})
        else:
            messages.append({"role": "user", "content": parts})
    else:
        raise ConversionError(f"unsupported message role {role!r}")


def _user_part(part: Any) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": part.get("text") or ""}
    if kind == "input_image" and isinstance(part.get("image_url"), str):
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail") in ("low", "high"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file" and isinstance(part.get("file_data"), str):
        file = {"file_data": part["file_data"], "filename": part.get("filename") or "file"}
        return {"type": "file", "file": file}
    raise ConversionError(
        f"input content type {kind!r} is not supported on this model (file ids need OpenAI)"
    )


def _tools(body: dict[str, Any], chat: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools:
        out = []
        for tool in tools:
            if not isinstance(tool, dict) or tool.get("type") != "function":
                kind = tool.get("type") if isinstance(tool, dict) else None
                raise ConversionError(f"tool type {kind!r} is not supported on this model")
            function = {k: tool[k] for k in ("name", "description", "parameters") if tool.get(k)}
            if tool.get("strict") is not None:
                function["strict"] = tool["strict"]
            out.append({"type": "function", "function": function})
        chat["tools"] = out
    choice = body.get("tool_choice")
    if choice in ("auto", "none", "required"):
        chat["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}


def _usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    prompt = usage.get("prompt_tokens") or 0
    output = usage.get("completion_tokens") or 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.get("total_tokens") or prompt + output,
    }


def _response(
    body: dict[str, Any],
    response_id: str,
    created_at: int,
    model: str,
    output: list[dict[str, Any]],
    finish_reason: str | None,
    usage: dict[str, Any] | None,
    in_progress: bool = False,
) -> dict[str, Any]:
    """The ``response`` object, echoing the request's settings as OpenAI does."""
    incomplete = None if in_progress else _INCOMPLETE.get(finish_reason or "")
    status = "in_progress" if in_progress else "incomplete" if incomplete else "completed"
    text = body.get("text") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def convert_response(
    completion: dict[str, Any], body: dict[str, Any], response_id: str
) -> dict[str, Any]:
    """A ``chat.completion`` as a Responses ``response`` object."""
    suffix = response_id.removeprefix("resp_")
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    text = text_of(message.get("content"))
    refusal = message.get("refusal")
    if text or refusal:
        part = _text_part(text) if text else {"type": "refusal", "refusal": refusal}
        output.append(
            {
                "id": f"msg_{suffix}",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for position, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        output.append(
            {
                "id": f"fc_{suffix}_{position}",
                "type": "function_call",
                "status": "completed",
                "call_id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments") or "",
            }
        )
    return _response(
        body,
        response_id,
        int(completion.get("created") or time.time()),
        str(completion.get("model") or body.get("model") or ""),
        output,
        choice.get("finish_reason"),
        _usage(completion.get("usage")),
    )


def messages_of(
    request_body: dict[str, Any], response_object: dict[str, Any]
) -> list[dict[str, Any]]:
    """The chat messages a stored response adds to the history: its input, then its output."""
    messages = input_messages(request_body)
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in response_object.get("output") or ():
        if item.get("type") == "message":
            texts.extend(
                part.get("text") or part.get("refusal") or "" for part in item.get("content") or ()
            )
        elif item.get("type") == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments") or ""}
            calls.append({"id": item.get("call_id"), "type": "function", "function": function})
    if texts or calls:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
        if calls:
            message["tool_calls"] = calls
        messages.append(message)
    return messages


class StreamConverter:
    """Chat chunks -> Responses stream events ``(event_type, data)``.

    ``response`` holds the final response object once :meth:`finish` ran (for storage).
    """

    def __init__(self, model: str, response_id: str, body: dict[str, Any]) -> None:
        self.model = model
        self.response_id = response_id
        self.body = body
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.response: dict[str, Any] | None = None
        self._suffix = response_id.removeprefix("resp_")
        self._created_at = int(time.time())
        self._sequence = 0
        self._started = False
        self._output: list[dict[str, Any]] = []
        self._message: dict[str, Any] | None = None  # the open message item
        self._message_index = 0
        self._text: list[str] = []
        self._calls: dict[int, tuple[int, dict[str, Any]]] = {}  # chat index -> open call
        self._call_count = 0

    def _event(self, kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return kind, event

    def _start(self) -> list[tuple[str, dict[str, Any]]]:
        self._started = True
        snapshot = _response(
            self.body, self.response_id, self._created_at, self.model, [], None, None, True
        )
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

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
                self._close_calls(out)
                if self._message is None:
                    self._open_message(out)
                self._text.append(text)
                out.append(
                    self._event(
                        "response.output_text.delta",
                        item_id=self._message_id,
                        output_index=self._message_index,
                        content_index=0,
                        delta=text,
                        logprobs=[],
                    )
                )
            for call in delta.get("tool_calls") or ():
                self._call_delta(call, out)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return out

    @property
    def _message_id(self) -> str:
        return (
            f"msg_{self._suffix}"
            if self._message_index == 0
            else (f"msg_{self._suffix}_{self._message_index}")
        )

    def _open_message(self, out: list[tuple[str, dict[str, Any]]]) -> None:
        self._message_index = len(self._output)
        item = {
            "id": self._message_id,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        self._message = item
        self._output.append(item)
        out.append(
            self._event(
                "response.output_item.added",
                output_index=self._message_index,
                item={**item, "content": []},
            )
        )
        out.append(
            self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=self._message_index,
                content_index=0,
                part=_text_part(""),
            )
        )

    def _close_message(self, out: list[tuple[str, dict[str, Any]]]) -> None:
        item = self._message
        if item is None:
            return
        text = "".join(self._text)
        part = _text_part(text)
        index = self._message_index
        out.append(
            self._event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
        )
        out.append(
            self._event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
        )
        item["content"] = [part]
        item["status"] = "completed"
        out.append(self._event("response.output_item.done", output_index=index, item=item))
        self._message = None
        self._text = []

    def _call_delta(self, call: dict[str, Any], out: list[tuple[str, dict[str, Any]]]) -> None:
        position = call.get("index", 0)
        function = call.get("function") or {}
        opened = self._calls.get(position)
        if opened is None:
            self._close_message(out)
            item = {
                "id": f"fc_{self._suffix}_{self._call_count}",
                "type": "function_call",
                "status": "in_progress",
                "call_id": call.get("id") or new_id("call_"),
                "name": function.get("name") or "",
                "arguments": "",
            }
            self._call_count += 1
            opened = self._calls[position] = (len(self._output), item)
            self._output.append(item)
            out.append(
                self._event("response.output_item.added", output_index=opened[0], item={**item})
            )
        index, item = opened
        fragment = function.get("arguments")
        if fragment:
            item["arguments"] += fragment
            out.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=index,
                    delta=fragment,
                )
            )

    def _close_calls(self, out: list[tuple[str, dict[str, Any]]]) -> None:
        # parallel calls stay open together (their fragments may interleave) until text
        # or the end of the answer closes them, in output order
        for index, item in sorted(self._calls.values(), key=lambda opened: opened[0]):
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                )
            )
            item["status"] = "completed"
            out.append(self._event("response.output_item.done", output_index=index, item=item))
        self._calls = {}

    def finish(self) -> list[tuple[str, dict[str, Any]]]:
        """Closes the open items, then ``response.completed`` (or ``response.incomplete``)."""
        out = [] if self._started else self._start()
        self._close_message(out)
        self._close_calls(out)
        response = _response(
            self.body,
            self.response_id,
            self._created_at,
            self.model,
            self._output,
            self.finish_reason,
            _usage(self.usage),
        )
        self.response = response
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        out.append(self._event(kind, response=response))
        return out
