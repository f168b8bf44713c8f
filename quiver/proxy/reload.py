"""Reloading the config into a running worker without dropping a request.

A reload loads and validates the whole config from its source first; an invalid one
is refused with a log line naming every problem and the worker keeps serving the
config it has.  A valid one is compiled into a new snapshot that replaces the old
one in a single assignment (``ProxyServer.swap``); its settings (``listen``,
``workers``, ...) take effect on restart only.  The source says when to reload: for
the config file, SIGHUP, and with ``watch: true`` a change of the file
(:class:`quiver.config.sources.FileSource`).

A reload never holds up the requests being served: the config is loaded (read,
parsed, validated: the slow part) in a thread, and compiled on the event loop in
slices of at most ``SLICE`` seconds, the loop serving requests between two slices;
requests keep being routed by the previous snapshot until the new one is complete.
A reload asked for while one is under way runs once that one is done.

A worker keeps the objects it starts with out of the garbage collector's way
(``gc.freeze()``); a reload of thousands of routes makes as many new ones, and a full
collection scanning them stalls the loop for tens of milliseconds.  With ``freeze``,
full collections wait while a reload runs (young ones go on, which promote the new
snapshot to the old generation); once the new snapshot is installed, a young collection
and ``gc.freeze()`` put it with the rest.  The objects of the previous snapshot are
freed by their reference counts as before; only reference cycles among them (a
retired target's nodes and pools, a few dozen objects each) stay frozen for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator

from quiver.config.models import Config
from quiver.config.sources import ConfigSource, restart_only_changes
from quiver.errors import ConfigError
from quiver.proxy.server import ProxyServer
from quiver.proxy.snapshot import Snapshot, Steps

log = logging.getLogger("quiver.reload")

_REFUSED = "config reload refused, still serving the previous config:\n%s"

#: longest a compiling step runs before the event loop gets its turn (seconds)
SLICE = 0.01


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
    except Exception as exc:
        refused(exc)
        return False
    return True


def refused(exc: Exception) -> None:
    """Log why compiling a new config failed (call it while handling ``exc``)."""
    if isinstance(exc, ConfigError):  # (what only compiling finds, as a TLS file gone)
        log.error(_REFUSED, exc)
    else:
        log.exception("config reload failed, still serving the previous config")


async def run_in_slices(
    steps: Steps, slice_seconds: float = SLICE, clock: Callable[[], float] = time.perf_counter
) -> Snapshot:
    """Drive ``steps`` to the end, yielding to the event loop whenever a run of steps
    took ``slice_seconds``; their snapshot.  Cancelled, it closes ``steps``."""
    try:
        started = clock()
        while True:
            try:
                next(steps)
            except StopIteration as done:
                snapshot: Snapshot = done.value
                return snapshot
            if clock() - started >= slice_seconds:
                await asyncio.sleep(0)
                started = clock()
    finally:
        steps.close()


@contextlib.contextmanager
def full_collections_held() -> Iterator[None]:
    """No full collection by the garbage collector inside (young ones go on)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], 1 << 30)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


class Reloader:
    def __init__(
        self,
        server: ProxyServer,
        source: ConfigSource,
        loop: asyncio.AbstractEventLoop,
        *,
        freeze: bool = False,
    ) -> None:
        self.server = server
        self.source = source
        self.loop = loop
        #: the worker froze what it started with: freeze each installed snapshot too
        self.freeze = freeze
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def start(self) -> None:
        self.source.watch(self.loop, self.reload)

    def stop(self) -> None:
        self.source.close()
        if self._task is not None:
            self._task.cancel()

    def reload(self) -> None:
        """Start reloading; when a reload is under way, run another once it ends."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = self.loop.create_task(self._reloads())

    async def _reloads(self) -> None:
        again = True
        while again:
            self._again = False
            await self.reload_now()
            again = self._again

    async def reload_now(self) -> bool:
        """Load, compile and install the source's config; whether it went through."""
        if not self.freeze:
            return await self._reload()
        with full_collections_held():
            done = await self._reload()
        if done:
            gc.collect(1)
            gc.freeze()
        return done

    async def _reload(self) -> bool:
        started = time.perf_counter()
        config = await self.loop.run_in_executor(None, read_config, self.source)
        if config is None:
            return False
        changed = restart_only_changes(self.server.state.snapshot.config, config)
        if changed:
            names = ", ".join(f"'{name}'" for name in changed)
            log.warning("%s changes take effect on restart only", names)
        loaded = time.perf_counter()
        try:
            snapshot = await run_in_slices(self.server.steps(config))
        except Exception as exc:
            refused(exc)
            return False
        self.server.install(snapshot)
        log.info(
            "config reloaded from %s (%d targets, %d routes; loaded in %.2fs, compiled in %.2fs)",
            self.source.name,
            len(config.targets),
            len(config.routes),
            loaded - started,
            time.perf_counter() - loaded,
        )
        return True
