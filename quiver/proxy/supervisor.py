"""The master process of ``quiver serve --workers N``.

The master reserves each listening address (bound, never listening, so it takes
no connections) and forks N workers that each bind the same address with
SO_REUSEPORT: the kernel spreads connections across them.  A worker that dies is
replaced; a worker that keeps dying right after start is replaced with backoff.
SIGTERM or SIGINT stops every worker gracefully.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass, field

from quiver.config.models import Config, Listen
from quiver.proxy.server import BoundAddress, listen_socket
from quiver.proxy.worker import run_worker

log = logging.getLogger("quiver.supervisor")

_QUICK_DEATH = 1.0  # a worker dying sooner than this after start counts as a crash loop
_MAX_BACKOFF = 5.0


class _Stop(Exception):
    pass


@dataclass
class Supervisor:
    config: Config
    workers: int
    demo_socket: socket.socket | None = None
    children: dict[int, float] = field(default_factory=dict)  # pid -> start time
    _addresses: list[tuple[Listen, str]] = field(default_factory=list)

    def run(self) -> int:
        reserved = [
            listen_socket(spec.address, reuse_port=True, listen=False)
            for spec in self.config.listen
        ]
        for spec, sock in zip(self.config.listen, reserved, strict=True):
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            self._addresses.append((spec, f"{shown}:{port}"))
            log.info("proxy listening on %s", BoundAddress(host, port, spec.tls is not None).url)
        signal.signal(signal.SIGTERM, _raise_stop)
        signal.signal(signal.SIGINT, _raise_stop)
        backoff = 0.0
        try:
            for _ in range(self.workers):
                self._spawn()
            while True:
                pid, status = os.wait()
                started = self.children.pop(pid, None)
                if started is None:
                    continue
                log.error("worker %d exited (%s); starting another", pid, _describe(status))
                quick = time.monotonic() - started < _QUICK_DEATH
                backoff = min(_MAX_BACKOFF, backoff * 2 or 0.1) if quick else 0.0
                if backoff:
                    time.sleep(backoff)
                self._spawn()
        except _Stop:
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self._stop_children()
            for sock in reserved:
                sock.close()
        return 0

    def _spawn(self) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                sockets = [
                    (spec, listen_socket(address, reuse_port=True))
                    for spec, address in self._addresses
                ]
                run_worker(self.config, sockets, demo_socket=self.demo_socket)
            except BaseException:
                log.exception("worker failed")
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = time.monotonic()
        log.info("worker %d started", pid)

    def _stop_children(self) -> None:
        for pid in self.children:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15.0
        while self.children and time.monotonic() < deadline:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(0.05)
            else:
                self.children.pop(pid, None)
        for pid in self.children:
            _kill(pid, signal.SIGKILL)


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
