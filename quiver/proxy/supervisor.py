"""The master process of ``quiver serve --workers N``.

The master reserves each listening address (bound, never listening, so it takes
no connections) and forks N workers that each bind the same address with
SO_REUSEPORT: the kernel spreads connections across them.  It announces the
addresses once a worker is accepting, replaces a worker that dies (with backoff
when one keeps dying at start), and stops every worker gracefully on SIGTERM or
SIGINT.  Each worker has an index, 0 to N-1, that its replacement takes over; it
names the worker in its log lines (see quiver.logconfig).

Signals are blocked in the master and taken with ``sigwaitinfo`` rather than
handled asynchronously, so none is lost while a worker is being forked.

A reload goes through the config source (``quiver.config.sources``) like a single
worker's, without an event loop: on SIGHUP, or when the source says it ``changed()``
(looked at every ``poll_interval`` seconds while waiting for signals), the master
loads and validates the config and, when it is valid, passes SIGHUP on to every
worker.  The workers do not validate it again: the master leaves the validated config
in the run directory (:mod:`quiver.proxy.handoff`) and each worker takes it from
there, loading the file itself only when it changed since.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from quiver.config.models import Config, Listen
from quiver.config.sources import FileSource, file_signature
from quiver.logconfig import tag_worker
from quiver.plugins.catalog import Catalog
from quiver.plugins.stores import remove_in_flight_tables
from quiver.proxy.handoff import handoff_path, remove_handoff, write_handoff
from quiver.proxy.reload import applied, read_config
from quiver.proxy.server import BoundAddress, listen_socket
from quiver.proxy.snapshot import compile_snapshot
from quiver.proxy.status import default_run_dir
from quiver.proxy.sweeper import Sweeper
from quiver.proxy.worker import run_worker

log = logging.getLogger("quiver.supervisor")

_QUICK_DEATH = 1.0  # a worker dying sooner than this after start counts as a crash loop
_MAX_BACKOFF = 5.0
_READY_TIMEOUT = 30.0
_STOP_MARGIN = 5.0  # beyond the workers' drain timeout, before they are killed
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP}


@dataclass
class Supervisor:
    config: Config
    workers: int
    config_path: str | None = None
    run_dir: Path | None = None
    catalog: Catalog | None = None  # plugins and target types of the config (and reloads)
    #: settings from the command line, kept over the file's on reload
    overrides: dict[str, object] = field(default_factory=dict)
    children: dict[int, float] = field(default_factory=dict)  # pid -> start time
    indexes: dict[int, int] = field(default_factory=dict)  # pid -> worker index
    _addresses: list[tuple[Listen, str]] = field(default_factory=list)
    _backoff: float = 0.0
    # fixed at start, like the addresses: a reload does not change it
    drain_timeout: float = field(init=False)

    def __post_init__(self) -> None:
        self.drain_timeout = self.config.drain_timeout

    def run(self) -> int:
        # before the workers start: a change made once they are announced is seen
        source = self._source()
        interval = source.poll_interval if source is not None else None
        reserved = [
            listen_socket(spec.address, reuse_port=True, listen=False)
            for spec in self.config.listen
        ]
        announced = []
        for spec, sock in zip(self.config.listen, reserved, strict=True):
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            self._addresses.append((spec, f"{shown}:{port}"))
            announced.append(BoundAddress(host, port, spec.tls is not None))
        remove_in_flight_tables(self._run_dir())  # left by gateways that are gone
        ready_read, ready_write = os.pipe()
        previous_chld = signal.signal(signal.SIGCHLD, lambda *_: None)  # queued, not dropped
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for index in range(self.workers):
                self._spawn(ready_write, index)
            if select.select([ready_read], [], [], _READY_TIMEOUT)[0]:
                for address in announced:
                    log.info("proxy listening on %s", address.url)
            else:
                log.error("no worker became ready within %.0fs", _READY_TIMEOUT)
            while True:
                if source is not None and interval is not None:
                    info = signal.sigtimedwait(_SIGNALS, interval)
                    if info is None:
                        if source.changed():
                            self._reload(source)
                        continue
                else:
                    info = signal.sigwaitinfo(_SIGNALS)
                if info.si_signo == signal.SIGCHLD:
                    self._reap_and_replace(ready_write)
                elif info.si_signo == signal.SIGHUP:
                    self._reload(source)
                else:
                    break
        finally:
            self._stop_children()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            signal.signal(signal.SIGCHLD, previous_chld)
            os.close(ready_read)
            os.close(ready_write)
            for sock in reserved:
                sock.close()
            remove_in_flight_tables(self._run_dir(), ended=os.getpid())
            remove_handoff(handoff_path(self._run_dir(), os.getpid()))
        return 0

    def _run_dir(self) -> Path:
        return self.run_dir or default_run_dir(self._addresses[0][1])

    def _spawn(self, ready_write: int, index: int) -> None:
        master = os.getpid()  # (the workers' shared tables are named after it)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                tag_worker(index)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                # SIGHUP stays blocked (pending) until the worker can handle it
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS - {signal.SIGHUP})
                sockets = [
                    (spec, listen_socket(address, reuse_port=True))
                    for spec, address in self._addresses
                ]

                def ready(_addresses: list[BoundAddress]) -> None:
                    os.write(ready_write, b".")

                run_worker(
                    self.config,
                    sockets,
                    announce=ready,
                    grace=self.drain_timeout,
                    config_path=self.config_path,
                    catalog=self.catalog,
                    overrides=self.overrides,
                    run_dir=self._run_dir(),
                    worker=index,
                    instance=master,
                )
            except BaseException:
                log.exception("worker failed")
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.children[pid] = time.monotonic()
        self.indexes[pid] = index
        log.info("worker %d started (index %d)", pid, index)

    def _source(self) -> FileSource | None:
        """Where reloaded configs come from: the config file, watched with ``watch``."""
        if self.config_path is None:
            return None
        return FileSource(
            self.config_path, self.catalog, poll=self.config.watch, overrides=self.overrides
        )

    def _reload(self, source: FileSource | None) -> None:
        if source is None:
            log.warning("no config file to reload")
            return
        signature = file_signature(source.path)  # (taken first: a later change is seen)
        config = read_config(source)
        if config is None or not self._compiles(config):
            return
        self.config = config  # workers started from now on get it too
        write_handoff(handoff_path(self._run_dir(), os.getpid()), config, signature)
        for pid in self.children:
            _kill(pid, signal.SIGHUP)
        log.info("config %s is valid: workers reload it", source.name)

    def _compiles(self, config: Config) -> bool:
        """Whether ``config`` compiles (what validation cannot tell, as a CA file gone):
        one the workers would refuse must not become what new workers start with."""
        loop = asyncio.new_event_loop()

        def compile_once(config: Config) -> None:
            sweeper = Sweeper(loop, interval=1.0)
            compile_snapshot(config, loop, sweeper, catalog=self.catalog).close()

        try:
            return applied(compile_once, config)
        finally:
            loop.close()

    def _reap_and_replace(self, ready_write: int) -> None:
        while self.children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
            started = self.children.pop(pid, None)
            if started is None:
                continue
            index = self.indexes.pop(pid)
            log.error("worker %d exited (%s); starting another", pid, _describe(status))
            quick = time.monotonic() - started < _QUICK_DEATH
            self._backoff = min(_MAX_BACKOFF, self._backoff * 2 or 0.1) if quick else 0.0
            if self._backoff:
                time.sleep(self._backoff)
            self._spawn(ready_write, index)  # the replacement takes the same index

    def _stop_children(self) -> None:
        for pid in self.children:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.drain_timeout + _STOP_MARGIN
        while self.children and time.monotonic() < deadline:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                signal.sigtimedwait({signal.SIGCHLD}, 0.1)
            else:
                self.children.pop(pid, None)
        for pid in self.children:
            _kill(pid, signal.SIGKILL)


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
