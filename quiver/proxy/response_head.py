"""The response head a client gets: the node's head rewritten, and how the body travels.

:func:`rewrite_head` is pure: given the head as the node sent it (after any
``response_headers`` plugins) and what the proxy knows of the request, it returns
the head to send and the body mode (:mod:`quiver.proxy.flow`).  What it does:

- the status line carries the proxy's own version, HTTP/1.1 (RFC 9110 §6.2: a proxy
  sends its own version, never copies the node's);
- hop-by-hop fields go (RFC 9110 §7.6.1), including those the node's ``Connection``
  names, and the proxy states its own ``Connection`` when the client needs one;
- the body framing is chosen: relayed as is, wrapped in chunks when the node ends it
  by closing, decoded for an HTTP/1.0 client, or filtered by plugins;
- ``Location``, ``Content-Location`` and ``Set-Cookie`` paths are mapped back to the
  client's view of the API (see :mod:`quiver.proxy.redirects`);
- ``X-Request-ID``, the fields plugins add to every response, and ``Via`` are added.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from quiver.errors import BadGateway
from quiver.http.fields import CONNECTION_OPTIONS
from quiver.proxy.flow import DECODED, FILTERED, NO_BODY, RELAY, WRAP_CHUNKS

if TYPE_CHECKING:
    from quiver.proxy.redirects import Redirects

_VIA_END = b"Via: 1.1 quiver\r\n\r\n"
_OWN_VERSION = b"HTTP/1.1"
# Response fields that are hop-by-hop (RFC 9110 §7.6.1) or re-framed by the proxy.
_HOP_BY_HOP = re.compile(
    rb"\r\n(?:connection|keep-alive|proxy-connection|te|trailer|upgrade)[ \t]*:[^\r]*", re.I
)
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:([^\r]*)", re.I)
_FRAMING_FIELDS = re.compile(rb"\r\n(?:content-length|transfer-encoding)[ \t]*:[^\r]*", re.I)
# The response fields the proxy acts on, with their values, found in one pass.
_RESPONSE_FIELDS = re.compile(
    rb"\r\n(connection|keep-alive|proxy-connection|te|trailer|upgrade|content-length"
    rb"|transfer-encoding|x-request-id|location|content-location|set-cookie)[ \t]*:[ \t]*([^\r]*)"
)
_CONNECTION_FIELD, _OTHER_HOP_FIELD, _LENGTH_FIELD, _TE_FIELD = 1, 2, 4, 8
_REQUEST_ID_FIELD, _PATH_FIELD = 16, 32
_HOP_FIELDS = _CONNECTION_FIELD | _OTHER_HOP_FIELD
_FIELD_KINDS = {
    b"connection": _CONNECTION_FIELD,
    b"keep-alive": _OTHER_HOP_FIELD,
    b"proxy-connection": _OTHER_HOP_FIELD,
    b"te": _OTHER_HOP_FIELD,
    b"trailer": _OTHER_HOP_FIELD,
    b"upgrade": _OTHER_HOP_FIELD,
    b"content-length": _LENGTH_FIELD,
    b"transfer-encoding": _TE_FIELD,
    b"x-request-id": _REQUEST_ID_FIELD,
    b"location": _PATH_FIELD,
    b"content-location": _PATH_FIELD,
    b"set-cookie": _PATH_FIELD,
}
_CONNECTION = re.compile(rb"\r\nconnection[ \t]*:([^\r]*)", re.I)
_UPGRADE = re.compile(rb"\r\nupgrade[ \t]*:[ \t]*([^\r]*)", re.I)


class RequestFacts(Protocol):
    """What :func:`rewrite_head` reads of the request (the exchange provides it)."""

    method: bytes
    version: bytes  # b"1.1" or b"1.0", as the client spoke
    upgrade: bytes | None  # the protocol the client asked to switch to, if any
    rid: bytes
    raw_path: bytes
    upstream_path: bytes
    response_fields: bytes  # fields plugins add to every response ("Name: value\r\n" each)


Rewritten = tuple[bytes, int, bool, bool]
"""``(head, body mode, keep-alive, the node ends the body by closing)``."""


def rewrite_head(
    raw: bytes,
    status: int,
    request: RequestFacts,
    keep_alive: bool,
    filtered: bool,
    redirects: Redirects | None,
) -> Rewritten:
    """The head to send the client for the node's head ``raw`` (ending in CRLFCRLF).

    ``keep_alive``: the client connection may stay open as far as the proxy is
    concerned; ``filtered``: the route has ``response_body`` plugins.  Raises
    BadGateway for a response the proxy cannot relay.
    """
    if raw[7] != 49:  # not "HTTP/1.1" (the minor digit; an index, no slice to allocate)
        raw = _OWN_VERSION + raw[8:]
    kinds = 0
    connection = coding = b""
    # one pass over the lowercased head (a case-sensitive regex runs several times
    # faster); only the lowercase values of Connection and Transfer-Encoding are used
    for name, value in _RESPONSE_FIELDS.findall(raw.lower()):
        kind = _FIELD_KINDS[name]
        kinds |= kind
        if kind == _CONNECTION_FIELD:
            connection = value if not connection else connection + b"," + value
        elif kind == _TE_FIELD:
            coding = value.strip()
    if kinds & _PATH_FIELD and redirects is not None:
        raw = redirects.apply(raw, request.raw_path, request.upstream_path)
    version = request.version
    if request.upgrade is not None and status != 101:
        keep_alive = False  # what the client sent after its head was never HTTP
    framing = b""
    close_delimited = False
    if status == 101:
        if request.upgrade is None:
            raise BadGateway("upstream switched protocols without being asked")
        match = _UPGRADE.search(raw)
        upgrade = match.group(1) if match else b""
        framing = b"Connection: Upgrade\r\nUpgrade: " + upgrade + b"\r\n"
        mode = NO_BODY
    elif status < 200 or status == 204 or status == 304 or request.method == b"HEAD":
        mode = NO_BODY
    elif kinds & _LENGTH_FIELD:
        mode = RELAY
    elif kinds & _TE_FIELD:
        if not coding.endswith(b"chunked"):
            raise BadGateway("upstream used a transfer coding other than chunked")
        if version == b"1.1":
            mode = RELAY
        else:
            raw = _TRANSFER_ENCODING.sub(b"", raw)
            mode = DECODED
            keep_alive = False
    else:
        close_delimited = True
        if version == b"1.1":
            framing = b"Transfer-Encoding: chunked\r\n"
            mode = WRAP_CHUNKS
        else:
            mode = RELAY
            keep_alive = False
    if mode != NO_BODY and filtered:
        # plugins may change the body: its length is unknown until it ends
        raw = _FRAMING_FIELDS.sub(b"", raw)
        kinds &= ~(_LENGTH_FIELD | _TE_FIELD)
        mode = FILTERED
        if version == b"1.1":
            framing = b"Transfer-Encoding: chunked\r\n"
        else:
            framing = b""
            keep_alive = False
    if status != 101:
        if not keep_alive:
            framing += b"Connection: close\r\n"
        elif version == b"1.0":
            framing += b"Connection: keep-alive\r\n"
    head = raw
    if kinds & _HOP_FIELDS and not (
        # a lone "Connection: keep-alive" says what this hop does too: it can stay
        kinds & _HOP_FIELDS == _CONNECTION_FIELD
        and connection == b"keep-alive"
        and keep_alive
        and not framing
    ):
        head = _HOP_BY_HOP.sub(b"", raw)
        if connection and connection != b"keep-alive" and connection != b"close":
            head = _drop_connection_named(raw, head)
    request_id = b"" if kinds & _REQUEST_ID_FIELD else b"X-Request-ID: " + request.rid + b"\r\n"
    added = request.response_fields
    return (
        b"".join((head[:-2], request_id, added, framing, _VIA_END)),
        mode,
        keep_alive,
        close_delimited,
    )


def _drop_connection_named(raw: bytes, head: bytes) -> bytes:
    """Also drop the fields the node's Connection header names (RFC 9110 §7.6.1)."""
    tokens: set[bytes] = set()
    for match in _CONNECTION.finditer(raw):
        tokens.update(t.strip(b" \t").lower() for t in match.group(1).split(b","))
    tokens -= CONNECTION_OPTIONS
    tokens.discard(b"")
    if not tokens:
        return head
    lines = head.split(b"\r\n")
    kept = [line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in tokens]
    return b"\r\n".join([lines[0], *kept])
