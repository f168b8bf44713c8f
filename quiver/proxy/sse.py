"""Heartbeats on idle server-sent event streams, for the routes that ask
(``routes[].sse.heartbeat``).

Event streams need nothing special to be relayed as they come: the proxy writes
every upstream read to the client at once, whatever the body.  A heartbeat is one
thing more: a comment line (``: keep-alive``) sent when a stream has been silent
for the route's interval, so that intermediaries that close idle connections keep
it.  Such a route gets one more phase provider in its chain, :class:`SSEWatch`:
its ``response_headers`` phase gives a ``text/event-stream`` response a
:class:`Heartbeat`, which makes the proxy frame that body itself (decoded and
re-chunked, as for ``response_body`` plugins: a comment can then go between two
of its own chunks), and its ``response_body`` phase, running after every other
plugin's, watches the bytes that go out.  A comment is only ever written between
two events (after a blank line), never inside one the node is still sending.
Its timing comes from the worker's sweeper, not a timer per stream; other
responses of the route are relayed as they would be without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from quiver.config.models import RouteSSE
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.response import ResponseHead
from quiver.proxy.flow import FILTERED

if TYPE_CHECKING:
    from quiver.proxy.exchange import Exchange

COMMENT = b": keep-alive\n\n"
_CHUNKED_COMMENT = b"%x\r\n%s\r\n" % (len(COMMENT), COMMENT)
_LINE_ENDS = (10, 13)  # LF, CR


def is_event_stream(content_type: bytes | None) -> bool:
    """Whether a Content-Type value names ``text/event-stream`` (parameters aside)."""
    if content_type is None:
        return False
    return content_type.partition(b";")[0].strip().lower() == b"text/event-stream"


def ends_event(tail: bytes) -> bool:
    """Whether a stream whose last bytes are ``tail`` (three suffice) stands between
    two events: it ends with a blank line (lines end with CRLF, LF or CR)."""
    if not tail:
        return True  # nothing sent yet
    if tail.endswith(b"\r\n"):
        rest = tail[:-2]
    elif tail[-1] in _LINE_ENDS:
        rest = tail[:-1]
    else:
        return False
    # a line end before the last one (or the start of the stream) closes a blank line
    return not rest or rest[-1] in _LINE_ENDS


class Heartbeat:
    """The heartbeat of one event stream: a sweeper member whose deadline is the
    moment the stream has been silent for ``interval``."""

    __slots__ = ("deadline", "exchange", "interval", "tail")

    def __init__(self, exchange: Exchange, interval: float) -> None:
        self.exchange = exchange
        self.interval = interval
        self.deadline = 0.0
        self.tail = b""

    def start(self) -> None:
        state = self.exchange.client.server
        self.deadline = state.loop.time() + self.interval
        state.sweeper.add(self)

    def stop(self) -> None:
        self.deadline = 0.0
        self.exchange.client.server.sweeper.discard(self)

    def passed(self, chunk: bytes) -> None:
        """``chunk`` of the body goes out to the client now."""
        if chunk:
            self.tail = chunk[-3:] if len(chunk) >= 3 else (self.tail + chunk)[-3:]
            if self.deadline:
                self.deadline = self.exchange.client.server.loop.time() + self.interval

    def on_deadline(self, now: float) -> None:
        exchange = self.exchange
        transport = exchange.client.transport
        if (
            exchange.finished
            or exchange.mode != FILTERED  # a response without a body (204, 304)
            or transport is None
            or transport.is_closing()
        ):
            self.stop()
            return
        self.deadline = now + self.interval
        # mid-event, or a client that has not taken what it was sent: nothing to add
        if not ends_event(self.tail) or transport.get_write_buffer_size():
            return
        data = _CHUNKED_COMMENT if exchange.version == b"1.1" else COMMENT
        exchange.bytes_out += len(data)
        transport.write(data)


class SSEWatch(Plugin[PluginConfig]):
    """The phases that give a route's event streams their heartbeat (not a plugin
    users attach: the route's ``sse.heartbeat`` puts it in the route's chain)."""

    name = "sse"
    priority = -1_000_000  # after every plugin: it sees the bytes that go out
    Config = PluginConfig
    watches_body = True

    def __init__(self, settings: RouteSSE, context: PluginContext) -> None:
        super().__init__(PluginConfig(), context)
        assert settings.heartbeat is not None
        self.interval = settings.heartbeat

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        exchange = cast("Exchange", request)
        if is_event_stream(response.get(b"content-type")) and exchange.method != b"HEAD":
            exchange.sse = Heartbeat(exchange, self.interval)

    def response_body(self, request: PluginRequest, chunk: bytes, last: bool) -> bytes:
        heartbeat = cast("Exchange", request).sse
        if heartbeat is not None:
            if last:
                heartbeat.stop()
            else:
                heartbeat.passed(chunk)
        return chunk
