"""What an MCP message was and how it ended, as the record carries it: an MCP
endpoint puts it in ``request.ctx["mcp"]`` and the proxy hands it to the
exchange's record (``ExchangeRecord.mcp``); the access log writes it as its
``mcp`` field (when listed), the call spool as the line's ``"mcp"`` member, and
the metrics count it.

Keys (any may be missing; unknown ones are dropped):

- ``method``: the JSON-RPC method (``tools/call``, ``tools/list``, ``initialize``, ...);
- ``tool``, ``prompt``, ``resource``: what a ``tools/call``, ``prompts/get`` or
  ``resources/read`` named (a resource by its URI);
- ``outcome``: ``ok``; ``error`` (the tool answered ``isError``); ``refused`` (a
  JSON-RPC error: unknown tool, bad params, ...); ``failed`` (the upstream or the
  gateway failed); none for a notification;
- ``ms``: how long the endpoint took over the message;
- ``status``: the HTTP status of a tool call's own request (a tool that is an API
  operation);
- ``server``: the upstream MCP server's name, when the message was passed on.

Texts are cut at ``MAX_TEXT`` characters: a client names what it calls, and a
line or a row is no place for an unbounded string.
"""

from __future__ import annotations

from typing import Any

#: the longest text kept of a member (longer ones are cut)
MAX_TEXT = 256
_TEXTS = ("method", "tool", "prompt", "resource", "outcome", "server")
#: the members that name what a message asked for, in the order they are looked at
NAMED = ("tool", "prompt", "resource")


def mcp_document(note: dict[str, Any]) -> dict[str, Any]:
    """The known members of ``note``, with values of the right types only."""
    document: dict[str, Any] = {}
    for key in _TEXTS:
        value = note.get(key)
        if isinstance(value, str) and value:
            document[key] = value[:MAX_TEXT]
    ms = note.get("ms")
    if isinstance(ms, int | float) and not isinstance(ms, bool) and ms >= 0:
        document["ms"] = round(ms, 3)
    status = note.get("status")
    if type(status) is int and 100 <= status <= 999:
        document["status"] = status
    return document


def named(note: dict[str, Any]) -> str | None:
    """What the message named: its tool, prompt or resource (None: nothing)."""
    for key in NAMED:
        value = note.get(key)
        if isinstance(value, str) and value:
            return value[:MAX_TEXT]
    return None


def compact(note: dict[str, Any]) -> str:
    """The text format's rendering: ``method:name:outcome:ms`` (``-`` for what is
    missing), e.g. ``tools/call:getNote:ok:4.21ms``."""
    document = mcp_document(note)
    ms = document.get("ms")
    return ":".join(
        (
            document.get("method", "-"),
            named(document) or "-",
            document.get("outcome", "-"),
            f"{ms:g}ms" if ms is not None else "-",
        )
    )
