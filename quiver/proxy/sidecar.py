"""A program the master process runs in a child of its own, beside its workers.

Store mode runs the admin API this way: never on a worker's event loop, started
once the workers are up, started again with backoff when it dies (0.5 s doubling
to 30 s; back to 0.5 s after a run of 10 s), stopped with the workers.  The child
tells the port it listens on through a pipe (``b"PORT\\n"``), and the master logs
where it is reached.  The child is told where the workers accept (the addresses the
master reserved, their ports known even when the config says port 0): the admin API
sends the developer portal's "Try it" requests there.  The master waits for signals
itself (see :mod:`quiver.proxy.supervisor`), so this object never blocks: the master
calls :meth:`SidecarProcess.tend` whenever it wakes, at most :meth:`timeout` seconds
apart.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence, Set
from typing import Protocol

from quiver.proxy.server import BoundAddress

log = logging.getLogger("quiver.supervisor")

BACKOFF = (0.5, 30.0)  # first and longest wait before starting it again
STEADY = 10.0  # a sidecar that lived this long starts again after the first wait
TICK = 0.1  # how often the master looks at a sidecar coming up


class Sidecar(Protocol):
    """What runs in the child."""

    @property
    def name(self) -> str:
        """What log lines call it (e.g. "admin API")."""

    def run(self, ready_fd: int, proxy: Sequence[BoundAddress]) -> None:
        """Run in the child until SIGTERM; write ``b"PORT\\n"`` to ``ready_fd`` (then
        close it) once it accepts connections on PORT.  ``proxy``: the addresses the
        workers accept on."""

    def url(self, port: int) -> str:
        """Where it is reached, once it reported ``port``."""


class SidecarProcess:
    """The child running ``sidecar``, as the master process sees it."""

    def __init__(
        self,
        sidecar: Sidecar,
        *,
        unblock: Set[signal.Signals],
        in_child: Callable[[], None],
        proxy: Sequence[BoundAddress] = (),
    ) -> None:
        self.sidecar = sidecar
        self.proxy = tuple(proxy)  # where the workers accept, told to the child
        self.unblock = unblock  # the signals the master blocks, unblocked in the child
        self.in_child = in_child  # what the child does first (close the master's sockets)
        self.pid: int | None = None
        self.due: float | None = None  # when to start it (again); None while it runs
        self._since = 0.0
        self._backoff = 0.0
        self._pipe: int | None = None  # read end of its ready pipe, until it reports
        self._read = b""

    def start_soon(self) -> None:
        self.due = time.monotonic()

    def timeout(self) -> float | None:
        """How long the master may wait before calling :meth:`tend` (None: any)."""
        if self.pid is None and self.due is not None:
            return max(0.0, self.due - time.monotonic())
        return TICK if self._pipe is not None else None

    def tend(self) -> None:
        """Start the child when it is due; log its address once it reports it."""
        if self.pid is None and self.due is not None and time.monotonic() >= self.due:
            self.due = None
            self._spawn()
        port = self._reported_port()
        if port is not None:
            name, url = self.sidecar.name, self.sidecar.url(port)
            log.info("%s (pid %d) ready at %s", name, self.pid, url)

    def exited(self, status: int, describe: str) -> None:
        """The child ended with ``status``: start it again after the backoff."""
        lived = time.monotonic() - self._since
        self.pid = None
        self._close_pipe()
        low, high = BACKOFF
        self._backoff = low if lived >= STEADY else min(high, self._backoff * 2 or low)
        self.due = time.monotonic() + self._backoff
        log.error(
            "%s exited (%s); starting it again in %.1fs",
            self.sidecar.name,
            describe,
            self._backoff,
        )

    def stop(self) -> int | None:
        """Forget the child (to be stopped with the workers): its pid, if it runs."""
        pid, self.pid, self.due = self.pid, None, None
        self._close_pipe()
        return pid

    def _spawn(self) -> None:
        ready_read, ready_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the sidecar
            code = 0
            try:
                os.close(ready_read)
                self.in_child()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, self.unblock)
                self.sidecar.run(ready_write, self.proxy)
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    log.error("%s stopped: %s", self.sidecar.name, exc.code)
                    code = 1
            except BaseException:
                log.exception("%s failed", self.sidecar.name)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        os.close(ready_write)
        os.set_blocking(ready_read, False)
        self.pid, self._since, self._pipe, self._read = pid, time.monotonic(), ready_read, b""
        log.info("%s started (pid %d)", self.sidecar.name, pid)

    def _reported_port(self) -> int | None:
        """The port the child reported, once (None until then, and after)."""
        if self._pipe is None:
            return None
        try:
            chunk = os.read(self._pipe, 64)
        except BlockingIOError:
            return None
        self._read += chunk
        line, newline, _ = self._read.partition(b"\n")
        if not newline and chunk:
            return None
        self._close_pipe()  # a line, or the end without one (it failed to start)
        return int(line) if newline and line.strip().isdigit() else None

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
