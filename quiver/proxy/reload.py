"""Reloading the config into a running worker without dropping a request.

A reload loads and validates the whole config from its source first; an invalid one
is refused with a log line naming every problem and the worker keeps serving the
config it has.  A valid one is compiled into a new snapshot that replaces the old
one in a single assignment (``ProxyServer.swap``); its settings (``listen``,
``workers``, ...) take effect on restart only.  The source says when to reload: for
the config file, SIGHUP, and with ``watch: true`` a change of the file
(:class:`quiver.config.sources.FileSource`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from quiver.config.models import Config
from quiver.config.sources import ConfigSource, restart_only_changes
from quiver.errors import ConfigError
from quiver.proxy.server import ProxyServer

log = logging.getLogger("quiver.reload")

_REFUSED = "config reload refused, still serving the previous config:\n%s"


def read_config(source: ConfigSource) -> Config | None:
    """The config of ``source``, or None (logged) when it cannot be used."""
    try:
        return source.load()
    except ConfigError as exc:  # (an unreadable file is one too, naming the reason)
        log.error(_REFUSED, exc)
    return None


def applied(apply: Callable[[Config], object], config: Config) -> bool:
    """Whether ``apply(config)``, a compiling of it, went through; when not, the
    reason is logged and the previous config is served on."""
    try:
        apply(config)
    except ConfigError as exc:  # (what only compiling finds, as a TLS file gone since)
        log.error(_REFUSED, exc)
        return False
    except Exception:
        log.exception("config reload failed, still serving the previous config")
        return False
    return True


class Reloader:
    def __init__(
        self, server: ProxyServer, source: ConfigSource, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.server = server
        self.source = source
        self.loop = loop

    def start(self) -> None:
        self.source.watch(self.loop, self.reload)

    def stop(self) -> None:
        self.source.close()

    def reload(self) -> bool:
        config = read_config(self.source)
        if config is None:
            return False
        changed = restart_only_changes(self.server.state.snapshot.config, config)
        if changed:
            names = ", ".join(f"'{name}'" for name in changed)
            log.warning("%s changes take effect on restart only", names)
        if not applied(self.server.swap, config):
            return False
        log.info(
            "config reloaded from %s (%d targets, %d routes)",
            self.source.name,
            len(config.targets),
            len(config.routes),
        )
        return True
