"""Sessions of the handshake revisions, kept in their ids instead of in a worker.

A client of revision 2025-11-25 opens a session with ``initialize`` and names it in
``Mcp-Session-Id`` on every later request.  The gateway keeps nothing: the id *is*
the session (the protocol version agreed, who opened it, when), signed with HMAC so
it cannot be made up or changed.  Any worker of any node holding the same key reads
it, so no request needs to reach the worker that answered ``initialize``.

The session grants nothing by itself: every request is still authenticated by the
route's plugins.  Binding it to the consumer that opened it keeps one consumer from
continuing another's session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from quiver.mcp.protocol import HANDSHAKE

#: how far apart the clocks of two nodes may be
_SKEW = 60.0


@dataclass(frozen=True, slots=True)
class Session:
    protocol_version: str
    #: the consumer that opened it ("" when the route has no authentication)
    consumer: str
    opened: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSeal:
    """Makes and reads session ids with one key; ``ttl`` seconds after it was opened
    a session is over (the client opens a new one)."""

    def __init__(self, key: bytes, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.ttl = ttl
        self.clock = clock

    @classmethod
    def keyed(cls, secret: str, ttl: float) -> SessionSeal:
        """A seal keyed by ``secret`` (any text: a config value, a derived one)."""
        return cls(hashlib.sha256(secret.encode()).digest(), ttl)

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest()[:18])

    def open(self, protocol_version: str, consumer: str) -> str:
        """The id of a new session."""
        document = {"v": protocol_version, "c": consumer, "t": int(self.clock())}
        payload = _b64(orjson.dumps(document))
        return f"{payload}.{self._mac(payload)}"

    def read(self, session_id: str, consumer: str) -> Session | None:
        """The session ``session_id`` names, if it is one of ours, still open and
        opened by ``consumer``; None otherwise (the client is told 404)."""
        payload, dot, mac = session_id.partition(".")
        if not dot or len(session_id) > 512:
            return None
        if not hmac.compare_digest(mac.encode("ascii", "replace"), self._mac(payload).encode()):
            return None
        try:
            document = orjson.loads(_unb64(payload))
            session = Session(str(document["v"]), str(document["c"]), float(document["t"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.protocol_version not in HANDSHAKE or session.consumer != consumer:
            return None
        now = self.clock()  # (a node whose clock is a little behind still reads it)
        if not session.opened - _SKEW <= now < session.opened + self.ttl:
            return None
        return session
