"""Who answered a call that ended in an error: what the top error causes group by.

A call that ended in an error (status 400 and above) is counted, in the cause
rollups, under its status and who answered it:

- the plugin that refused or answered it (``answered_by``: ``key-auth`` for a
  401, ``rate-limit`` for a 429);
- ``client`` for a 499: the client left before its answer;
- ``gateway`` when no route matched or the gateway refused the request before
  routing (404, 400, 414, 431...), and for 502, 503 and 504 that no plugin made:
  the upstream failed (no healthy node, a connection refused, reset or timed out,
  a response that could not be relayed);
- ``target`` for the rest: the node's or the in-process target's own answer.

A call's record does not say whether a 502-504 was the gateway's or the node's
own answer: a node that answers 503 itself is counted under ``gateway`` too.
"""

from __future__ import annotations

GATEWAY = "gateway"
TARGET = "target"
CLIENT = "client"
#: the status of an exchange whose client left first (nginx's)
CLIENT_CLOSED = 499
#: what the gateway answers when the upstream fails
UPSTREAM_FAILED = frozenset((502, 503, 504))


def is_cause(status: int) -> bool:
    """Whether a call is counted among the error causes: it ended in an error."""
    return status >= 400


def answered_by(status: int, route: str | None, plugin: str | None) -> str:
    """Who answered a call that ended with ``status`` (see the module's docstring)."""
    if plugin is not None:
        return plugin
    if status == CLIENT_CLOSED:
        return CLIENT
    if route is None or status in UPSTREAM_FAILED:
        return GATEWAY
    return TARGET
