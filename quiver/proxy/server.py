"""A worker's proxy: listening sockets, the live snapshot and graceful shutdown."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from quiver.config.models import Config, Listen, RouteWebSocket, split_address
from quiver.observe.metrics import MetricsOutput, metrics_output
from quiver.observe.writer import RecordWriter, writer_for
from quiver.plugins.catalog import Catalog
from quiver.plugins.stores import Stores
from quiver.proxy.client import ClientConnection, PlainOnTlsPort
from quiver.proxy.listener import TlsListener
from quiver.proxy.outbound import OutboundClient
from quiver.proxy.phases import PhaseRunner
from quiver.proxy.records import records
from quiver.proxy.request import FieldNames
from quiver.proxy.snapshot import (
    Snapshot,
    Steps,
    TargetRuntime,
    close_all,
    compile_snapshot,
    compile_steps,
)
from quiver.proxy.sweeper import Sweeper
from quiver.proxy.tls import server_context
from quiver.proxy.tracecontext import Propagator
from quiver.proxy.websocket import CLOSE_BOUND

log = logging.getLogger("quiver.observe")

DRAIN_IDLE = 0.5  # seconds a connection may stay idle while the worker drains
#: seconds a tunnel of a route without ``websocket:`` lives on once a reload removed
#: its route (the default of ``websocket.drain_timeout``)
DEFAULT_TUNNEL_DRAIN = RouteWebSocket.model_fields["drain_timeout"].default


class ProxyState:
    """What every connection of a worker shares; ``snapshot`` is swapped whole."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        snapshot: Snapshot,
        sweeper: Sweeper,
        tracing: Propagator | None = None,
    ) -> None:
        self.loop = loop
        self.snapshot = snapshot
        self.sweeper = sweeper
        self.connections: set[ClientConnection] = set()
        #: the connections that became tunnels (upgrades the node accepted)
        self.tunnels: set[ClientConnection] = set()
        #: how many of them are WebSocket connections, by route name (the metrics'
        #: gauge: counted as they open and close, never by walking the tunnels)
        self.websockets: dict[str, int] = {}
        #: what to do with each request field, by name
        self.field_names = FieldNames(traced=tracing is not None)
        #: gives each request its trace context (None: tracing is off); fixed at start
        self.tracing = tracing
        self._request_id_prefix = os.urandom(10).hex().encode()
        self._request_count = 0
        #: exchanges whose log phases are due: run soon, and in any case before the
        #: next request's plugins (so what a log phase gives back, e.g. a concurrency
        #: slot, is back before a client's next request on a keep-alive connection)
        self.ended: list[PhaseRunner] = []
        #: a turn of the loop will run the log step (:meth:`log_turn` is scheduled):
        #: one callback however many exchanges end before it runs
        self.log_scheduled = False
        #: where ended exchanges' records go (None: no output wants them, and no
        #: record is made); fixed at start
        self.record_writer: RecordWriter | None = None
        #: the request counters (``metrics.requests``), one of the writer's outputs
        self.metrics: MetricsOutput | None = None
        #: every exchange notes what its record needs (clock readings): an output reads
        #: every exchange (access log, call log, request counters); fixed at start
        self.recording = False
        #: something reads exchanges as they begin (records, tracing); fixed at start
        self.observing = tracing is not None

    def write_records(self, writer: RecordWriter | None) -> None:
        """Hand ended exchanges' records to ``writer`` (at start: a reload keeps it);
        the flags the request path reads follow from it."""
        self.record_writer = writer
        self.recording = writer is not None and writer.recording
        self.observing = writer is not None or self.tracing is not None

    def log_turn(self) -> None:
        """The log step the loop runs once exchanges ended (scheduled once until it
        runs, even when a request's start ran the log step meanwhile)."""
        self.log_scheduled = False
        self.log_ended()

    def log_ended(self) -> None:
        """Run the log phases that are due, and hand their records to the writer."""
        ended = self.ended
        if ended:
            self.ended = []
            for exchange in ended:
                exchange.run_log()
            writer = self.record_writer
            if writer is not None:
                try:
                    writer.add(records(ended, writer.query, writer.keep))
                except Exception:  # records must never hurt the requests that call this
                    log.exception("exchange records not made")

    def new_request_id(self) -> bytes:
        """32 hex digits, unique per worker: a random prefix and a counter."""
        self._request_count += 1
        return b"%s%012x" % (self._request_id_prefix, self._request_count)


@dataclass(frozen=True)
class BoundAddress:
    host: str
    port: int
    tls: bool

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


def listen_socket(address: str, *, reuse_port: bool, listen: bool = True) -> socket.socket:
    """A TCP socket bound to ``address``; with ``reuse_port`` others may bind it too."""
    host, port = split_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(4096)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class ProxyServer:
    """Serves ``config``; its plugins and in-process targets are built from ``catalog``
    (the one the config was validated against), and so are those of every config
    swapped in later."""

    def __init__(
        self,
        config: Config,
        loop: asyncio.AbstractEventLoop,
        catalog: Catalog | None = None,
        stores: Stores | None = None,
        record_writer: RecordWriter | None = None,
        calls_dir: Path | None = None,
    ) -> None:
        """``record_writer``: one made by the caller (with its own outputs, say); by
        default one is made for ``config.access_log``, if it has one, and the call
        spool in ``calls_dir`` (where the admin sidecar ingests it), if given."""
        self.loop = loop
        #: counters and shared state of plugins, kept across reloads
        self.stores = stores if stores is not None else Stores()
        if self.stores.loop is None:
            self.stores.loop = loop
        self.catalog = catalog if catalog is not None else Catalog()
        limits = config.limits
        # (event-stream heartbeats of the routes at start-up set its pace too)
        heartbeats = [r.sse.heartbeat for r in config.routes if r.sse and r.sse.heartbeat]
        shortest = min(limits.header_timeout, limits.body_timeout, limits.idle_timeout, *heartbeats)
        self.sweeper = Sweeper(loop, interval=min(0.5, max(0.02, shortest / 4)))
        #: the worker's own requests (key sets, introspection, ...), on the live targets
        self.outbound = OutboundClient(
            loop, self.sweeper, targets=lambda: self.state.snapshot.targets
        )
        snapshot = compile_snapshot(
            config,
            loop,
            self.sweeper,
            catalog=self.catalog,
            outbound=self.outbound,
            stores=self.stores,
        )
        # settings: a reload changes neither the outputs of records nor tracing
        tracing = Propagator(config.tracing) if config.tracing is not None else None
        self.state = ProxyState(loop, snapshot, self.sweeper, tracing)
        if record_writer is None:
            self.state.metrics = metrics_output(config.metrics)
            record_writer = writer_for(
                config.access_log, config.call_log, calls_dir, self.state.metrics, config.tracing
            )
        self.state.write_records(record_writer)
        self.servers: list[asyncio.Server | TlsListener] = []
        self._budget_timer: asyncio.TimerHandle | None = None
        self.addresses: list[BoundAddress] = []

    async def start(self, sockets: list[tuple[Listen, socket.socket]]) -> list[BoundAddress]:
        if self.state.record_writer is not None:
            self.state.record_writer.start()
        self.sweeper.start()
        self._budget_timer = self.loop.call_later(1.0, self._roll_budgets)
        _start_checkers(self.state.snapshot.targets.values(), ())
        state = self.state
        for spec, sock in sockets:
            host, port = sock.getsockname()[:2]
            server: asyncio.Server | TlsListener
            if spec.tls:
                server = TlsListener(
                    self.loop,
                    sock,
                    server_context(spec.tls),
                    tls_factory=functools.partial(ClientConnection, state, b"https"),
                    plain_factory=functools.partial(PlainOnTlsPort, state, b"http"),
                    sweeper=self.sweeper,
                    first_byte_timeout=lambda: state.snapshot.limits.header_timeout,
                )
            else:
                server = await self.loop.create_server(
                    functools.partial(ClientConnection, state, b"http"), sock=sock, backlog=4096
                )
            self.servers.append(server)
            self.addresses.append(BoundAddress(host, port, spec.tls is not None))
        plain = [address for address in self.addresses if not address.tls]
        first = (plain or self.addresses)[0] if self.addresses else None
        if first is not None:
            self.outbound.listening(first.host, first.port, first.tls)
        return self.addresses

    def swap(self, config: Config) -> None:
        """Serve new requests from ``config``; requests in flight finish on the old one.

        The swap is one assignment: a request is routed by either snapshot, never a
        mix.  Targets that did not change keep their pools and health state.
        """
        old = self.state.snapshot
        self.install(
            compile_snapshot(
                config,
                self.loop,
                self.sweeper,
                previous=old,
                catalog=self.catalog,
                outbound=self.outbound,
                stores=self.stores,
            )
        )

    def steps(self, config: Config) -> Steps:
        """``config`` compiled a few routes at a time (see ``compile_steps``), taking
        over the live snapshot's unchanged targets; :meth:`install` the result before
        any other snapshot is installed."""
        return compile_steps(
            config,
            self.loop,
            self.sweeper,
            previous=self.state.snapshot,
            catalog=self.catalog,
            outbound=self.outbound,
            stores=self.stores,
        )

    def install(self, new: Snapshot) -> None:
        """Make ``new`` the live snapshot, in one assignment, and retire the old one."""
        old = self.state.snapshot
        self.state.snapshot = new
        if self.state.tunnels:
            retire_tunnels(self.state.tunnels, new, self.loop)
        _start_checkers(new.targets.values(), old.targets.values())
        kept = {id(target) for target in new.targets.values()}
        # Retired targets stop pooling at once: their idle connections close now, the
        # busy ones when their request ends.
        close_all([target for target in old.targets.values() if id(target) not in kept])

    def _roll_budgets(self) -> None:
        """Move the targets' retry budgets to the next one-second bucket."""
        now = self.loop.time()
        for target in self.state.snapshot.targets.values():
            target.budget.roll(now)
        self._budget_timer = self.loop.call_later(1.0, self._roll_budgets)

    async def stop(self, grace: float) -> None:
        """Stop accepting, let exchanges in flight finish for up to ``grace`` seconds.

        Each keep-alive connection gets its next response with ``Connection: close``.
        One that stays idle is closed after ``DRAIN_IDLE`` seconds: closing it at once
        would race a request its client may be sending right then.  (Connections
        still queued on the listening socket are lost when it closes unless another
        process listens on the same port and the kernel migrates them:
        ``net.ipv4.tcp_migrate_req = 1``, see docs/resilience.md.)
        """
        for server in self.servers:
            server.close()
        for conn in list(self.state.connections):
            conn.draining = True
        started = self.loop.time()
        deadline = started + grace
        idle_since: dict[ClientConnection, float] = {}
        tunnels_end = tunnel_deadlines(self.state.tunnels, started, grace)
        while self.state.connections and self.loop.time() < deadline:
            now = self.loop.time()
            for conn in list(self.state.connections):
                if conn.tunneled is not None:
                    if now >= tunnels_end.get(conn, started):
                        tunnels_end[conn] = deadline  # (told once)
                        conn.end_tunnel()
                elif conn.current is not None or conn.head is not None:
                    idle_since.pop(conn, None)  # busy: its response will close it
                elif now - idle_since.setdefault(conn, now) > DRAIN_IDLE:
                    conn.close()
            await asyncio.sleep(0.05)
        for conn in list(self.state.connections):
            conn.abort()
        await asyncio.sleep(0)  # (their connection_lost runs in the loop's next turn)
        self.state.log_ended()  # what they cut off is logged before the stores close
        for server in self.servers:
            if isinstance(server, TlsListener):
                server.abort()
        self.sweeper.stop()
        if self._budget_timer is not None:
            self._budget_timer.cancel()
        self.state.snapshot.close()
        self.outbound.close()
        self.stores.close()
        await self.stores.aclose()
        if self.state.record_writer is not None:  # last: what the stop cut off is in it
            self.state.record_writer.stop()


def tunnel_deadlines(
    tunnels: Iterable[ClientConnection], started: float, grace: float
) -> dict[ClientConnection, float]:
    """When each tunnel is ended in a drain of ``grace`` seconds begun at ``started``:
    after its route's ``websocket.drain_timeout`` (the whole drain without one), and
    ``CLOSE_BOUND`` before the drain's end at the latest, so that close frames are
    answered before the connections are cut."""
    last = started + max(grace - CLOSE_BOUND, 0.0)
    ends = {}
    for conn in tunnels:
        route = conn.tunneled.route if conn.tunneled is not None else None
        settings = route.websocket if route is not None else None
        wait = settings.drain_timeout if settings is not None else grace
        ends[conn] = min(started + wait, last)
    return ends


def retire_tunnels(
    tunnels: Iterable[ClientConnection], new: Snapshot, loop: asyncio.AbstractEventLoop
) -> None:
    """Tunnels of routes that ``new`` removes or sends to another target end after
    their route's ``websocket.drain_timeout`` (``DEFAULT_TUNNEL_DRAIN`` without one);
    the other routes' are not touched."""
    targets = {route.name: route.target for route in new.config.routes}
    for conn in tunnels:
        exchange = conn.tunneled
        route = exchange.route if exchange is not None else None
        if route is None or (route.name in targets and targets[route.name] == route.target.name):
            continue
        settings = route.websocket
        wait = settings.drain_timeout if settings is not None else DEFAULT_TUNNEL_DRAIN
        loop.call_later(wait, _end_tunnel, conn)


def _end_tunnel(conn: ClientConnection) -> None:
    if conn.tunneled is not None:  # (not closed meanwhile)
        conn.end_tunnel()


def _start_checkers(targets: Iterable[TargetRuntime], running: Iterable[TargetRuntime]) -> None:
    """Start the health probes of targets that are new (not among ``running``)."""
    already = {id(target) for target in running}
    for target in targets:
        if target.checker is not None and id(target) not in already:
            target.checker.start()
