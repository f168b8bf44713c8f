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

Store mode hands the supervisor a :class:`MasterSource` of its own (the config
store, which only the master reads): its configs reach the workers through the
handoff alone.  A :class:`Sidecar` (the admin API) runs in a child process of its
own beside the workers: started once the workers are, restarted with backoff when
it dies, stopped with them.

The master keeps the node's metrics going across worker restarts
(:class:`~quiver.observe.node_metrics.MasterMetrics`): the counters of every worker
that ended, the restarts, the configs handed over and the store revision served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from quiver.config.models import Config, Listen
from quiver.config.sources import FileSource, SourceUnavailable, file_signature
from quiver.errors import ConfigError
from quiver.logconfig import tag_worker
from quiver.observe.node_metrics import MasterMetrics
from quiver.plugins.catalog import Catalog
from quiver.plugins.stores import remove_in_flight_tables
from quiver.proxy.handoff import Signature, handoff_path, remove_handoff, write_handoff
from quiver.proxy.reload import applied, full_collections_held, refused
from quiver.proxy.server import BoundAddress, listen_socket
from quiver.proxy.sidecar import Sidecar, SidecarProcess
from quiver.proxy.snapshot import compile_snapshot
from quiver.proxy.status import default_run_dir
from quiver.proxy.sweeper import Sweeper
from quiver.proxy.worker import run_worker

log = logging.getLogger("quiver.supervisor")

_QUICK_DEATH = 1.0  # a worker dying sooner than this after start counts as a crash loop
_MAX_BACKOFF = 5.0
_READY_TIMEOUT = 30.0
_STOP_MARGIN = 5.0  # beyond the workers' drain timeout, before they are killed
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1}


class MasterSource(Protocol):
    """Where the master process reads configs from, for itself alone."""

    @property
    def name(self) -> str:
        """What log lines call the source."""

    @property
    def poll_interval(self) -> float | None:
        """Seconds between two calls of ``changed()``; None: only SIGHUP reloads."""

    def changed(self) -> bool:
        """Whether the config may have changed since the last load; cheap."""

    def load_signed(self) -> tuple[Config, Signature]:
        """The current config and what the handoff says it was read from.
        ConfigError when it is invalid; SourceUnavailable when it cannot be read now."""

    def served(self, config: Config, signature: Signature) -> None:
        """``config``, loaded with ``signature``, compiled and was handed to the
        workers: it is what new workers start with."""

    @property
    def revision(self) -> int | None:
        """The store revision served (None: the source has no revisions)."""


class FileMaster:
    """The config file as the master's source: the handoff carries its signature, and
    a worker that finds the file changed since loads it itself."""

    def __init__(self, source: FileSource) -> None:
        self.source = source

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def poll_interval(self) -> float | None:
        return self.source.poll_interval

    def changed(self) -> bool:
        return self.source.changed()

    def load_signed(self) -> tuple[Config, Signature]:
        signature = file_signature(self.source.path)  # (taken first: a later change is seen)
        return self.source.load(), signature

    def served(self, config: Config, signature: Signature) -> None:
        pass

    @property
    def revision(self) -> int | None:
        return None


@dataclass
class Supervisor:
    config: Config
    workers: int
    config_path: str | None = None
    run_dir: Path | None = None
    catalog: Catalog | None = None  # plugins and target types of the config (and reloads)
    #: settings from the command line, kept over the file's on reload
    overrides: dict[str, object] = field(default_factory=dict)
    #: where configs come from when it is not the config file: the workers take
    #: every config from the handoff then (store mode)
    source: MasterSource | None = None
    sidecar: Sidecar | None = None
    #: where the workers spool the call log for the sidecar to ingest (None: nowhere)
    calls_dir: Path | None = None
    #: hand a new config to the workers before the trial compile, which then runs in
    #: a child process at low priority: the workers compile it meanwhile (store mode,
    #: where an apply should be live within a second)
    trial_after_handoff: bool = False
    children: dict[int, float] = field(default_factory=dict)  # pid -> start time
    indexes: dict[int, int] = field(default_factory=dict)  # pid -> worker index
    _addresses: list[tuple[Listen, str]] = field(default_factory=list)
    _reserved: list[socket.socket] = field(default_factory=list)
    _backoff: float = 0.0
    _sidecar: SidecarProcess | None = None
    _trial: _Trial | None = None  # the config whose trial compile runs
    _trial_pid: int | None = None
    _next_trial: _Trial | None = None  # the config whose trial waits for it
    _metrics: MasterMetrics | None = None
    # fixed at start, like the addresses: a reload does not change it
    drain_timeout: float = field(init=False)

    def __post_init__(self) -> None:
        self.drain_timeout = self.config.drain_timeout

    def run(self) -> int:
        # before the workers start: a change made once they are announced is seen
        source = self._source()
        interval = source.poll_interval if source is not None else None
        reserved = self._reserved = [
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
        metrics = self._metrics = MasterMetrics(self._run_dir())
        metrics.begin(source.revision if source is not None else None)
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
            if self.sidecar is not None:
                self._sidecar = SidecarProcess(
                    self.sidecar, unblock=_SIGNALS, in_child=self._close_reserved, proxy=announced
                )
                self._sidecar.start_soon()
            next_look = time.monotonic() + (interval or 0.0)
            while True:
                timeout = self._sidecar.timeout() if self._sidecar is not None else None
                if source is not None and interval is not None:
                    left = max(0.0, next_look - time.monotonic())
                    timeout = left if timeout is None else min(timeout, left)
                info: signal.struct_siginfo | None
                if timeout is None:
                    info = signal.sigwaitinfo(_SIGNALS)
                else:
                    info = signal.sigtimedwait(_SIGNALS, timeout)
                if self._sidecar is not None:
                    self._sidecar.tend()
                if interval is not None and time.monotonic() >= next_look:
                    if source is not None and source.changed():
                        self._reload(source)
                    next_look = time.monotonic() + interval
                if info is None:
                    continue
                if info.si_signo == signal.SIGCHLD:
                    self._reap_and_replace(ready_write)
                elif info.si_signo == signal.SIGHUP:
                    self._reload(source)
                elif info.si_signo == signal.SIGUSR1:  # reopen the access log files
                    for pid in self.children:
                        _kill(pid, signal.SIGUSR1)
                else:
                    break
        finally:
            workers = list(self.children)
            self._stop_children()
            metrics.end(workers)
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
                # the others stay blocked (pending) until the worker handles them: a
                # SIGTERM while it starts then drains it, SIGUSR1 does not end it
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
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
                    config_path=self.config_path if self.source is None else None,
                    catalog=self.catalog,
                    overrides=self.overrides,
                    run_dir=self._run_dir(),
                    worker=index,
                    instance=master,
                    handed_off=self.source is not None,
                    calls_dir=self.calls_dir,
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

    def _source(self) -> MasterSource | None:
        """Where reloaded configs come from: the source handed in, else the config
        file, watched with ``watch``."""
        if self.source is not None:
            return self.source
        if self.config_path is None:
            return None
        return FileMaster(
            FileSource(
                self.config_path, self.catalog, poll=self.config.watch, overrides=self.overrides
            )
        )

    def _reload(self, source: MasterSource | None) -> None:
        if source is None:
            log.warning("no config file to reload")
            return
        # Loading makes thousands of objects: full collections, scanning all of them
        # again and again, would double the time (the reload of a worker does the same)
        with full_collections_held():
            self._reload_from(source)

    def _reload_from(self, source: MasterSource) -> None:
        started = time.perf_counter()
        try:
            config, signature = source.load_signed()
        except ConfigError as exc:  # (an unreadable file is one too, naming the reason)
            refused(exc)
            return
        except SourceUnavailable:  # (the source logged why)
            return
        loaded = time.perf_counter()
        if self.trial_after_handoff:
            self._hand_off(config, signature)
            log.info(
                "config %s handed to the workers (loaded in %.2fs, handed over in %.2fs)",
                source.name,
                loaded - started,
                time.perf_counter() - loaded,
            )
            self._start_trial(_Trial(config, signature, source, time.monotonic()))
            return
        if not self._compiles(config):
            return
        compiled = time.perf_counter()
        self.config = config  # workers started from now on get it too
        self._hand_off(config, signature)
        log.info(
            "config %s is valid: workers reload it (loaded in %.2fs, trial compile %.2fs, "
            "handed over in %.2fs)",
            source.name,
            loaded - started,
            compiled - loaded,
            time.perf_counter() - compiled,
        )
        source.served(config, signature)
        self._served(source)

    def _served(self, source: MasterSource) -> None:
        if self._metrics is not None:
            self._metrics.served(source.revision)

    def _hand_off(self, config: Config, signature: Signature) -> None:
        write_handoff(handoff_path(self._run_dir(), os.getpid()), config, signature)
        for pid in self.children:
            _kill(pid, signal.SIGHUP)
        if self._metrics is not None:
            self._metrics.reloaded()

    def _start_trial(self, trial: _Trial) -> None:
        """Trial-compile a config handed over in a child process at low priority; its
        end (:meth:`_trial_ended`) makes it the config new workers start with.  One
        trial runs at a time: a newer config's waits for it (only the newest waits)."""
        if self._trial_pid is not None:
            self._next_trial = trial
            return
        pid = os.fork()
        if pid == 0:  # the trial
            code = 1
            try:
                os.nice(10)
                code = 0 if self._compiles(trial.config) else 1
            except BaseException:
                log.exception("trial compile failed")
            finally:
                logging.shutdown()
                os._exit(code)
        self._trial_pid, self._trial = pid, trial

    def _trial_ended(self, status: int, *, stopping: bool = False) -> None:
        trial, self._trial, self._trial_pid = self._trial, None, None
        assert trial is not None
        if os.waitstatus_to_exitcode(status) != 0:
            log.error(
                "config %s does not compile (the workers refuse it too): new workers "
                "start with the previous config",
                trial.signature,
            )
        else:
            self.config = trial.config  # workers started from now on get it too
            for pid, started in self.children.items():
                if started >= trial.handed_at and not stopping:  # (started with the previous)
                    _kill(pid, signal.SIGHUP)
            log.info(
                "config %s passed its trial compile (%.2fs after the handover): new workers "
                "start with it",
                trial.signature,
                time.monotonic() - trial.handed_at,
            )
            trial.source.served(trial.config, trial.signature)
            self._served(trial.source)
        waiting, self._next_trial = self._next_trial, None
        if waiting is not None and not stopping:
            self._start_trial(waiting)

    def _compiles(self, config: Config) -> bool:
        return compiles(config, self.catalog)

    def _reap_and_replace(self, ready_write: int) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self._sidecar is not None and pid == self._sidecar.pid:
                self._sidecar.exited(status, _describe(status))
                continue
            if pid == self._trial_pid:
                self._trial_ended(status)
                continue
            started = self.children.pop(pid, None)
            if started is None:
                continue
            index = self.indexes.pop(pid)
            log.error("worker %d exited (%s); starting another", pid, _describe(status))
            if self._metrics is not None:
                self._metrics.worker_ended(pid, restarted=True)
            quick = time.monotonic() - started < _QUICK_DEATH
            self._backoff = min(_MAX_BACKOFF, self._backoff * 2 or 0.1) if quick else 0.0
            if self._backoff:
                time.sleep(self._backoff)
            self._spawn(ready_write, index)  # the replacement takes the same index

    def _stop_children(self) -> None:
        # A trial under way ends while the workers drain: its config is the one they
        # serve, and the source keeps it (the last good config of store mode).
        trial = self._trial_pid
        sidecar = self._sidecar.stop() if self._sidecar is not None else None
        alive = set(self.children) | ({sidecar} if sidecar is not None else set())
        for pid in alive:
            _kill(pid, signal.SIGTERM)
        if trial is not None:
            alive.add(trial)
        deadline = time.monotonic() + self.drain_timeout + _STOP_MARGIN
        while alive and time.monotonic() < deadline:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                signal.sigtimedwait({signal.SIGCHLD}, 0.1)
                continue
            alive.discard(pid)
            self.children.pop(pid, None)
            if pid == trial:
                self._trial_ended(status, stopping=True)
        for pid in alive:
            _kill(pid, signal.SIGKILL)

    def _close_reserved(self) -> None:
        for sock in self._reserved:
            sock.close()


@dataclass(frozen=True)
class _Trial:
    """A config handed to the workers, to be trial-compiled."""

    config: Config
    signature: Signature
    source: MasterSource
    handed_at: float  # time.monotonic() when it was handed to the workers


def compiles(config: Config, catalog: Catalog | None) -> bool:
    """Whether ``config`` compiles (what validation cannot tell, as a CA file gone;
    the reason is logged when not): one the workers would refuse must not become what
    new workers start with."""
    loop = asyncio.new_event_loop()

    def compile_once(config: Config) -> None:
        sweeper = Sweeper(loop, interval=1.0)
        compile_snapshot(config, loop, sweeper, catalog=catalog).close()

    try:
        return applied(compile_once, config)
    finally:
        loop.close()


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"
