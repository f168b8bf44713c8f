"""Facts of the Model Context Protocol wire that both of the gateway's sides share.

Two revisions are spoken over Streamable HTTP:

- ``2026-07-28`` (:data:`MODERN`): stateless; every request carries its protocol
  version and the client's capabilities in ``params._meta`` and repeats its method
  (and the tool, prompt or resource it names) in the ``Mcp-Method`` and
  ``Mcp-Name`` header fields, so that a gateway can route on them without reading
  the body; ``server/discover`` says what a server speaks.
- ``2025-11-25`` and before (:data:`HANDSHAKE`): an ``initialize`` handshake that
  opens a session named by the ``Mcp-Session-Id`` field.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

MODERN: Final = ("2026-07-28",)
"""The stateless revisions, newest last."""
HANDSHAKE: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
"""The revisions that open a session with ``initialize``, newest last."""
LATEST_MODERN: Final = MODERN[-1]
LATEST_HANDSHAKE: Final = HANDSHAKE[-1]

PROTOCOL_VERSION_META: Final = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_META: Final = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_META: Final = "io.modelcontextprotocol/clientInfo"
SERVER_INFO_META: Final = "io.modelcontextprotocol/serverInfo"

PROTOCOL_VERSION_HEADER: Final = b"mcp-protocol-version"
METHOD_HEADER: Final = b"mcp-method"
NAME_HEADER: Final = b"mcp-name"
SESSION_HEADER: Final = b"mcp-session-id"

NAMED_BY: Final = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
"""The methods whose ``Mcp-Name`` field repeats a parameter, and which one."""

_SENTINEL = re.compile(r"=\?base64\?(.*)\?=")
_SAFE = re.compile(r"[\x20-\x7e]*")


def header_value(value: str) -> str:
    """``value`` as an ``Mcp-Name`` field carries it: as it is when it is printable
    ASCII without edge spaces, else base64 between ``=?base64?`` and ``?=``."""
    if _SAFE.fullmatch(value) and value == value.strip() and not _SENTINEL.fullmatch(value):
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode("ascii") + "?="


def read_header_value(value: str) -> str | None:
    """The text of an ``Mcp-Name`` field; None when its base64 form is broken."""
    match = _SENTINEL.fullmatch(value)
    if match is None:
        return value
    try:
        raw = base64.b64decode(match.group(1), validate=True)
        if base64.b64encode(raw).decode("ascii") != match.group(1):
            return None
        return raw.decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
