"""Active health: probe every node with ``GET {path}`` on a schedule.

Each node gets its own task on the loop.  A probe is an HTTP/1.1 request sent
through the outbound client's machinery over the node's own pool, so it meets the
node as proxied traffic does: same TLS (with its SNI name), same keep-alive
connections (a fresh one when none is idle).  ``timeout`` covers connecting, the
handshake and the response; a body beyond ``_MAX_BODY`` bytes is not read (the
connection is dropped instead).  A probe fails on a timeout, a refused or broken
connection, an unparsable answer or a status not in ``statuses``; when the node's
pool is at its connection limit the probe is skipped (the node is busy, not sick).

Nodes start healthy.  ``unhealthy_threshold`` failed probes in a row take a node
out, ``healthy_threshold`` good ones in a row bring it back; the verdict is one
part of ``node.up`` (see ``quiver.proxy.health.node``).  The first probe goes out
as soon as the checker starts, then one every ``interval`` (start to start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypedDict
from urllib.parse import quote

from quiver.config.resilience import ActiveHealthCheck
from quiver.errors import GatewayTimeout, HTTPError, ServiceUnavailable
from quiver.proxy.health.node import NodeHealth
from quiver.proxy.outbound import send_to_node
from quiver.proxy.outbound.wire import header_block

if TYPE_CHECKING:
    from quiver.proxy.upstream import Node

log = logging.getLogger("quiver.health")

USER_AGENT = "quiver-health-check"
_PROBE_FIELDS = header_block("GET", {"User-Agent": USER_AGENT, "Accept": "*/*"}, b"")
_MAX_BODY = 65536


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
            request = probe_request(self.settings.path, node.request_line_tail)
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
                if status is not None:
                    state.record(status, None, loop.time())
            await asyncio.sleep(max(0.0, started + interval - loop.time()))


def probe_request(path: str, request_line_tail: bytes) -> bytes:
    """``GET path`` for the node whose request line ends with ``request_line_tail``
    (its version and Host field: ``Node.request_line_tail``)."""
    # characters not allowed in a request target are percent-encoded (RFC 3986 section 3.3)
    target = quote(path, safe="/?&=%:@!$'()*+,;~-._").encode("ascii")
    return b"GET " + target + request_line_tail + _PROBE_FIELDS


async def probe(
    loop: asyncio.AbstractEventLoop, node: Node, request: bytes, timeout: float
) -> int | None:
    """Send ``request`` to ``node`` over its pool; the response status, or None when
    the pool is full.  Raises ProbeFailed saying what went wrong."""
    try:
        response = await send_to_node(node, "GET", loop=loop, head=request, timeout=timeout)
    except GatewayTimeout as exc:
        raise ProbeFailed(f"no response within {timeout:g}s") from exc
    except ServiceUnavailable:
        return None
    except HTTPError as exc:
        # (the node's label starts most reasons: the log line names the node already)
        reason = exc.internal or exc.detail
        raise ProbeFailed(reason.removeprefix(f"{node.label} ")) from exc
    # the body is read so that the connection can be kept; if that fails, the status
    # is the verdict all the same (and the connection is dropped)
    async with response:
        with contextlib.suppress(HTTPError):
            await response.read(limit=_MAX_BODY)
    return response.status
