"""The canonical format (OpenAI chat completions as plain dicts) and what every converter shares.

Requests, responses and stream chunks stay plain ``dict``/``list`` values as ``orjson``
parsed them: nothing here copies a body deeper than the converter needs.
"""

from __future__ import annotations

import base64
import os
import re
import struct
from collections.abc import Callable
from typing import Any

import orjson

__all__ = [
    "SIGNATURE_SEPARATOR",
    "ConversionError",
    "StreamError",
    "bare_call_id",
    "chunk",
    "completion",
    "content_parts",
    "data_url",
    "dumps",
    "embedding_inputs",
    "embeddings_list",
    "functions_of",
    "image_url_of",
    "json_error",
    "json_instruction",
    "json_schema_of",
    "loads_arguments",
    "max_tokens_of",
    "messages_of",
    "new_id",
    "raw_error",
    "stop_list",
    "system_text",
    "text_of",
    "tool_choice_of",
    "turns",
    "usage",
    "usage_chunk",
]

# RFC 2397 data URL with a base64 payload, the form the OpenAI APIs accept for inline images
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)(?:;[^,;]*?)*;base64,", re.ASCII)


class ConversionError(ValueError):
    """A request that cannot be expressed in the target format; the message is for the client."""


class StreamError(Exception):
    """The provider reported an error in the middle of a stream (its type and message kept)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


def new_id(prefix: str) -> str:
    """A random identifier such as ``call_3f9a...`` (24 hex digits after the prefix)."""
    return prefix + os.urandom(12).hex()


#: what separates a tool call id from the Gemini thought signature it carries
SIGNATURE_SEPARATOR = "_sig_"


def bare_call_id(call_id: str) -> str:
    """A tool call id without the Gemini thought signature it may carry.

    Other providers limit ids (Bedrock: 64 characters of ``[a-zA-Z0-9_-]``): a
    conversation begun on Gemini that continues elsewhere sends them the bare id, the same
    for a call and for its result.
    """
    return call_id.partition(SIGNATURE_SEPARATOR)[0]


def dumps(value: Any) -> str:
    """Compact JSON text (tool arguments travel as JSON strings in the chat format)."""
    return orjson.dumps(value).decode()


def loads_arguments(arguments: Any) -> dict[str, Any]:
    """Tool-call ``arguments`` (a JSON string) as an object; ``{}`` when empty or not an object.

    Providers that take arguments as an object (Anthropic ``input``, Gemini ``args``, Bedrock
    ``input``) cannot carry anything else, so a model's malformed JSON becomes ``{}``.
    """
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def text_of(content: Any) -> str:
    """The text of a chat ``content``: a string, or the ``text`` parts of a part list joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") or ""
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text")
        )
    raise ConversionError("message content must be a string or a list of content parts")


def content_parts(content: Any) -> list[dict[str, Any]]:
    """A chat ``content`` as a list of parts (a string becomes one text part)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if isinstance(content, list):
        return [part for part in content if isinstance(part, dict)]
    raise ConversionError("message content must be a string or a list of content parts")


def data_url(url: str) -> tuple[str, str] | None:
    """``(media_type, base64_data)`` of a base64 ``data:`` URL; None for any other URL."""
    match = _DATA_URL.match(url)
    if match is None:
        if url.startswith("data:"):
            raise ConversionError("only base64 data: URLs are supported for inline content")
        return None
    media_type = match.group(1).lower()
    # "image/jpg" is common in the wild; providers accept only the registered name
    return ("image/jpeg" if media_type == "image/jpg" else media_type), url[match.end() :]


def image_url_of(part: dict[str, Any]) -> str:
    """The URL of an ``image_url`` part (``{"url": ...}`` or, leniently, a bare string)."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise ConversionError("an image_url part needs image_url.url")
    return url


def usage(prompt: int, completion_tokens: int, cached: int = 0) -> dict[str, Any]:
    """A chat-completions ``usage`` object (``cached`` = prompt tokens read from a cache)."""
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """One entry of a chat message's ``tool_calls``: a provider's tool use with its
    input object as the JSON text chat carries."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": dumps(arguments or {})},
    }


def assistant_message(texts: list[str], calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The assistant message of a completion from its text pieces and tool calls
    (``content`` is null when the answer is tool calls alone, as OpenAI sends it)."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    return message


def completion(
    completion_id: str,
    created: int,
    model: str,
    message: dict[str, Any],
    finish_reason: str | None,
    usage_: dict[str, Any],
) -> dict[str, Any]:
    """A complete ``chat.completion`` object with one choice."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": usage_,
    }


def chunk(
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk`` with one choice and ``usage: null``."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        "usage": None,
    }


def usage_chunk(
    completion_id: str, created: int, model: str, usage_: dict[str, Any]
) -> dict[str, Any]:
    """The last chunk of a stream: ``choices: []`` and the usage of the whole call."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_,
    }


def system_text(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The ``system``/``developer`` messages joined (blank line between) and the rest.

    Providers with one system prompt get every system message, wherever it stood: a
    system message in the middle of a conversation loses its position (documented as lossy).
    """
    texts: list[str] = []
    rest: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict):
            raise ConversionError("each message must be an object")
        if message.get("role") in ("system", "developer"):
            text = text_of(message.get("content"))
            if text:
                texts.append(text)
        else:
            rest.append(message)
    return "\n\n".join(texts), rest


def messages_of(chat: dict[str, Any]) -> list[dict[str, Any]]:
    """``chat["messages"]``, checked to be a non-empty list."""
    messages = chat.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ConversionError("messages must be a non-empty list")
    return messages


def turns(
    messages: list[dict[str, Any]],
    user: Callable[[Any], list[dict[str, Any]]],
    assistant: Callable[[dict[str, Any]], list[dict[str, Any]]],
    tool_result: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    model_role: str = "assistant",
    key: str = "content",
) -> list[dict[str, Any]]:
    """Chat messages (system ones taken out) as a provider's alternating turns.

    ``user`` builds the blocks of a user ``content``, ``assistant`` those of an assistant
    message, ``tool_result`` the one block of a ``tool`` message; a turn is
    ``{"role": ..., key: blocks}``.  Consecutive turns of one role become one turn:
    providers want roles alternating, and the results of parallel tool calls must arrive
    together in the user turn after the calls.  Turns without blocks are dropped.
    """
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1][key].extend(blocks)
        else:
            out.append({"role": role, key: blocks})

    for message in messages:
        role = message.get("role")
        if role == "user":
            add("user", user(message.get("content")))
        elif role == "assistant":
            add(model_role, assistant(message))
        elif role == "tool":
            add("user", [tool_result(message)])
        else:
            raise ConversionError(f"unsupported message role {role!r}")
    return out


def stop_list(stop: Any) -> list[str] | None:
    """The chat ``stop`` parameter (a string or a list) as a list; None when absent."""
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return stop
    raise ConversionError("stop must be a string or a list of strings")


def max_tokens_of(chat: dict[str, Any]) -> int | None:
    """The output cap: ``max_completion_tokens`` (current name) or ``max_tokens``."""
    value = chat.get("max_completion_tokens")
    if value is None:
        value = chat.get("max_tokens")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConversionError("max_tokens must be a positive integer")
    return value


def json_schema_of(chat: dict[str, Any]) -> tuple[str, Any] | None:
    """``("json_schema", schema)`` / ``("json_object", None)`` from ``response_format``."""
    fmt = chat.get("response_format")
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise ConversionError("response_format.json_schema.schema must be an object")
        return "json_schema", spec["schema"]
    if kind == "json_object":
        return "json_object", None
    return None


def json_instruction(kind: str, schema: Any) -> str:
    """The system instruction that asks for JSON where a provider has no native field."""
    if kind == "json_object":
        return "Respond with a single valid JSON object and nothing else."
    return (
        "Respond with a single valid JSON value and nothing else. It must conform to this "
        "JSON Schema: " + dumps(schema)
    )


def tool_choice_of(chat: dict[str, Any]) -> tuple[str, str | None]:
    """The chat ``tool_choice`` as ``(mode, name)``: auto / none / required / function."""
    choice = chat.get("tool_choice")
    if choice is None or choice == "auto":
        return "auto", None
    if choice in ("none", "required"):
        return str(choice), None
    if isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return "function", function["name"]
        if choice.get("type") == "allowed_tools":
            return ("required" if choice.get("mode") == "required" else "auto"), None
    raise ConversionError("tool_choice must be auto, none, required or a function")


def functions_of(chat: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``function`` objects of ``chat["tools"]`` (other tool types are refused)."""
    tools = chat.get("tools")
    if not tools:
        return []
    if not isinstance(tools, list):
        raise ConversionError("tools must be a list")
    out = []
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
            raise ConversionError(f"tool type {kind!r} is not supported by this provider")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ConversionError("each tool needs function.name")
        out.append(function)
    return out


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """The texts of an OpenAI embeddings request (token-id inputs are refused)."""
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return value
    raise ConversionError("input must be a string or a non-empty list of strings for this model")


def embeddings_list(
    vectors: list[list[float]], model: str, prompt_tokens: int, encoding_format: str = "float"
) -> dict[str, Any]:
    """An OpenAI embeddings response (``base64`` = little-endian float32, as OpenAI sends)."""
    data: list[dict[str, Any]] = []
    for index, vector in enumerate(vectors):
        embedding: Any = vector
        if encoding_format == "base64":
            raw = struct.pack(f"<{len(vector)}f", *vector)
            embedding = base64.b64encode(raw).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def json_error(status: int, body: bytes) -> Any:
    """The parsed JSON of an error body, or None when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def raw_error(status: int, body: bytes) -> tuple[str, str]:
    """``(http_<status>, start of the body)`` for an error body in no known shape."""
    return f"http_{status}", body[:500].decode("utf-8", "replace").strip()
