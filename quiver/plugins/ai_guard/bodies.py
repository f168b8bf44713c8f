"""Reading a prompt out of a request body, and holding an answer's body to edit it.

Both guardrails that look at answers (``ai-prompt-guard``, ``ai-pii``) do it the
same way: a non-streamed answer (a 2xx ``application/json`` response without a
Content-Encoding) is held whole, parsed, edited where its completion texts are,
and sent on as compact JSON; streamed answers (``text/event-stream``) and other
responses pass untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from quiver.plugins.ai_guard.problems import UnreadablePrompt
from quiver.plugins.base import PluginRequest
from quiver.plugins.json_body import is_identity, is_json
from quiver.plugins.response import ResponseHead

log = logging.getLogger("quiver.plugins")


#: where the parsed body is kept for the next guardrail: (the bytes, their value)
_PARSED = "ai-guard:prompt"


def read_prompt(request: PluginRequest) -> Any:
    """The request body as parsed JSON; None when there is no body, or one that is
    not JSON and does not claim to be (a file upload: not a prompt).  A body that
    claims JSON but does not parse, or that is compressed, cannot be checked: 400.

    The guardrails of a route share one parse: the value is kept with the bytes it
    was read from, and read again only once a plugin has replaced the body."""
    body = request.body
    if not body:
        return None
    kept = request.ctx.get(_PARSED)
    if kept is not None and kept[0] is body:
        return kept[1]
    if not is_identity(request.get(b"content-encoding")):
        raise UnreadablePrompt("a compressed request body cannot be checked")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        if is_json(request.get(b"content-type")):
            raise UnreadablePrompt("the request body is not valid JSON") from None
        return None
    request.ctx[_PARSED] = (body, parsed)
    return parsed


def replace_prompt(request: PluginRequest, prompt: Any) -> None:
    """Send ``prompt`` (the value ``read_prompt`` gave, changed) as the body."""
    body = orjson.dumps(prompt)
    request.set_body(body)
    request.ctx[_PARSED] = (body, prompt)


#: edits a parsed answer in place; True when it changed it
Editor = Callable[[PluginRequest, Any], bool]


class HeldAnswers:
    """The response side of a guardrail: which answers to hold, and editing them.

    ``editor(request, answer)`` gets each held answer parsed (any JSON value).
    """

    __slots__ = ("editor", "key", "max_body", "name", "warned")

    def __init__(self, name: str, max_body: int, editor: Editor) -> None:
        self.name = name
        self.key = name + ":answer"
        self.max_body = max_body
        self.editor = editor
        self.warned = False  # about an answer too large to hold, once per route

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        if (
            request.method != b"HEAD"
            and 200 <= response.status < 300
            and response.status != 204
            and is_json(response.get(b"content-type"))
            and is_identity(response.get(b"content-encoding"))
        ):
            request.ctx[self.key] = bytearray()

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        held: bytearray | None = request.ctx.get(self.key)
        if held is None:
            return chunk
        if len(held) + len(chunk) > self.max_body:
            del request.ctx[self.key]
            if not self.warned:
                self.warned = True
                log.warning(
                    "%s: an answer to %s is larger than %d bytes (limits.max_buffered_body): "
                    "sent unchecked (logged once per route)",
                    self.name,
                    request.raw_path.decode("latin-1"),
                    self.max_body,
                )
            return bytes(held) + chunk
        held += chunk
        if not last:
            return b""
        del request.ctx[self.key]
        body = bytes(held)
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not self.editor(request, answer):
            return body
        return orjson.dumps(answer)
