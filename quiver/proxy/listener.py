"""A TLS listening socket that answers plain HTTP sent to it.

Every TLS connection begins with a handshake record (content type 0x16, RFC 8446
§5.1).  The listener accepts connections itself and peeks at the first byte
before any handshake: a TLS client is handed to the event loop's TLS transport
as usual; anything else gets a plain-text 400 problem ("plain HTTP request sent
to HTTPS port", as nginx answers) and is closed.  A client that sends nothing is
closed after ``limits.header_timeout``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
from collections.abc import Callable

from quiver.proxy.sweeper import Sweeper

log = logging.getLogger("quiver.listener")

_TLS_HANDSHAKE = b"\x16"
_ACCEPT_BATCH = 64  # connections accepted per wake-up, so one port cannot starve others
_ACCEPT_RETRY = 1.0  # seconds to wait when the process is out of descriptors or memory
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

Factory = Callable[[], asyncio.Protocol]


class TlsListener:
    """Accepts on ``sock`` and routes each connection by its first byte."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        context: ssl.SSLContext,
        *,
        tls_factory: Factory,
        plain_factory: Factory,
        sweeper: Sweeper,
        first_byte_timeout: Callable[[], float],
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.context = context
        self.tls_factory = tls_factory
        self.plain_factory = plain_factory
        self.sweeper = sweeper
        self.first_byte_timeout = first_byte_timeout
        self.waiting: set[_FirstByte] = set()
        self.tasks: set[asyncio.Task[object]] = set()
        self.closed = False
        sock.listen(4096)
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting; connections already handed on carry on."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for pending in list(self.waiting):
            pending.drop()

    def abort(self) -> None:
        """Give up on handshakes still in progress (the worker is going away)."""
        self.close()
        for task in list(self.tasks):
            task.cancel()

    def _accept(self) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                log.error("cannot accept connections: %s; retrying in %.0fs", exc, _ACCEPT_RETRY)
                self.loop.remove_reader(self.sock.fileno())
                self.loop.call_later(_ACCEPT_RETRY, self._resume_accepting)
                return
            conn.setblocking(False)
            pending = _FirstByte(self, conn)
            self.waiting.add(pending)
            self.sweeper.add(pending)
            self.loop.add_reader(conn.fileno(), pending.readable)

    def _resume_accepting(self) -> None:
        if not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._accept)

    def hand_over(self, conn: socket.socket, tls: bool) -> None:
        if tls:
            handed = self.loop.connect_accepted_socket(self.tls_factory, conn, ssl=self.context)
        else:
            handed = self.loop.connect_accepted_socket(self.plain_factory, conn)
        task: asyncio.Task[object] = self.loop.create_task(handed)
        self.tasks.add(task)
        task.add_done_callback(self._handed_over)

    def _handed_over(self, task: asyncio.Task[object]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # a failed handshake: the client is gone, there is no one to answer
            log.debug("TLS handshake failed: %s", error)


class _FirstByte:
    """A connection accepted and not yet classified; it has until ``deadline``."""

    __slots__ = ("conn", "deadline", "listener")

    def __init__(self, listener: TlsListener, conn: socket.socket) -> None:
        self.listener = listener
        self.conn = conn
        self.deadline = listener.loop.time() + listener.first_byte_timeout()

    def readable(self) -> None:
        try:
            first = self.conn.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            first = b""
        listener = self._forget()
        if not first:  # closed (or reset) before saying anything
            self.conn.close()
            return
        listener.hand_over(self.conn, first == _TLS_HANDSHAKE)

    def on_deadline(self, now: float) -> None:
        self.drop()

    def drop(self) -> None:
        self._forget()
        self.conn.close()

    def _forget(self) -> TlsListener:
        listener = self.listener
        listener.loop.remove_reader(self.conn.fileno())
        listener.waiting.discard(self)
        listener.sweeper.discard(self)
        return listener
