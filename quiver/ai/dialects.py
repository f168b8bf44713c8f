"""What an OpenAI-like provider takes differently from OpenAI's chat API.

The chat front passes a request to an OpenAI-like provider as the client wrote it,
but for ``model``.  Some of them refuse parts of it: Mistral answers 422 to any
field it does not know (``user``, ``seed``, ``max_completion_tokens``, ``store``...)
and 400 to a tool call id that is not nine letters and digits.  A dialect is the
small rewrite a provider's kind names (:attr:`ProviderKind.dialect`), applied to
the request body in one place before it is sent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

Dialect = Callable[[dict[str, Any]], dict[str, Any]]

#: the fields of Mistral's chat completions request (others are refused with 422)
_MISTRAL_FIELDS = frozenset(
    {
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
    }
)
_MISTRAL_CALL_ID = re.compile(r"[A-Za-z0-9]{9}")
_ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def mistral_call_id(call_id: str) -> str:
    """A tool call id as Mistral takes it: its own ids (nine letters and digits) as
    they are, any other one mapped to nine, the same for the same id, so that an
    assistant turn's call and the tool turn answering it still match."""
    if _MISTRAL_CALL_ID.fullmatch(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    letters = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        letters.append(_ALPHANUMERIC[digit])
    return "".join(letters)


def mistral(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's chat request in Mistral's terms: ``max_completion_tokens`` is
    ``max_tokens``, ``seed`` is ``random_seed``, fields Mistral does not know are
    left out, tool call ids are nine letters and digits."""
    if "max_completion_tokens" in body:
        cap = body.pop("max_completion_tokens")
        body.setdefault("max_tokens", cap)
    if "seed" in body:
        body.setdefault("random_seed", body.pop("seed"))
    for name in [name for name in body if name not in _MISTRAL_FIELDS]:
        del body[name]
    messages = body.get("messages")
    if isinstance(messages, list):
        body["messages"] = [_mistral_message(message) for message in messages]
    return body


def _mistral_message(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    calls = message.get("tool_calls")
    call_id = message.get("tool_call_id")
    if not isinstance(calls, list) and not isinstance(call_id, str):
        return message
    message = dict(message)
    if isinstance(call_id, str):
        message["tool_call_id"] = mistral_call_id(call_id)
    if isinstance(calls, list):
        message["tool_calls"] = [
            dict(call, id=mistral_call_id(call["id"]))
            if isinstance(call, dict) and isinstance(call.get("id"), str)
            else call
            for call in calls
        ]
    return message
