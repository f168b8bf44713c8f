"""Running one worker process: an event loop serving the proxy until told to stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import uvloop

from quiver.config.models import Config, Listen
from quiver.config.sources import FileSource
from quiver.plugins.catalog import Catalog
from quiver.plugins.stores import Stores, remove_in_flight_tables
from quiver.proxy.handoff import HandedOffSource, HandoffSource, handoff_path
from quiver.proxy.lag import LoopLag
from quiver.proxy.reload import Reloader
from quiver.proxy.server import BoundAddress, ProxyServer
from quiver.proxy.status import StatusWriter

log = logging.getLogger("quiver.worker")

Announce = Callable[[list[BoundAddress]], None]


@dataclass(frozen=True)
class _WorkerOptions:
    path: str | None
    watch: bool
    run_dir: Path | None
    catalog: Catalog | None
    overrides: Mapping[str, object]
    worker: int
    instance: int | None
    handed_off: bool
    calls_dir: Path | None


def run_worker(
    config: Config,
    sockets: list[tuple[Listen, socket.socket]],
    *,
    announce: Announce | None = None,
    grace: float = 10.0,
    config_path: str | None = None,
    watch: bool = False,
    run_dir: Path | None = None,
    catalog: Catalog | None = None,
    overrides: Mapping[str, object] | None = None,
    worker: int = 0,
    instance: int | None = None,
    handed_off: bool = False,
    calls_dir: Path | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain for up to ``grace`` seconds.

    With ``config_path``, SIGHUP (and a change of the file when ``watch``) reloads it.
    Plugins and in-process target types come from ``catalog`` (the one ``config`` was
    validated against); ``overrides`` are the command line's settings, kept over
    the file's on reload.  ``worker`` is this worker's index and ``instance`` the pid
    of the master process that forked it (None: the worker runs alone); the plugins'
    shared tables in ``run_dir`` are named and shared by them.  ``handed_off``: the
    master reads the config from a source the worker does not (the config store), and
    on SIGHUP the worker takes the one it left in the handoff.  ``calls_dir``: where
    the worker spools the call log for the admin sidecar to ingest (None: no sidecar
    ingests, no call log).
    """
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    options = _WorkerOptions(
        config_path,
        watch,
        run_dir,
        catalog,
        dict(overrides or {}),
        worker,
        instance,
        handed_off,
        calls_dir,
    )
    try:
        loop.run_until_complete(_serve(loop, config, sockets, announce, grace, options))
    finally:
        loop.close()


async def _serve(
    loop: asyncio.AbstractEventLoop,
    config: Config,
    sockets: list[tuple[Listen, socket.socket]],
    announce: Announce | None,
    grace: float,
    options: _WorkerOptions,
) -> None:
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # a SIGTERM or SIGINT that arrived while forking was held back (see the supervisor)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    if options.instance is None and options.run_dir is not None:
        remove_in_flight_tables(options.run_dir)  # left by gateways that are gone
    stores = Stores(options.run_dir, worker=options.worker, instance=options.instance)
    server = ProxyServer(config, loop, options.catalog, stores, calls_dir=options.calls_dir)
    addresses = await server.start(sockets)
    reloader = None
    if options.handed_off and options.instance is not None and options.run_dir is not None:
        handed = HandedOffSource(handoff_path(options.run_dir, options.instance))
        reloader = Reloader(server, handed, loop, freeze=True)
        reloader.start()
    elif options.path is not None:
        source: FileSource
        if options.instance is not None and options.run_dir is not None:
            # the master validated the config before passing the reload on
            handoff = handoff_path(options.run_dir, options.instance)
            source = HandoffSource(
                options.path, handoff, options.catalog, overrides=options.overrides
            )
        else:
            source = FileSource(
                options.path, options.catalog, poll=options.watch, overrides=options.overrides
            )
        reloader = Reloader(server, source, loop, freeze=True)  # (see gc.freeze() below)
        reloader.start()
    else:
        loop.add_signal_handler(signal.SIGHUP, log.warning, "no config file to reload")
    writer = server.state.record_writer
    # SIGUSR1: reopen the access log file (after logrotate moved it); ignored without one
    loop.add_signal_handler(signal.SIGUSR1, writer.reopen if writer is not None else _ignore_usr1)
    lag = LoopLag(loop, serving=lambda: bool(server.state.connections))
    status = None
    if options.run_dir is not None:
        # a master process keeps the metrics of its workers (quiver.observe.node_metrics)
        metrics = options.instance is not None
        status = StatusWriter(server.state, options.run_dir, lag, metrics=metrics)
    if status is not None:
        status.start()
    # a SIGHUP or SIGUSR1 that arrived while starting was held back (see the supervisor)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP, signal.SIGUSR1})
    if announce is not None:
        announce(addresses)
    # Everything allocated so far lives as long as the worker: keep it out of the
    # collector's way (fewer objects scanned, no copy-on-write after fork).
    gc.collect()
    gc.freeze()
    lag.start()
    await stop.wait()
    lag.stop()
    log.info("stopping: draining connections for up to %gs", grace)
    if reloader is not None:
        reloader.stop()
    if status is not None:
        status.stop()
    await server.stop(grace)
    if status is not None:
        status.write_metrics()  # (what the stop let finish is counted)
    if options.instance is None and options.run_dir is not None:
        remove_in_flight_tables(options.run_dir, ended=os.getpid())


def _ignore_usr1() -> None:
    log.debug("SIGUSR1 ignored: no access log file to reopen")
