"""WebSocket frames read as they pass, for routes with ``websocket:`` limits.

The relay never rebuilds a frame: bytes go on as they came, and a
:class:`FrameReader` per direction reads only the frame headers (RFC 6455 §5.2)
to count messages, sizes and rates.  A payload is skipped by its length without
being unmasked; only a close frame's first two bytes (its status code) are read.
A header split across reads is kept until it is whole, the one case that copies.
Compressed messages (permessage-deflate, RFC 7692) are counted as sent: the
reserved bits are not checked, as the handshake's extensions are the peers' affair.

When a limit is crossed the gateway closes both sides itself (§7.1.2): a close
frame with the code and a short reason to each (masked toward the node, as a
client's must be: §5.3), then the TCP connections once the peer answered with its
own close frame, or after ``CLOSE_BOUND`` seconds.
"""

from __future__ import annotations

import math
import os
import struct
import time
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from quiver.config.models import RouteWebSocket
    from quiver.proxy.client import ClientConnection
    from quiver.proxy.upstream import UpstreamConnection

#: status codes of a close frame (RFC 6455 §7.4.1)
NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
NO_STATUS = 1005  # a close frame without a code
ABNORMAL = 1006  # no close frame: the TCP connection ended

#: longest wait for the peers' close frames after the gateway sent its own (seconds)
CLOSE_BOUND = 1.0

ClosedBy = Literal["client", "target", "gateway"]

_CONTINUATION = 0x0
_CLOSE = 0x8
_U16 = struct.Struct(">H").unpack_from
_U64 = struct.Struct(">Q").unpack_from


class FrameReader:
    """Frame headers of one direction, read as bytes arrive (``feed``).

    ``masked`` says what the sender must do: a client masks every frame, a server
    none (§5.1).  ``feed`` answers 0, or the status code to close with when the
    stream breaks a rule; then ``cut`` is where the offending frame began in what
    was fed.  A close frame seen sets ``close_code``.
    """

    __slots__ = (
        "burst",
        "close_code",
        "close_payload",
        "control",
        "cut",
        "in_message",
        "mask",
        "masked",
        "max_size",
        "message_size",
        "messages",
        "partial",
        "rate",
        "remaining",
        "stamp",
        "tokens",
    )

    def __init__(
        self,
        *,
        masked: bool,
        max_size: int | None = None,
        rate: float | None = None,
        burst: int | None = None,
    ) -> None:
        self.masked = masked
        self.max_size = max_size
        #: messages a second (a token bucket of ``burst``); None: not limited
        self.rate = rate
        self.burst = float(burst if burst is not None else math.ceil(rate or 1))
        self.tokens = self.burst
        self.stamp = time.monotonic()
        self.remaining = 0  # payload bytes of the current frame still to pass
        self.partial = b""  # the start of a header the last read ended in
        self.in_message = False  # a fragmented message is under way
        self.message_size = 0
        self.messages = 0  # data messages begun
        self.control = False  # the payload passing is a close frame's, kept
        self.close_payload = b""
        self.mask = b""
        self.close_code = 0  # the code of the close frame seen (0: none yet)
        self.cut = 0

    def feed(self, data: bytes) -> int:
        remaining = self.remaining
        size = len(data)
        if remaining >= size and not self.control:  # the usual case: inside a payload
            self.remaining = remaining - size
            return 0
        return self._frames(data)

    def _frames(self, data: bytes) -> int:
        skipped = len(self.partial)
        if skipped:
            data = self.partial + data
            self.partial = b""
        end = len(data)
        pos = 0
        remaining = self.remaining
        if remaining:  # the rest of a payload begun in an earlier read
            pos = min(remaining, end)
            if self.control:
                self.close_payload += data[:pos]
            if remaining > end:
                self.remaining = remaining - end
                return 0
            if self.control:
                self._closed()
        mask_bit = 0x80 if self.masked else 0
        max_size = self.max_size
        rate = self.rate
        if rate is not None:  # the bucket refilled once a read, for the messages it begins
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * rate)
            self.stamp = now
        while pos < end:
            if end - pos < 2:
                break
            first = data[pos]
            second = data[pos + 1]
            length = second & 0x7F
            at = pos + 6 if second & 0x80 else pos + 2
            if length >= 126:
                at += 2 if length == 126 else 8
                if end < at:
                    break
                length = _U16(data, pos + 2)[0] if length == 126 else _U64(data, pos + 2)[0]
            elif end < at:
                break
            if (
                (first == 0x81 or first == 0x82)  # the usual: a whole message in one frame
                and second & 0x80 == mask_bit
                and not self.in_message
                and (max_size is None or length <= max_size)
            ):
                self.messages += 1
                code = POLICY_VIOLATION if rate is not None and not self._take() else 0
            else:
                code = self._check(first & 0x80, first & 0x0F, second & 0x80 == 0x80, length)
            if code:
                self.cut = max(pos - skipped, 0)
                # a good frame over a limit is skipped, to stay in step for the close
                self.remaining = 0 if code == PROTOCOL_ERROR else max(at + length - end, 0)
                return code
            pos = at + length
            if first & 0x0F == _CLOSE:
                self.mask = data[at - 4 : at] if mask_bit else b""
                self.close_payload = data[at:pos]
                if pos <= end:
                    self._closed()
                else:
                    self.control = True
        if pos > end:
            self.remaining = pos - end
            return 0
        self.remaining = 0
        if pos < end:
            self.partial = data[pos:]  # a header cut short: read whole with the next bytes
        return 0

    def _check(self, fin: int, opcode: int, masked: bool, length: int) -> int:
        """The code to close with for a frame with this header (0: it is fine)."""
        if masked != self.masked:
            return PROTOCOL_ERROR  # §5.1: masked by clients, never by servers
        if opcode >= 0x8:  # a control frame: may come between fragments (§5.4)
            if opcode > 0xA or length > 125 or not fin:
                return PROTOCOL_ERROR  # §5.5
            return 0
        if opcode == _CONTINUATION:
            if not self.in_message:
                return PROTOCOL_ERROR
        elif opcode > 0x2 or self.in_message:
            return PROTOCOL_ERROR  # a reserved opcode, or a new message amid another
        else:
            self.in_message = True
            self.message_size = 0
            self.messages += 1
            if self.rate is not None and not self._take():
                return POLICY_VIOLATION
        size = self.message_size + length
        self.message_size = size
        if self.max_size is not None and size > self.max_size:
            return MESSAGE_TOO_BIG
        if fin:
            self.in_message = False
        return 0

    def _take(self) -> bool:
        """One message from the token bucket (refilled at ``rate`` a second by
        ``_frames``, as each read begins)."""
        tokens = self.tokens - 1.0
        if tokens < 0.0:
            return False
        self.tokens = tokens
        return True

    def _closed(self) -> None:
        self.control = False
        payload = self.close_payload
        if len(payload) < 2:
            self.close_code = NO_STATUS
            return
        mask = self.mask or b"\0\0"
        self.close_code = ((payload[0] ^ mask[0]) << 8) | (payload[1] ^ mask[1])


def close_frame(code: int, reason: str, *, masked: bool) -> bytes:
    """A close frame (§5.5.1) with ``code`` and ``reason`` (cut to fit 125 bytes)."""
    payload = code.to_bytes(2, "big") + reason.encode()[:123]
    if not masked:
        return bytes((0x88, len(payload))) + payload
    mask = os.urandom(4)
    key = int.from_bytes((mask * 32)[: len(payload)], "big")
    body = (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")
    return bytes((0x88, 0x80 | len(payload))) + mask + body


class WebSocketRelay:
    """Both directions of one WebSocket connection, read frame by frame.

    It stands where a plain tunnel's node connection stands for the client side
    (``tunnel_write``, ``pause_reading``, ``resume_reading``, ``close``) and takes
    the node's bytes (``from_node``).
    """

    __slots__ = (
        "client",
        "close_code",
        "closed_by",
        "closing",
        "from_client",
        "from_target",
        "timer",
        "upstream",
    )

    def __init__(
        self, settings: RouteWebSocket, client: ClientConnection, upstream: UpstreamConnection
    ) -> None:
        self.client = client
        self.upstream = upstream
        size = settings.max_message_size
        self.from_client = FrameReader(
            masked=True, max_size=size, rate=settings.message_rate, burst=settings.message_burst
        )
        self.from_target = FrameReader(masked=False, max_size=size)
        #: the first close frame's code and who sent it (None: none yet)
        self.close_code: int | None = None
        self.closed_by: ClosedBy | None = None
        self.closing = False  # the gateway sent its own close frames
        self.timer: object = None

    # -- the client's side of the tunnel ----------------------------------------------

    def tunnel_write(self, data: bytes) -> None:
        """Bytes from the client, on their way to the node."""
        reader = self.from_client
        code = reader.feed(data)
        if self.closing:
            if reader.close_code and not code:
                self.client.close()  # its answer to ours: the server closes first (§7.1.1)
            return
        if code:
            if reader.cut:
                self.upstream.tunnel_write(data[: reader.cut])
            self.shut(code, _REASONS[code])
            return
        self.upstream.tunnel_write(data)
        if reader.close_code and self.closed_by is None:
            self.closed_by = "client"
            self.close_code = reader.close_code

    def pause_reading(self) -> None:
        self.upstream.pause_reading()

    def resume_reading(self) -> None:
        self.upstream.resume_reading()

    def close(self) -> None:
        self.upstream.close()

    # -- the node's side --------------------------------------------------------------

    def from_node(self, data: bytes) -> None:
        """Bytes from the node, on their way to the client."""
        reader = self.from_target
        code = reader.feed(data)
        if self.closing:
            if reader.close_code and not code:
                self.upstream.close()
            return
        if code:
            if reader.cut:
                self.client.write(data[: reader.cut])
            self.shut(code, _REASONS[code])
            return
        self.client.write(data)
        if reader.close_code and self.closed_by is None:
            self.closed_by = "target"
            self.close_code = reader.close_code

    # -- ending -----------------------------------------------------------------------

    def shut(self, code: int, reason: str) -> None:
        """The gateway closes the connection: a close frame to each side, then TCP."""
        if self.closing:
            return
        self.closing = True
        if self.closed_by is None:
            self.closed_by = "gateway"
            self.close_code = code
        self.client.write(close_frame(code, reason, masked=False))
        self.upstream.write(close_frame(code, reason, masked=True))
        loop = self.client.server.loop
        self.timer = loop.call_later(CLOSE_BOUND, self._close_both)

    def idle(self, seconds: float) -> None:
        """No frame either way for ``seconds``: 1001, as a server going away (§7.4.1)."""
        self.shut(GOING_AWAY, f"idle for {seconds:g}s")

    def _close_both(self) -> None:
        self.client.close()
        self.upstream.close()

    def ended(self) -> None:
        """The connection is gone: no timer outlives it."""
        timer = self.timer
        if timer is not None:
            timer.cancel()  # type: ignore[attr-defined]
            self.timer = None

    @property
    def messages_in(self) -> int:
        return self.from_client.messages

    @property
    def messages_out(self) -> int:
        return self.from_target.messages


_REASONS = {
    PROTOCOL_ERROR: "protocol error",
    POLICY_VIOLATION: "message rate exceeded",
    MESSAGE_TOO_BIG: "message too big",
}
