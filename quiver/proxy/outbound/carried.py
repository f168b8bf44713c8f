"""What a pooled connection reads of a request the outbound client writes whole.

A pooled connection serves a proxied exchange or one of the gateway's own
requests alike (``quiver.proxy.upstream.Carried``); an outbound request has no
client to pause or tunnel to, and takes its response body decoded.
"""

from __future__ import annotations

from collections.abc import Callable

from quiver.proxy.flow import NO_BODY


class _Decoding:
    """Stands for a plugin chain with a response-body phase: it makes the connection
    parse the body and hand it over decoded (``on_response_body``)."""

    response_body = (None,)


_DECODING = _Decoding()


class WrittenWhole:
    """The parts of ``Carried`` that are the same for every outbound request."""

    __slots__ = ()

    mode = NO_BODY  # the body is neither relayed nor wrapped: it comes decoded
    out: list[bytes] = []  # (never filled: only RELAY and WRAP_CHUNKS bodies go there)
    rid = b"-"  # the gateway's own request: no client request id
    version = b"1.1"
    chain = _DECODING
    tap: Callable[[bytes, bool], None] | None = None  # (decoded already: nothing to ask)
    request_done = True  # the request is written whole at once

    def on_upgrade_accepted(self, early: bytes) -> None:
        return None  # never asked for: the connection was dropped at its head

    def on_tunnel_closed(self, closer: str = "target") -> None:
        return None

    # there is no client to pause or tunnel to
    @property
    def client(self) -> WrittenWhole:
        return self

    def pause_reading_for(self, reason: int) -> None:
        return None

    def resume_reading_for(self, reason: int) -> None:
        return None

    def write(self, data: bytes) -> None:
        return None
