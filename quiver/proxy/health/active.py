"""Active health: probe every node with ``GET {path}`` on a schedule.

Each node gets its own task on the loop.  A probe opens a fresh connection (TLS
when the node speaks https, with its SNI name), sends one HTTP/1.1 request with
``Connection: close`` and reads no further than the status line (RFC 9112
section 4); ``timeout`` covers the connect, the handshake and that line.  A probe
fails on a timeout, a refused or broken connection, an unparsable answer or a
status not in ``statuses``.

Nodes start healthy.  ``unhealthy_threshold`` failed probes in a row take a node
out, ``healthy_threshold`` good ones in a row bring it back; the verdict is one
part of ``node.up`` (see ``quiver.proxy.health.node``).  The first probe goes out
as soon as the checker starts, then one every ``interval`` (start to start).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypedDict, cast
from urllib.parse import quote

from quiver.config.resilience import ActiveHealthCheck
from quiver.proxy.health.node import NodeHealth

if TYPE_CHECKING:
    from quiver.proxy.upstream import Node

log = logging.getLogger("quiver.health")

USER_AGENT = b"quiver-health-check"
_MAX_STATUS_LINE = 8192


class ProbeFailed(Exception):
    """A probe got no usable status line; the message says why."""


class ActiveSnapshot(TypedDict):
    healthy: bool
    successes: int  # consecutive good probes
    failures: int  # consecutive failed probes
    last_status: int | None  # status of the last probe, None when it got none
    last_error: str | None  # why the last probe failed, None when it did not
    last_probe_at: float | None  # loop time the last probe ended


class ActiveHealth:
    """The probe results of one node and the verdict they add up to."""

    __slots__ = (
        "failures",
        "healthy",
        "label",
        "last_error",
        "last_probe_at",
        "last_status",
        "on_change",
        "settings",
        "statuses",
        "successes",
    )

    def __init__(
        self,
        settings: ActiveHealthCheck,
        *,
        label: str = "",
        on_change: Callable[[ActiveHealth], None] | None = None,
    ) -> None:
        self.settings = settings
        self.statuses = frozenset(settings.statuses)
        self.label = label
        self.on_change = on_change
        self.healthy = True
        self.successes = 0
        self.failures = 0
        self.last_status: int | None = None
        self.last_error: str | None = None
        self.last_probe_at: float | None = None

    def record(self, status: int | None, error: str | None, now: float) -> None:
        """One probe's result: the status it got, or why it got none."""
        self.last_status = status
        self.last_probe_at = now
        if error is None and status not in self.statuses:
            error = f"unhealthy status {status}"
        self.last_error = error
        if error is None:
            self.successes += 1
            self.failures = 0
            if not self.healthy and self.successes >= self.settings.healthy_threshold:
                log.info("node %s healthy again: %d good probes", self.label, self.successes)
                self._set(True)
        else:
            self.failures += 1
            self.successes = 0
            if self.healthy and self.failures >= self.settings.unhealthy_threshold:
                log.warning(
                    "node %s unhealthy: %d failed probes, last: %s",
                    self.label,
                    self.failures,
                    error,
                )
                self._set(False)

    def snapshot(self) -> ActiveSnapshot:
        return {
            "healthy": self.healthy,
            "successes": self.successes,
            "failures": self.failures,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "last_probe_at": self.last_probe_at,
        }

    def _set(self, healthy: bool) -> None:
        self.healthy = healthy
        if self.on_change is not None:
            self.on_change(self)


class ActiveHealthChecker:
    """Probes the nodes of one target; ``start`` and ``stop`` it with the target."""

    def __init__(
        self,
        nodes: Sequence[Node],
        settings: ActiveHealthCheck,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.settings = settings
        self.loop = loop
        #: each node with its probe state
        self.watched: list[tuple[Node, ActiveHealth]] = []
        for node in nodes:
            health = NodeHealth.of(node, loop)
            state = ActiveHealth(settings, label=node.label, on_change=health.part_changed)
            health.active = state
            health.refresh()
            self.watched.append((node, state))
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._tasks:
            return
        for node, state in self.watched:
            request = probe_request(self.settings.path, node.host_header)
            task = self.loop.create_task(
                self._watch(node, state, request), name=f"health check of {node.label}"
            )
            self._tasks.append(task)

    def stop(self) -> None:
        """Cancel the probes; ``wait_stopped`` waits until they have ended."""
        for task in self._tasks:
            task.cancel()

    async def wait_stopped(self) -> None:
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)

    def snapshot(self) -> dict[str, ActiveSnapshot]:
        """Each node's probe state, by node label."""
        return {node.label: state.snapshot() for node, state in self.watched}

    async def _watch(self, node: Node, state: ActiveHealth, request: bytes) -> None:
        loop = self.loop
        interval = self.settings.interval
        timeout = self.settings.timeout
        while True:
            started = loop.time()
            try:
                status = await probe(loop, node, request, timeout)
            except ProbeFailed as exc:
                state.record(None, str(exc), loop.time())
            except Exception as exc:  # a bug must not end the checks of this node
                log.exception("health probe of %s crashed", node.label)
                state.record(None, f"probe error: {exc!r}", loop.time())
            else:
                state.record(status, None, loop.time())
            await asyncio.sleep(max(0.0, started + interval - loop.time()))


def probe_request(path: str, host_header: bytes) -> bytes:
    # characters not allowed in a request target are percent-encoded (RFC 3986 section 3.3)
    target = quote(path, safe="/?&=%:@!$'()*+,;~-._").encode("ascii")
    return (
        b"GET " + target + b" HTTP/1.1\r\nHost: " + host_header + b"\r\n"
        b"User-Agent: " + USER_AGENT + b"\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )


async def probe(loop: asyncio.AbstractEventLoop, node: Node, request: bytes, timeout: float) -> int:
    """Send ``request`` to ``node`` on a new connection; the response status.

    Raises ProbeFailed saying what went wrong.
    """
    transport: asyncio.Transport | None = None
    done: asyncio.Future[bytes] = loop.create_future()
    ok = False
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await loop.create_connection(
                lambda: _StatusLineReader(request, done),
                node.address[0],
                node.address[1],
                ssl=node.ssl,
                server_hostname=node.server_hostname if node.ssl else None,
            )
            status = parse_status_line(await done)
        ok = True
        return status
    except TimeoutError as exc:
        raise ProbeFailed(f"no response within {timeout:g}s") from exc
    except ssl.SSLCertVerificationError as exc:
        raise ProbeFailed(f"TLS certificate rejected: {exc.verify_message or exc}") from exc
    except ssl.SSLError as exc:
        raise ProbeFailed(f"TLS error: {exc.reason or exc}") from exc
    except ConnectionRefusedError as exc:
        raise ProbeFailed("connection refused") from exc
    except OSError as exc:
        raise ProbeFailed(f"cannot connect: {exc.strerror or exc}") from exc
    finally:
        if transport is not None:
            if ok:
                transport.close()
            else:
                transport.abort()


def parse_status_line(line: bytes) -> int:
    """The status code of ``HTTP-version SP status-code SP [reason-phrase]``."""
    if (
        len(line) < 12
        or not line.startswith(b"HTTP/1.")
        or line[8:9] != b" "
        or not line[9:12].isdigit()
        or line[12:13] not in (b"", b" ")
    ):
        shown = line[:40].decode("latin-1")
        raise ProbeFailed(f"invalid status line {shown!r}")
    return int(line[9:12])


class _StatusLineReader(asyncio.Protocol):
    """Writes the probe request and resolves ``done`` with the status line."""

    def __init__(self, request: bytes, done: asyncio.Future[bytes]) -> None:
        self.request = request
        self.done = done
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self.buffer += data
        end = self.buffer.find(b"\n")
        if end >= 0:
            self.done.set_result(self.buffer[:end].rstrip(b"\r"))
        elif len(self.buffer) > _MAX_STATUS_LINE:
            self.done.set_exception(ProbeFailed("status line too long"))

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            reason = f": {exc}" if exc is not None else ""
            self.done.set_exception(ProbeFailed(f"connection closed before a response{reason}"))
