"""Running one worker process: an event loop serving the proxy until told to stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Callable

import uvloop

from quiver.config.models import Config, Listen
from quiver.demo import DemoProtocol
from quiver.proxy.server import BoundAddress, ProxyServer

log = logging.getLogger("quiver.worker")

Announce = Callable[[list[BoundAddress]], None]


def run_worker(
    config: Config,
    sockets: list[tuple[Listen, socket.socket]],
    *,
    demo_socket: socket.socket | None = None,
    announce: Announce | None = None,
    grace: float = 10.0,
) -> None:
    """Serve until SIGTERM or SIGINT, then drain for up to ``grace`` seconds."""
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(loop, config, sockets, demo_socket, announce, grace))
    finally:
        loop.close()


async def _serve(
    loop: asyncio.AbstractEventLoop,
    config: Config,
    sockets: list[tuple[Listen, socket.socket]],
    demo_socket: socket.socket | None,
    announce: Announce | None,
    grace: float,
) -> None:
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    demo = None
    if demo_socket is not None:
        demo = await loop.create_server(DemoProtocol, sock=demo_socket)
    server = ProxyServer(config, loop)
    addresses = await server.start(sockets)
    if announce is not None:
        announce(addresses)
    # Everything allocated so far lives as long as the worker: keep it out of the
    # collector's way (fewer objects scanned, no copy-on-write after fork).
    gc.collect()
    gc.freeze()
    await stop.wait()
    log.info("stopping: draining connections for up to %.0fs", grace)
    if demo is not None:
        demo.close()
    await server.stop(grace)
