"""Reloading the config file into a running worker without dropping a request.

A reload reads and validates the whole file first; an invalid file is refused with
a log line naming every problem and the worker keeps serving the config it has.
A valid one is compiled into a new snapshot that replaces the old one in a single
assignment (``ProxyServer.swap``).  Triggers: SIGHUP, and with ``watch: true`` a
change of the file (polled once a second: size, mtime and inode).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from quiver.config import load_config
from quiver.config.models import Config
from quiver.errors import ConfigError
from quiver.proxy.server import ProxyServer

log = logging.getLogger("quiver.reload")

WATCH_INTERVAL = 1.0


def read_config(path: str) -> Config | None:
    """The config at ``path``, or None (logged) when it cannot be used."""
    try:
        return load_config(path)
    except ConfigError as exc:
        log.error("config reload refused, still serving the previous config:\n%s", exc)
    except OSError as exc:
        log.error("config reload refused, cannot read %s: %s", path, exc.strerror)
    return None


def file_signature(path: str) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class Reloader:
    def __init__(
        self, server: ProxyServer, path: str, loop: asyncio.AbstractEventLoop, *, watch: bool
    ) -> None:
        self.server = server
        self.path = path
        self.loop = loop
        self.watch = watch
        self._signature = file_signature(path)
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.loop.add_signal_handler(signal.SIGHUP, self.reload)
        if self.watch:
            self._handle = self.loop.call_later(WATCH_INTERVAL, self._poll)

    def stop(self) -> None:
        self.loop.remove_signal_handler(signal.SIGHUP)
        if self._handle is not None:
            self._handle.cancel()

    def reload(self) -> bool:
        config = read_config(self.path)
        if config is None:
            return False
        current = self.server.state.snapshot.config
        if config.listen != current.listen or config.workers != current.workers:
            log.warning("'listen' and 'workers' changes take effect on restart only")
        self.server.swap(config)
        log.info(
            "config reloaded from %s (%d targets, %d routes)",
            self.path,
            len(config.targets),
            len(config.routes),
        )
        return True

    def _poll(self) -> None:
        signature = file_signature(self.path)
        if signature is not None and signature != self._signature:
            self._signature = signature
            self.reload()
        self._handle = self.loop.call_later(WATCH_INTERVAL, self._poll)
