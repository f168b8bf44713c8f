"""Node health: passive ejection, active probes over real sockets, and the up rule."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
import trustme
import uvloop

from quiver.config.models import Pool, Timeouts
from quiver.config.resilience import ActiveHealthCheck, HealthCheck, PassiveHealthCheck
from quiver.config.resilience import CircuitBreaker as BreakerSettings
from quiver.proxy.breaker import BreakerState, CircuitBreaker
from quiver.proxy.health import (
    ActiveHealth,
    ActiveHealthChecker,
    NodeHealth,
    PassiveHealth,
    watch_nodes,
)
from quiver.proxy.health.active import probe_request
from quiver.proxy.sweeper import Sweeper
from quiver.proxy.upstream import Node, NodePool

pytestmark = pytest.mark.timeout(20)

T = TypeVar("T")
WAIT = 3.0  # longest wait for an expected change before the test fails


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def make_node(
    port: int = 80,
    *,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Node:
    return Node(
        "127.0.0.1",
        port,
        weight=1,
        ssl_context=ssl_context,
        server_hostname=server_hostname,
        default_port=443 if ssl_context else 80,
    )


def state_of(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state read afresh: a type checker keeps the value an earlier assert
    narrowed ``breaker.state`` to across the calls that change it."""
    return breaker.state


async def until(predicate: Callable[[], bool], what: str) -> None:
    """Wait (bounded) for ``predicate`` to hold."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


# -- passive ----------------------------------------------------------------------------


def passive_settings(**overrides: Any) -> PassiveHealthCheck:
    values: dict[str, Any] = {"failures": 3, "timeouts": 2, "cooldown": 0.05}
    values.update(overrides)
    return PassiveHealthCheck(**values)


def test_consecutive_failures_eject_and_the_node_comes_back_after_the_cooldown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="quiver.health")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        node = make_node(9001)
        health = NodeHealth(node, loop, passive=passive_settings(cooldown=0.05))
        passive = health.passive
        assert passive is not None
        changed = asyncio.Event()

        def on_change(part: PassiveHealth) -> None:
            health.part_changed(part)
            changed.set()

        passive.on_change = on_change

        health.record("failure", loop.time())
        health.record("failure", loop.time())
        assert node.up and not changed.is_set()
        ejected_at = loop.time()
        health.record("failure", ejected_at)
        assert not node.up
        snap = passive.snapshot()
        assert snap["ejected"] and snap["reason"] == "3 requests in a row failed"
        assert snap["failures"] == 0, "counts start afresh after an ejection"
        assert snap["revives_at"] is not None and snap["revives_at"] >= ejected_at + 0.05

        changed.clear()
        await asyncio.wait_for(changed.wait(), WAIT)  # no request arrives: the timer revives it
        assert loop.time() >= ejected_at + 0.05 - 0.002
        assert node.up
        assert passive.snapshot()["ejected"] is False
        assert passive.snapshot()["reason"] == "3 requests in a row failed"

    run(main)
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("WARNING", "node 127.0.0.1:9001 ejected for 0.05s: 3 requests in a row failed"),
        ("INFO", "node 127.0.0.1:9001 back in rotation after its cooldown"),
    ]


def test_consecutive_timeouts_eject_on_their_own_count() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        passive = PassiveHealth(passive_settings(failures=3, timeouts=2, cooldown=60), loop)
        passive.record("timeout", 0.0)
        passive.record("failure", 0.0)  # a failure does not reset the timeout count
        assert not passive.ejected
        passive.record("timeout", 0.0)
        assert passive.ejected
        assert passive.reason == "2 requests in a row timed out"
        passive.close()

    run(main)


def test_a_success_resets_both_counts() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        passive = PassiveHealth(passive_settings(failures=3, timeouts=2), loop)
        for _ in range(5):
            passive.record("failure", 0.0)
            passive.record("failure", 0.0)
            passive.record("timeout", 0.0)
            passive.record("ok", 0.0)
        assert not passive.ejected
        assert (passive.failures, passive.timeouts) == (0, 0)

    run(main)


def test_outcomes_during_an_ejection_do_not_extend_or_end_it() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        node = make_node()
        health = NodeHealth(node, loop, passive=passive_settings(failures=1, cooldown=0.05))
        health.record("failure", loop.time())
        passive = health.passive
        assert passive is not None
        revives_at = passive.revives_at
        health.record("ok", loop.time())
        assert not node.up, "a late success of an earlier request does not end the cooldown"
        health.record("failure", loop.time())
        assert passive.revives_at == revives_at
        await until(lambda: node.up, "the revival")

    run(main)


def test_closing_cancels_a_pending_revival() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        node = make_node()
        health = NodeHealth(node, loop, passive=passive_settings(failures=1, cooldown=0.01))
        health.record("failure", loop.time())
        health.close()
        passive = health.passive
        assert passive is not None and passive.revives_at is not None
        # timers run in order: this one runs after the revival would have
        after = loop.create_future()
        loop.call_at(passive.revives_at + 0.005, after.set_result, None)
        await after
        assert not node.up

    run(main)


# -- the up rule ------------------------------------------------------------------------


def active_settings(**overrides: Any) -> ActiveHealthCheck:
    values: dict[str, Any] = {
        "interval": 0.02,
        "timeout": 0.2,
        "healthy_threshold": 2,
        "unhealthy_threshold": 3,
    }
    values.update(overrides)
    return ActiveHealthCheck(**values)


def test_a_node_is_up_only_when_every_part_agrees() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        node = make_node()
        breaker_settings = BreakerSettings(
            min_requests=1, failure_rate=1.0, open_for=60, half_open_probes=1
        )
        passive_config = passive_settings(failures=1, cooldown=0.02)
        health = NodeHealth(node, loop, passive=passive_config, breaker=breaker_settings)
        assert node.breaker is health.breaker
        health.active = ActiveHealth(
            active_settings(unhealthy_threshold=1, healthy_threshold=1),
            on_change=health.part_changed,
        )
        assert node.up

        health.active.record(500, None, 0.0)
        assert not node.up
        health.record("failure", loop.time())  # passive ejects, breaker opens
        assert health.passive is not None and health.passive.ejected
        assert health.breaker is not None and health.breaker.state == "open"

        health.active.record(200, None, 1.0)
        assert not node.up, "probes pass but passive and breaker still keep it out"
        passive = health.passive
        await until(lambda: not passive.ejected, "the end of the cooldown")
        assert not node.up, "the breaker is still open"
        health.breaker.poll(health.breaker.reopens_at or 0.0)
        assert health.breaker.state == "half_open"
        assert node.up
        assert health.breaker.admit(loop.time())
        assert not node.up, "half-open with every trial slot taken"
        health.breaker.release()
        assert node.up
        health.close()

    run(main)


def test_an_open_breaker_turns_half_open_on_its_own() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        node = make_node()
        settings = BreakerSettings(min_requests=2, failure_rate=0.5, open_for=0.03)
        health = NodeHealth(node, loop, breaker=settings)
        breaker = health.breaker
        assert breaker is not None
        opened = loop.time()
        health.record("failure", opened)
        health.record("timeout", opened)
        assert state_of(breaker) == "open" and not node.up
        await until(lambda: node.up, "the breaker to turn half-open")
        assert state_of(breaker) == "half_open"
        assert loop.time() >= opened + 0.03 - 0.002
        assert health.snapshot(loop.time()) == {
            "up": True,
            "passive": None,
            "active": None,
            "breaker": {
                "state": "half_open",
                "failures": 2,
                "requests": 2,
                "opened_at": opened,
                "trials": 0,
            },
        }

    run(main)


def test_watch_nodes_attaches_health_only_when_configured() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        bare = [make_node(1), make_node(2)]
        assert watch_nodes(bare, loop, None, None) is None
        assert all(n.health is None and n.breaker is None for n in bare)

        nodes = [make_node(1), make_node(2)]
        config = HealthCheck(passive=passive_settings(), active=active_settings())
        checker = watch_nodes(nodes, loop, config, BreakerSettings())
        assert isinstance(checker, ActiveHealthChecker)
        for node in nodes:
            assert isinstance(node.health, NodeHealth)
            assert node.breaker is node.health.breaker is not None
            assert node.health.passive is not None and node.health.active is not None
        assert list(checker.snapshot()) == ["127.0.0.1:1", "127.0.0.1:2"]

    run(main)


# -- active: probe requests and status lines --------------------------------------------


def test_probe_request_is_a_kept_alive_http11_get() -> None:
    node = Node("api.test", 8080, weight=1, ssl_context=None, server_hostname=None, default_port=80)
    assert probe_request("/health z?a=1", node.request_line_tail) == (
        b"GET /health%20z?a=1 HTTP/1.1\r\nHost: api.test:8080\r\n"
        b"User-Agent: quiver-health-check\r\nAccept: */*\r\n\r\n"
    )


# -- active: real servers ---------------------------------------------------------------


class ProbeServer:
    """A local HTTP server whose answer can change while it runs.

    ``answer`` is a status code, or "hang" to read the request and never reply, or
    bytes to send as they are.  With ``keep_alive`` a connection answers every
    request on it; else it closes after the first.
    """

    def __init__(self, answer: int | str | bytes = 200, *, keep_alive: bool = False) -> None:
        self.answer = answer
        self.keep_alive = keep_alive
        self.connections = 0
        self.heads: list[bytes] = []
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # bound now, listening only from start(): until then connections are refused
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]

    async def start(self, tls: ssl.SSLContext | None = None) -> ProbeServer:
        self.server = await asyncio.start_server(self._serve, sock=self.sock, ssl=tls)
        return self

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        else:
            self.sock.close()
        for writer in self._writers:
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.connections += 1
        try:
            while True:
                self.heads.append(await reader.readuntil(b"\r\n\r\n"))
                answer = self.answer
                if isinstance(answer, bytes):
                    writer.write(answer)
                elif isinstance(answer, int):
                    writer.write(b"HTTP/1.1 %d Whatever\r\nContent-Length: 0\r\n\r\n" % answer)
                else:  # "hang"
                    await reader.read()
                    return
                await writer.drain()
                if not self.keep_alive:
                    return
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


class Transitions:
    """Records each verdict change of a probed node, and wakes waiters."""

    def __init__(self, checker: ActiveHealthChecker) -> None:
        self.seen: list[tuple[str, bool, int, int, str | None]] = []
        self._changed = asyncio.Event()
        for node, state in checker.watched:
            state.on_change = self._wrap(node, state.on_change)

    def _wrap(
        self, node: Node, inner: Callable[[ActiveHealth], None] | None
    ) -> Callable[[ActiveHealth], None]:
        def changed(state: ActiveHealth) -> None:
            if inner is not None:
                inner(state)
            assert node.up == state.healthy, "node.up follows the verdict at once"
            self.seen.append(
                (node.label, state.healthy, state.failures, state.successes, state.last_error)
            )
            self._changed.set()

        return changed

    async def wait(self, count: int) -> None:
        async def enough() -> None:
            while len(self.seen) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(enough(), WAIT)


def give_pools(nodes: list[Node], loop: asyncio.AbstractEventLoop) -> Sweeper:
    """Each node its connection pool, as a compiled target's nodes have."""
    sweeper = Sweeper(loop, interval=0.05)
    for node in nodes:
        node.pool = NodePool(node, Pool(), Timeouts(), loop, sweeper)
    sweeper.start()
    return sweeper


async def checking(
    nodes: list[Node], settings: ActiveHealthCheck, body: Callable[..., Awaitable[None]]
) -> None:
    loop = asyncio.get_running_loop()
    sweeper = give_pools(nodes, loop)
    checker = ActiveHealthChecker(nodes, settings, loop)
    transitions = Transitions(checker)
    checker.start()
    try:
        await body(checker, transitions)
    finally:
        checker.stop()
        await checker.wait_stopped()
        sweeper.stop()
        for node in nodes:
            assert node.pool is not None
            node.pool.close()


def test_a_healthy_node_stays_up_and_gets_well_formed_probes() -> None:
    async def main() -> None:
        server = await ProbeServer(204).start()
        node = make_node(server.port)

        async def body(checker: ActiveHealthChecker, transitions: Transitions) -> None:
            _, state = checker.watched[0]
            await until(lambda: state.successes >= 3, "three good probes")
            snap = state.snapshot()
            assert snap["healthy"] and snap["failures"] == 0 and snap["successes"] >= 3
            assert snap["last_status"] == 204 and snap["last_error"] is None
            assert snap["last_probe_at"] is not None
            assert transitions.seen == [] and node.up

        try:
            await checking([node], active_settings(path="/healthz"), body)
        finally:
            server.close()
        assert server.heads[0] == (
            b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"User-Agent: quiver-health-check\r\nAccept: */*\r\n\r\n" % server.port
        )

    run(main)


async def down_then_up(
    server: ProbeServer,
    settings: ActiveHealthCheck,
    error: str,
    recover: Callable[[], Awaitable[None]],
) -> None:
    """Probe ``server``: down after exactly unhealthy_threshold failures, then
    up after exactly healthy_threshold successes once ``recover`` ran."""
    node = make_node(server.port)

    async def body(checker: ActiveHealthChecker, transitions: Transitions) -> None:
        await transitions.wait(1)
        assert transitions.seen == [(node.label, False, 3, 0, error)]
        _, state = checker.watched[0]
        assert not node.up
        await recover()
        await transitions.wait(2)
        assert transitions.seen[1] == (node.label, True, 0, 2, None)
        assert node.up
        assert state.snapshot()["last_status"] == 200

    try:
        await checking([node], settings, body)
    finally:
        server.close()


def test_a_node_answering_500_goes_down_and_comes_back() -> None:
    async def main() -> None:
        server = await ProbeServer(500).start()

        async def recover() -> None:
            server.answer = 200

        await down_then_up(server, active_settings(), "unhealthy status 500", recover)

    run(main)


def test_a_node_refusing_connections_goes_down_and_comes_back() -> None:
    async def main() -> None:
        server = ProbeServer(200)  # bound but not listening: connections are refused

        async def recover() -> None:
            await server.start()

        await down_then_up(server, active_settings(), "refused the connection", recover)

    run(main)


def test_a_node_that_never_answers_goes_down_on_timeouts_and_comes_back() -> None:
    async def main() -> None:
        server = await ProbeServer("hang").start()

        async def recover() -> None:
            server.answer = 200

        settings = active_settings(timeout=0.05)
        await down_then_up(server, settings, "no response within 0.05s", recover)
        assert len(server.heads) >= 5, "every probe reached the server"

    run(main)


def test_a_node_closing_without_a_response_fails_its_probes() -> None:
    async def main() -> None:
        listener = await asyncio.start_server(lambda r, w: w.transport.abort(), "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        node = make_node(port)

        async def body(checker: ActiveHealthChecker, transitions: Transitions) -> None:
            await transitions.wait(1)
            _, healthy, failures, _, error = transitions.seen[0]
            assert (healthy, failures) == (False, 3)
            assert error == "closed the connection"

        try:
            await checking([node], active_settings(), body)
        finally:
            listener.close()

    run(main)


def test_probes_reuse_a_kept_alive_connection() -> None:
    async def main() -> None:
        server = await ProbeServer(200, keep_alive=True).start()
        node = make_node(server.port)

        async def body(checker: ActiveHealthChecker, transitions: Transitions) -> None:
            await until(lambda: checker.watched[0][1].successes >= 3, "three good probes")

        try:
            await checking([node], active_settings(), body)
        finally:
            server.close()
        assert server.connections == 1 and len(server.heads) >= 3

    run(main)


def test_a_node_answering_something_other_than_http_fails_its_probes() -> None:
    async def main() -> None:
        server = await ProbeServer(b"SSH-2.0-OpenSSH_9.6\r\n").start()
        node = make_node(server.port)

        async def body(checker: ActiveHealthChecker, transitions: Transitions) -> None:
            await transitions.wait(1)
            _, healthy, failures, _, error = transitions.seen[0]
            assert (healthy, failures) == (False, 3)
            assert error is not None and error.startswith("invalid response from upstream")

        try:
            await checking([node], active_settings(), body)
        finally:
            server.close()

    run(main)


def test_each_node_is_judged_on_its_own() -> None:
    async def main() -> None:
        good = await ProbeServer(200).start()
        bad = await ProbeServer(503).start()
        nodes = [make_node(good.port), make_node(bad.port)]

        async def body(checker: ActiveHealthChecker, transitions: Transitions) -> None:
            await transitions.wait(1)
            assert transitions.seen == [(nodes[1].label, False, 3, 0, "unhealthy status 503")]
            assert nodes[0].up and not nodes[1].up
            snap = checker.snapshot()
            assert snap[nodes[0].label]["healthy"] and not snap[nodes[1].label]["healthy"]

        try:
            await checking(nodes, active_settings(), body)
        finally:
            good.close()
            bad.close()

    run(main)


def test_stopped_checker_sends_no_more_probes() -> None:
    async def main() -> None:
        server = await ProbeServer(200).start()
        loop = asyncio.get_running_loop()
        nodes = [make_node(server.port)]
        sweeper = give_pools(nodes, loop)
        checker = ActiveHealthChecker(nodes, active_settings(), loop)
        checker.start()
        await until(lambda: len(server.heads) >= 1, "a probe")
        checker.stop()
        await checker.wait_stopped()
        sent = len(server.heads)
        done = loop.create_future()
        loop.call_later(0.1, done.set_result, None)  # five intervals
        await done
        assert len(server.heads) == sent
        server.close()
        sweeper.stop()

    run(main)


def test_probe_transitions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="quiver.health")

    async def main() -> int:
        server = await ProbeServer(500).start()

        async def recover() -> None:
            server.answer = 200

        await down_then_up(server, active_settings(), "unhealthy status 500", recover)
        return server.port

    port = run(main)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            f"node 127.0.0.1:{port} unhealthy: 3 failed probes, last: unhealthy status 500",
        ),
        ("INFO", f"node 127.0.0.1:{port} healthy again: 2 good probes"),
    ]


# -- active: TLS ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("node.test").configure_cert(context)
    return context


def test_tls_probe_reaches_a_node_that_the_context_trusts(ca: trustme.CA) -> None:
    async def main() -> None:
        server = await ProbeServer(200).start(server_tls(ca))
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(client)
        node = make_node(server.port, ssl_context=client, server_hostname="node.test")

        async def body(checker: ActiveHealthChecker, transitions: Transitions) -> None:
            await until(lambda: checker.watched[0][1].successes >= 2, "two good probes")
            assert checker.snapshot()[node.label]["last_status"] == 200
            assert transitions.seen == [] and node.up

        try:
            await checking([node], active_settings(), body)
        finally:
            server.close()
        assert server.heads[0].startswith(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % server.port)

    run(main)


def test_tls_probe_fails_on_an_untrusted_certificate(ca: trustme.CA) -> None:
    async def main() -> None:
        server = await ProbeServer(200).start(server_tls(ca))
        client = ssl.create_default_context()  # does not trust the test CA
        node = make_node(server.port, ssl_context=client, server_hostname="node.test")

        async def body(checker: ActiveHealthChecker, transitions: Transitions) -> None:
            await transitions.wait(1)
            _, healthy, failures, _, error = transitions.seen[0]
            assert (healthy, failures) == (False, 3)
            assert error is not None and error.startswith("TLS certificate of 127.0.0.1:")
            assert server.heads == [], "no request goes out over an unverified connection"

        try:
            await checking([node], active_settings(), body)
        finally:
            server.close()

    run(main)
