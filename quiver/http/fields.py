"""Header fields with a meaning to the gateway (names in lowercase), and the status
line's reason phrase."""

from __future__ import annotations

import re
from http import HTTPStatus

# A field name or a method: a token (RFC 9110 §5.6.2).
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# What no field value may hold: it would end the line, or the head.
UNSAFE_VALUE = re.compile(r"[\r\n\x00]")

# Identity fields only the gateway states (an authentication plugin does).  What a
# client sends under any X-Consumer-* name is dropped on arrival.
CONSUMER_FIELDS = frozenset({b"x-consumer-username", b"x-consumer-custom-id", b"x-consumer-groups"})
CONSUMER_PREFIX = b"x-consumer-"
# The plan of an API product the consumer called under (docs/apis.md): stated by the
# gateway only, dropped on arrival like the identity fields.
PLAN_FIELD = b"x-quiver-plan"

# Response fields the proxy states itself on every response it sends: framing and
# hop-by-hop fields (RFC 9110 §7.6.1); whoever renders a head leaves them out.
FRAMING_AND_HOP_BY_HOP = frozenset(
    {
        b"content-length",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"upgrade",
    }
)

# Connection tokens that are options of the connection itself, not names of
# hop-by-hop fields to drop (RFC 9110 §7.6.1).
CONNECTION_OPTIONS = frozenset({b"close", b"keep-alive", b"upgrade"})

# Request headers with a meaning to the proxy, never copied upstream as they are:
# hop-by-hop fields (RFC 9110 §7.6.1) and those the proxy rebuilds itself.
SPECIAL_REQUEST_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
        b"expect",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-request-id",
    }
    | CONSUMER_FIELDS
)


def reason_phrase(status: int) -> bytes:
    """The reason phrase of a status line (``b"Unknown"`` for a code without one)."""
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"
