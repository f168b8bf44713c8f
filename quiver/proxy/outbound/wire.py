"""What the outbound client writes to a node, and the sending of it over a pool.

The fields a caller gives are checked and encoded once per request
(:func:`header_block`), before any node is chosen: a field that would break the
head is the caller's ``ValueError``, never a try held against a node.  The head
for one node is then only joined (:func:`request_head`), and
:func:`send_to_node` sends it on an idle pooled connection or a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from quiver.errors import HTTPError, ServiceUnavailable, UpstreamResetError
from quiver.http.fields import TOKEN, UNSAFE_VALUE
from quiver.plugins.outbound import Fields
from quiver.proxy.outbound.response import Response
from quiver.proxy.request import IDEMPOTENT_METHODS
from quiver.proxy.upstream import Node, NodePool, UpstreamConnection, node_error

if TYPE_CHECKING:
    from quiver.proxy.snapshot import TargetRuntime

USER_AGENT = "quiver"
_OWN_FIELDS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
#: methods known to be tokens
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def header_block(method: str, headers: Mapping[str, str] | None, body: bytes) -> bytes:
    """The fields after Host, the blank line and the body.

    Content-Length comes from the body; fields that frame the message cannot be
    given.  Raises ValueError for a field that would break the head.  :class:`Fields`
    are checked and encoded once, on their first request.
    """
    if method not in _METHODS and not TOKEN.match(method):  # (a token is ASCII)
        raise ValueError(f"{method!r} is not an HTTP method")  # (before any node is chosen)
    if isinstance(headers, Fields):
        fields = headers.encoded
        if fields is None:
            fields = headers.encoded = _encoded(headers)
    else:
        fields = _encoded(headers)
    if body or method in ("POST", "PUT", "PATCH"):
        return b"".join((fields, b"Content-Length: %d\r\n\r\n" % len(body), body))
    return b"".join((fields, b"\r\n", body))


def _encoded(headers: Mapping[str, str] | None) -> bytes:
    """The lines of ``headers``, with Quiver's User-Agent unless they name one."""
    parts: list[bytes] = []
    agent = False
    for name, value in (headers or {}).items():
        lower = name.lower()
        if not TOKEN.match(name) or lower in _OWN_FIELDS:
            raise ValueError(f"{name!r} cannot be sent as a request field")
        if UNSAFE_VALUE.search(value):
            raise ValueError(f"the value of {name!r} has a line break or NUL")
        agent = agent or lower == "user-agent"
        parts += (name.encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n")
    if not agent:
        parts.append(b"User-Agent: " + USER_AGENT.encode() + b"\r\n")
    return b"".join(parts)


def request_head(method: str, path: bytes, node: Node, block: bytes) -> bytes:
    """The whole request for ``node``: request line, Host (from the node) and the
    ``block`` of :func:`header_block`."""
    return b"".join((method.encode("ascii"), b" ", path, node.request_line_tail, block))


async def send_to_node(
    node: Node,
    method: str,
    *,
    loop: asyncio.AbstractEventLoop,
    head: bytes,
    timeout: float | None = None,
    retry_stale: bool | None = None,
    target: TargetRuntime | None = None,
    deadline: float | None = None,
) -> Response:
    """Send the request ``head`` to ``node`` over its pool; the response once its
    head is in.

    The try ends at ``deadline`` (a loop time) when one is given, else ``timeout``
    seconds from now; a timeout names ``timeout`` either way.

    A node of ``target`` must have been admitted by its breaker (``target.choose``):
    the try ends in one outcome or in the admission given back.  ``retry_stale``
    (by default: whether ``method`` is idempotent) allows sending the request again
    when a pooled connection turns out to have been closed by the node.
    """
    response = Response(node, method.encode("ascii"), head, loop, timeout, target, deadline)
    if retry_stale is None:
        retry_stale = response.method in IDEMPOTENT_METHODS
    pool = node.pool
    assert pool is not None
    conn = pool.take_idle()
    while True:
        reused = conn is not None
        if conn is None:
            conn = await _connect(response, pool)
            if conn.transport is None:  # closed by the node as soon as it was opened
                response.admission.report("failure")
                raise node_error(UpstreamResetError, node, "{} closed the connection")
        response.attach(conn, reused=reused)
        if not await response.head_or_stale():
            break
        # a pooled connection the node had closed: the request never reached it
        # (RFC 9112 §9.3.1), so it may go again, on a fresh connection: another
        # idle one may have been closed just the same
        if not retry_stale:
            response.admission.release()
            raise node_error(UpstreamResetError, node, "{} closed the connection")
        retry_stale = False
        conn = None
    if response.error is not None:
        raise response.error
    return response


async def _connect(response: Response, pool: NodePool) -> UpstreamConnection:
    """A new connection for ``response``; a failure ends its try."""
    try:
        if response.deadline is None:
            return await pool.connect()
        async with asyncio.timeout_at(response.deadline):
            return await pool.connect()
    except TimeoutError:
        response.admission.report("timeout")
        raise response.timed_out() from None
    except ServiceUnavailable:
        response.admission.release()  # our own pool is full: that says nothing of the node
        raise
    except HTTPError as exc:
        response.admission.report("timeout" if exc.retry_kind == "timeout" else "failure")
        raise
    except asyncio.CancelledError:
        response.admission.release()
        raise
