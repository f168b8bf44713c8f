"""Where the answer's text sits in the events of a streamed answer, and how each API
ends a stream with an error.

A streamed answer (``text/event-stream``) gives its text in pieces, one text per
choice or content part, each piece in the ``data`` (JSON) of one event:

- OpenAI Chat Completions: ``choices[].delta.content`` of each chunk (``choices[].text``
  of a legacy completion), per ``choices[].index``; a choice's ``finish_reason``
  ends its text.  Tool-call argument deltas are not text the client reads.
- Anthropic Messages: ``content_block_delta`` events whose ``delta`` is a
  ``text_delta``, per content block ``index``; ``content_block_stop`` ends it
  (thinking and tool-input deltas are not answer text).
- OpenAI Responses: ``response.output_text.delta`` events, per ``output_index`` and
  ``content_index``; ``response.output_text.done`` ends it.

Every other event (roles, usage, ``message_start``, pings, ``[DONE]``, events of
other APIs) carries no text.  A text is named by a :data:`Key` whose first member
says which API the stream speaks, so a refusal can be written in its shape
(:func:`refusal_event`).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import orjson

from quiver.plugins.sse import render_event

Front = Literal["chat", "messages", "responses"]
#: one text of a stream: the API, then its place (choice; block; output item, part)
Key = tuple[Front, int, int]

#: the ``code`` of the error that ends a stream whose answer was withheld
REFUSED_CODE = "completion_refused"
#: the error type both OpenAI and Anthropic give a request refused as it stands (400)
REFUSED_TYPE = "invalid_request_error"


class EventTexts(NamedTuple):
    """What one event says of the texts: the pieces it adds, the texts it ends."""

    deltas: list[tuple[Key, str]]
    ends: list[Key]
    #: the event's ``sequence_number`` (Responses), when it has one
    sequence: int | None = None


NO_TEXT = EventTexts([], [])


def _index(value: Any) -> int:
    return value if isinstance(value, int) else 0


def read_event(data: str) -> EventTexts:
    """The texts in an event's ``data`` (any string; what is not JSON has none)."""
    if not data.startswith("{"):
        return NO_TEXT  # ([DONE], plain text)
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        return NO_TEXT
    if not isinstance(document, dict):
        return NO_TEXT
    choices = document.get("choices")
    if isinstance(choices, list):
        return _chat(choices)
    kind = document.get("type")
    if kind == "content_block_delta":
        delta = document.get("delta")
        if isinstance(delta, dict) and delta.get("type") == "text_delta":
            text = delta.get("text")
            if isinstance(text, str) and text:
                return EventTexts([(("messages", _index(document.get("index")), 0), text)], [])
    elif kind == "content_block_stop":
        return EventTexts([], [("messages", _index(document.get("index")), 0)])
    elif isinstance(kind, str) and kind.startswith("response."):
        sequence = document.get("sequence_number")
        sequence = sequence if isinstance(sequence, int) else None
        key: Key = (
            "responses",
            _index(document.get("output_index")),
            _index(document.get("content_index")),
        )
        if kind == "response.output_text.delta":
            text = document.get("delta")
            if isinstance(text, str) and text:
                return EventTexts([(key, text)], [], sequence)
        elif kind == "response.output_text.done":
            return EventTexts([], [key], sequence)
        return EventTexts([], [], sequence)
    return NO_TEXT


def _chat(choices: list[Any]) -> EventTexts:
    deltas: list[tuple[Key, str]] = []
    ends: list[Key] = []
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        key: Key = ("chat", _index(choice.get("index")), 0)
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str) and text:
            deltas.append((key, text))
        if choice.get("finish_reason") is not None:
            ends.append(key)
    return EventTexts(deltas, ends) if deltas or ends else NO_TEXT


def refusal_event(front: Front, message: str, rule: str, sequence: int | None) -> bytes:
    """The event that ends a stream of ``front`` with an error, the way the API ends
    one it cannot finish: OpenAI Chat Completions a ``data`` chunk with an ``error``
    member (and no ``[DONE]`` after it; the SDKs raise ``APIError``), Anthropic an
    ``error`` event (the SDK raises), Responses an ``error`` event (``code``,
    ``message``, ``param``, ``sequence_number``), read as the stream's failure."""
    if front == "messages":
        error = {"type": REFUSED_TYPE, "message": message, "rule": rule}
        return render_event(orjson.dumps({"type": "error", "error": error}).decode(), event="error")
    if front == "responses":
        document = {
            "type": "error",
            "code": REFUSED_CODE,
            "message": message,
            "param": None,
            "sequence_number": 0 if sequence is None else sequence + 1,
            "rule": rule,
        }
        return render_event(orjson.dumps(document).decode(), event="error")
    member: dict[str, str | None] = {
        "message": message,
        "type": REFUSED_TYPE,
        "param": None,
        "code": REFUSED_CODE,
        "rule": rule,
    }
    return render_event(orjson.dumps({"error": member}).decode())
