"""What may be stored: a whole, successful answer.

A JSON answer must be an object without an ``error`` member; a streamed answer
must have ended the way its format ends a complete stream (an interrupted or
failed stream is never replayed): OpenAI chat ``data: [DONE]``, Anthropic
``message_stop``, OpenAI Responses ``response.completed``, a prompt API
``event: done``.
"""

from __future__ import annotations

import orjson

#: the events that end a complete stream, by format (and a prompt API's last event)
_STREAM_ENDS = (b"data: [DONE]", b"message_stop", b"response.completed", b"event: done")
_STREAM_FAILURES = (b"event: error", b'data: {"error"', b"response.failed")


def media_type(content_type: bytes | None) -> bytes:
    return (content_type or b"").split(b";", 1)[0].strip().lower()


def complete(kind: bytes, body: bytes) -> bool:
    """Whether ``body`` (of media type ``kind``) is a whole answer worth replaying."""
    if kind == b"text/event-stream":
        tail = body[-512:]
        return any(end in tail for end in _STREAM_ENDS) and not any(
            failure in body for failure in _STREAM_FAILURES
        )
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(answer, dict) and "error" not in answer
