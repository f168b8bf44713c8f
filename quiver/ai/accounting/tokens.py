"""Counting tokens without the model's tokenizer: an upper bound before a call, an
estimate after it when the provider reported no usage.

Quiver ships no tokenizer (each provider has its own, and some are not public).
Two facts about the tokenizers in use make counting without them safe:

- **Every token covers at least one byte of the text** (byte-level BPE as in
  OpenAI's and Anthropic's models; SentencePiece with byte fallback as in Gemini's
  and Mistral's, whose extra word-boundary marker is at most one more token per
  text).  So the UTF-8 length of a text, plus one, bounds its token count from
  above.  :func:`prompt_upper_bound` adds that up over every text of a chat
  request or an Anthropic Messages one (system prompt, message contents, names,
  tool calls, tool definitions, the response schema) and a fixed allowance for
  what the provider wraps around them (per message, per request, for tool use,
  per image), and is what a call reserves
  under budgets and limits: the provider cannot count more.
- An answer's tokens, when the provider reports none, are estimated from its bytes
  and words (:func:`estimate`): about four bytes of ASCII per token, one token per
  other character (CJK and most scripts beyond Latin take a token or more per
  character), and never fewer than four tokens per three words.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

#: what a provider adds around each message (role markers, separators)
PER_MESSAGE = 8
#: what a provider adds around each request (the reply's priming, a BOS token)
PER_REQUEST = 16
#: what a provider adds when tools are given (Anthropic's tool-use system prompt is
#: a few hundred tokens)
WITH_TOOLS = 512
#: an image part: the most tokens one image costs at the providers' largest sizes
#: (OpenAI high detail, Anthropic's 1.15-megapixel cap) is below this
PER_IMAGE = 1600
_IMAGES = ("image_url", "image")  # a chat-completions image part, an Anthropic image block


def prompt_upper_bound(chat: dict[str, Any]) -> int:
    """The most prompt tokens any provider may count for the chat-completions request
    ``chat`` (see the module docstring); never less than the real count."""
    total = PER_REQUEST
    messages = chat.get("messages")
    if isinstance(messages, list):
        for message in messages:
            total += PER_MESSAGE + _bound(message)
    system = chat.get("system")  # (an Anthropic Messages request: its system prompt)
    if system:
        total += PER_MESSAGE + _bound(system)
    for key in ("tools", "functions"):
        tools = chat.get(key)
        if tools:
            total += WITH_TOOLS + len(orjson.dumps(tools))
    for key in ("response_format", "tool_choice", "prediction"):
        value = chat.get(key)
        if isinstance(value, dict):
            total += len(orjson.dumps(value))
    return total


def _bound(value: Any) -> int:
    """Upper bound of the tokens of one message or part of one: one per UTF-8 byte of
    every string in it, one more per string, an allowance per image."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass")) + 1 if value else 0
    if isinstance(value, dict):
        if value.get("type") in _IMAGES or "image_url" in value:
            return PER_IMAGE
        return sum(_bound(item) for item in value.values())
    if isinstance(value, list):
        return sum(_bound(item) for item in value)
    return 0


def estimate(text: str) -> int:
    """An estimate of the tokens of ``text`` (for a provider that reported none)."""
    if not text:
        return 0
    ascii_bytes = sum(1 for char in text if char < "\x80")
    others = len(text) - ascii_bytes
    words = len(text.split())
    return max(math.ceil(ascii_bytes / 4) + others, math.ceil(words * 4 / 3), 1)


def prompt_estimate(chat: dict[str, Any]) -> int:
    """An estimate of the prompt tokens of ``chat``: its texts by :func:`estimate`,
    plus a few tokens per message (what OpenAI documents for its chat format)."""
    total = 3
    messages = chat.get("messages")
    if isinstance(messages, list):
        for message in messages:
            total += 4 + sum(estimate(text) for text in _texts(message))
    tools = chat.get("tools")
    if tools:
        total += estimate(orjson.dumps(tools).decode())
    return total


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        if value.get("type") == "image_url":
            return []
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def completion_estimate(completion: dict[str, Any]) -> int:
    """An estimate of the completion tokens of a ``chat.completion`` object: the text
    and tool calls of its choices."""
    total = 0
    for choice in completion.get("choices") or ():
        if isinstance(choice, dict):
            total += sum(estimate(text) for text in _texts(choice.get("message")))
    return total


def output_cap(chat: dict[str, Any]) -> int | None:
    """The most completion tokens the client allows (``max_completion_tokens`` or
    ``max_tokens``, times ``n`` choices); None when it set none."""
    caps = [
        value
        for value in (chat.get("max_completion_tokens"), chat.get("max_tokens"))
        if type(value) is int and value >= 0
    ]
    if not caps:
        return None
    choices = chat.get("n")
    return min(caps) * (choices if type(choices) is int and choices > 1 else 1)


def usage_or_estimate(
    chat: dict[str, Any], completion: dict[str, Any] | None, usage: dict[str, Any] | None
) -> dict[str, int]:
    """The usage to count for an answered call: the provider's when it reported one,
    else the estimates of :func:`prompt_estimate` and :func:`completion_estimate`
    (``completion``: the ``chat.completion`` object, or None when nothing of the
    answer is known).  A call answered without usage is never free."""
    if usage and isinstance(usage.get("prompt_tokens"), int):
        completion_tokens = usage.get("completion_tokens")
        return {
            "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": completion_tokens if isinstance(completion_tokens, int) else 0,
        }
    return {
        "prompt_tokens": prompt_estimate(chat),
        "completion_tokens": completion_estimate(completion) if completion else 0,
    }
