"""What may be stored: a whole, successful answer.

A JSON answer must be an object without an ``error`` (or with ``"error": null``,
as a Responses object has); a streamed answer must end with the event its format
ends a complete stream with (an interrupted or failed stream is never replayed):
OpenAI chat ``data: [DONE]``, Anthropic ``message_stop``, OpenAI Responses
``response.completed``, a prompt API's ``done``.
"""

from __future__ import annotations

import orjson

#: how the last event of a complete stream begins, by format (and a prompt API's)
_STREAM_ENDS = (
    b"data: [DONE]",
    b"event: message_stop",
    b"event: response.completed",
    b"event: done",
)
_STREAM_FAILURES = (b"event: error", b'data: {"error"', b"response.failed")


def media_type(content_type: bytes | None) -> bytes:
    return (content_type or b"").split(b";", 1)[0].strip().lower()


def complete(kind: bytes, body: bytes) -> bool:
    """Whether ``body`` (of media type ``kind``) is a whole answer worth replaying."""
    if kind == b"text/event-stream":
        return _last_event(body).startswith(_STREAM_ENDS) and not any(
            failure in body for failure in _STREAM_FAILURES
        )
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    # (a Responses object has "error": null when it went well)
    return isinstance(answer, dict) and answer.get("error") is None


def _last_event(body: bytes) -> bytes:
    """The last event of a stream (the text after the last blank line)."""
    text = body.replace(b"\r\n", b"\n").rstrip(b"\n")
    return text[text.rfind(b"\n\n") + 2 :] if b"\n\n" in text else text
