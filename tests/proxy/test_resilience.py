"""Balancing, health checks, retries and breakers, end to end through real sockets.

Every test runs a proxy in front of ``ScriptedNode``s that answer with their name,
switches what the nodes do while traffic flows, and asserts what clients and nodes
saw.  Waits are bounded polls on conditions; sleeps only make a node slow.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from tests.support.nodes import (
    LINGER_ZERO,
    Hit,
    Load,
    Reply,
    ScriptedNode,
    fetch,
    revives_at,
    send_until,
    wait_until,
)
from tests.support.problems import assert_problem
from tests.support.proxy import Client, RunningProxy, make_config

pytestmark = pytest.mark.timeout(30)

TIMER_SLACK = 0.02  # a loop timer may fire up to a clock tick early


@contextmanager
def behind_proxy(
    *names: str, weights: tuple[int, ...] = (), delays: tuple[float, ...] = (), **target: Any
) -> Iterator[tuple[list[ScriptedNode], RunningProxy]]:
    """Nodes named ``names`` behind one target with the settings ``target``, and its proxy."""
    with ExitStack() as stack:
        nodes = [
            stack.enter_context(ScriptedNode(name, delay=delays[i] if delays else 0.0))
            for i, name in enumerate(names)
        ]
        specs = [
            {"url": node.url, **({"weight": weights[i]} if weights else {})}
            for i, node in enumerate(nodes)
        ]
        config = make_config({"backend": {"nodes": specs, **target}})
        yield nodes, stack.enter_context(RunningProxy(config))


def served_by(client: Client, path: str = "/", headers: dict[str, str] | None = None) -> str:
    response = client.request("GET", path, headers=headers)
    assert response.status == 200, (response.status, response.body[:300])
    return response.body.decode()


def concurrent_bodies(port: int, threads: int, each: int) -> Counter[str]:
    """``threads`` keep-alive clients sending ``each`` GETs at once; who answered."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    failures: list[object] = []

    def run() -> None:
        try:
            with Client(port) as client:
                names = [served_by(client, f"/c/{n}") for n in range(each)]
        except Exception as exc:  # handed to the test thread
            failures.append(exc)
            return
        with lock:
            seen.update(names)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert not failures, failures
    return seen


# -- balancing ---------------------------------------------------------------------------


def test_weighted_round_robin_gives_each_node_its_weight_in_every_cycle() -> None:
    with behind_proxy("a", "b", weights=(3, 1)) as (_, proxy), Client(proxy.port) as client:
        names = [served_by(client, f"/{n}") for n in range(400)]
    assert Counter(names) == {"a": 300, "b": 100}
    cycles = [Counter(names[i : i + 4]) for i in range(0, 400, 4)]
    assert all(cycle == {"a": 3, "b": 1} for cycle in cycles), cycles[:5]


@contextmanager
def held_requests(port: int, nodes: list[ScriptedNode]) -> Iterator[Callable[[], None]]:
    """``send()`` starts a ``GET /hold`` in the background; the nodes hold every one
    until the block ends, and each must then have been answered 200."""
    replies: list[Reply] = []
    senders: list[threading.Thread] = []

    def send() -> None:
        sender = threading.Thread(target=lambda: replies.append(fetch(port, "/hold")))
        sender.start()
        senders.append(sender)

    try:
        yield send
    finally:
        for node in nodes:
            node.release()
        for sender in senders:
            sender.join(10)
    assert [reply.status for reply in replies] == [200] * len(senders)


def test_least_conn_sends_new_requests_to_the_node_without_slow_ones() -> None:
    balance = {"algorithm": "least_conn"}
    with (
        behind_proxy("a", "b", balance=balance) as (nodes, proxy),
        held_requests(proxy.port, nodes) as send_slow,
        Client(proxy.port) as client,
    ):
        send_slow()
        wait_until(lambda: any(node.hits() for node in nodes), "the slow request arrives")
        busy, idle = nodes if nodes[0].hits() else nodes[::-1]
        names = [served_by(client, f"/quick/{n}") for n in range(20)]
        assert names == [idle.name] * 20

        send_slow()
        wait_until(lambda: idle.hits()[-1].path == "/hold", "a second slow request arrives")
        assert [hit.path for hit in busy.hits()] == ["/hold"]
        # one slow request each: the loads tie and the nodes take turns
        names = [served_by(client, f"/quick/{n}") for n in range(20)]
        assert abs(names.count("a") - names.count("b")) <= 2, names


@pytest.mark.parametrize("algorithm", ["p2c", "ewma"])
def test_load_aware_balancers_prefer_the_fast_node(algorithm: str) -> None:
    balance = {"algorithm": algorithm}
    with behind_proxy("fast", "slow", delays=(0.0, 0.05), balance=balance) as (_, proxy):
        seen = concurrent_bodies(proxy.port, threads=4, each=50)
    assert sum(seen.values()) == 200
    assert seen["fast"] > 3 * seen["slow"], seen


def keyed_request(hash_on: str, key: int, attempt: int) -> dict[str, Any]:
    """``fetch`` arguments for a request whose hash key is ``key``, as ``hash_on`` reads it."""
    if hash_on == "header":
        return {"headers": {"X-User": f"user-{key}"}}
    if hash_on == "cookie":
        return {"headers": {"Cookie": f"theme=dark; session=s{key}; lang=en"}}
    if hash_on == "ip":
        return {"source": f"127.0.{key // 200}.{key % 200 + 2}"}
    return {"path": f"/items/{key}?page={attempt}"}  # the query is not part of the key


HASH_SETTINGS = {
    "header": {"algorithm": "consistent_hash", "hash_on": "header", "hash_key": "X-User"},
    "cookie": {"algorithm": "consistent_hash", "hash_on": "cookie", "hash_key": "session"},
    "ip": {"algorithm": "consistent_hash", "hash_on": "ip"},
    "path": {"algorithm": "consistent_hash", "hash_on": "path"},
}


@pytest.mark.parametrize("hash_on", list(HASH_SETTINGS))
def test_consistent_hash_sends_the_same_key_to_the_same_node(hash_on: str) -> None:
    keys = list(range(40))
    # each pass in another order, so that taking turns could not pass for stickiness
    orders = [keys, keys[::-1], random.Random(5).sample(keys, len(keys))]
    placed: dict[int, set[str]] = {key: set() for key in keys}
    with behind_proxy("a", "b", "c", balance=HASH_SETTINGS[hash_on]) as (_, proxy):
        for attempt, order in enumerate(orders):
            for key in order:
                reply = fetch(proxy.port, **keyed_request(hash_on, key, attempt))
                assert reply.status == 200
                placed[key].add(reply.body.decode())
    assert all(len(names) == 1 for names in placed.values()), placed
    assert len({name for names in placed.values() for name in names}) == 3


def test_requests_without_the_hash_key_are_spread_over_the_nodes() -> None:
    with (
        behind_proxy("a", "b", "c", balance=HASH_SETTINGS["header"]) as (_, proxy),
        Client(proxy.port) as client,
    ):
        names = [served_by(client) for _ in range(9)]
    assert Counter(names) == {"a": 3, "b": 3, "c": 3}


def answered(node: ScriptedNode) -> list[Hit]:
    """The requests ``node`` answered: a killed node may still read a request that
    was already on its way over a pooled connection (Linux queues data that arrives
    after shutdown(SHUT_RD)), which it records and then resets unanswered."""
    return [hit for hit in node.hits() if hit.status is not None]


@pytest.mark.parametrize("taken_away", ["ejected", "stopped"])
def test_taking_a_node_away_moves_only_the_keys_it_had(taken_away: str) -> None:
    settings: dict[str, Any] = {"balance": HASH_SETTINGS["header"]}
    if taken_away == "ejected":
        settings["health_check"] = {"passive": {"failures": 1, "cooldown": 60}}
    else:
        # every request for a key of c is retried: no backoff, and a budget for all of them
        settings["retries"] = {"backoff": 0, "budget": {"ratio": 1.0}}
    keys = [f"user-{n}" for n in range(200)]
    with (
        behind_proxy("a", "b", "c", **settings) as ([_, _, c], proxy),
        Client(proxy.port) as client,
    ):
        before = {key: served_by(client, headers={"X-User": key}) for key in keys}
        owned_by_c = [key for key in keys if before[key] == "c"]
        assert owned_by_c
        if taken_away == "ejected":
            c.mode = "reset"
            assert served_by(client, headers={"X-User": owned_by_c[0]}) != "c"  # retried
            c.mode = "ok"  # ejected for a minute whatever it does now
            hits_on_c = len(answered(c))
        else:
            c.kill()
            hits_on_c = len(answered(c))
        after = {key: served_by(client, headers={"X-User": key}) for key in keys}
        again = {key: served_by(client, headers={"X-User": key}) for key in keys}
    assert len(answered(c)) == hits_on_c
    moved = {key for key in keys if after[key] != before[key]}
    assert moved == set(owned_by_c)
    assert {after[key] for key in moved} <= {"a", "b"}
    assert again == after


# -- passive health ----------------------------------------------------------------------


def test_passive_health_ejects_a_resetting_node_and_brings_it_back_after_cooldown() -> None:
    failures, cooldown = 2, 1.0
    passive = {"passive": {"failures": failures, "cooldown": cooldown}}
    with (
        behind_proxy("a", "b", health_check=passive) as ([a, _], proxy),
        Client(proxy.port) as client,
    ):
        assert sorted(served_by(client) for _ in range(4)) == ["a", "a", "b", "b"]
        a.mode = "reset"
        switched = len(a.hits())
        names = [served_by(client, f"/while-failing/{n}") for n in range(30)]
        failed = a.hits()[switched:]
        # each failed try may first have met a pooled connection that was reset
        assert failures <= len(failed) <= 2 * failures
        assert all(hit.status is None for hit in failed)
        assert names == ["b"] * 30  # every failed try was retried on b

        ejected_at = failed[-1].at
        a.mode = "ok"
        assert served_by(client) == "b"
        statuses = send_until(
            client, lambda: len(a.hits()) > switched + len(failed), "a gets traffic again"
        )
        assert set(statuses) == {200}
        back = a.hits()[switched + len(failed)]
        assert back.at - ejected_at >= cooldown - TIMER_SLACK
        assert back.status == 200
        names = [served_by(client) for _ in range(10)]
    assert abs(names.count("a") - names.count("b")) <= 2, names


# -- active health -----------------------------------------------------------------------


def active(**overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "path": "/health",
        "interval": 0.1,
        "timeout": 0.5,
        "unhealthy_threshold": 3,
        "healthy_threshold": 2,
    }
    return {"active": {**settings, **overrides}}


def test_active_checks_take_out_a_failing_node_and_bring_it_back() -> None:
    with behind_proxy("a", "b", health_check=active()) as ([a, _], proxy):
        wait_until(lambda: len(a.probes()) >= 2, "a is probed")
        with Load(proxy.port, keep_alive=1, fresh=0) as load:
            wait_until(lambda: len(a.hits()) >= 5, "a takes traffic")
            a.health = 500
            since = len(a.events())
            wait_until(lambda: len(probes_since(a, since, 500)) >= 5, "five failed probes of a")
            events = a.events()[since:]
            second, third, fourth = probes_since(a, since, 500)[1:4]
            # in rotation until the third failed probe, out from the fourth on
            assert any(not hit.probe for hit in events[second:third])
            assert not any(not hit.probe for hit in events[fourth:])

            a.health = 200
            since, served = len(a.events()), len(a.hits())
            wait_until(lambda: len(a.hits()) >= served + 5, "a takes traffic again")
            events = a.events()[since:]
            first_request = next(i for i, hit in enumerate(events) if not hit.probe)
            assert len(probes_since(a, since, 200, before=first_request)) >= 2
        assert load.failures() == []


def probes_since(
    node: ScriptedNode, since: int, status: int, before: int | None = None
) -> list[int]:
    """Positions, in ``node.events()[since:][:before]``, of probes answered with ``status``."""
    events = node.events()[since:][:before]
    return [i for i, hit in enumerate(events) if hit.probe and hit.status == status]


def test_when_every_node_is_ejected_they_are_tried_anyway() -> None:
    # Health checks that condemn every node may be wrong (nginx and Envoy's panic
    # mode): the request goes to a node rather than a certain 503.
    checks = active(interval=0.05, unhealthy_threshold=1)
    with behind_proxy("a", "b", health_check=checks) as (nodes, proxy):
        for node in nodes:
            node.health = 500
        wait_until(lambda: all(len(n.probes()) >= 2 for n in nodes), "both are probed twice")
        with Client(proxy.port) as client:
            responses = [client.request("GET", "/") for _ in range(4)]
    assert [response.status for response in responses] == [200] * 4
    assert all(len(node.hits()) == 2 for node in nodes)  # in turn


def test_no_node_admitted_by_its_breaker_is_a_503_problem() -> None:
    breaker = {"min_requests": 1, "failure_rate": 0.5, "open_for": 30}
    with behind_proxy("a", circuit_breaker=breaker, retries=None) as (nodes, proxy):
        nodes[0].mode = "reset"
        with Client(proxy.port) as client:
            assert client.request("GET", "/").status == 502  # opens the breaker
            response = client.request("GET", "/")
    problem = assert_problem(response, 503)
    assert problem["type"] == "urn:quiver:problem:no-upstream-available"
    assert len(nodes[0].hits()) == 1


# -- a node dies under load --------------------------------------------------------------


def test_killing_one_of_three_nodes_under_load_fails_no_request() -> None:
    cooldown = 1.0
    settings: dict[str, Any] = {"health_check": {"passive": {"failures": 2, "cooldown": cooldown}}}
    with behind_proxy("a", "b", "c", **settings) as (nodes, proxy):
        a, b, c = nodes
        with Load(proxy.port, keep_alive=2, fresh=2) as load:
            wait_until(lambda: all(len(n.hits()) >= 20 for n in nodes), "every node serves")
            c.kill()
            served = {node.name: len(node.hits()) for node in nodes}
            wait_until(lambda: revives_at(proxy, c) is not None, "c is ejected")
            revival = revives_at(proxy, c)
            assert revival is not None
            restarted = time.monotonic()
            c.start()  # the same port, listening again while still ejected

            def after_restart() -> list[Hit]:
                return [hit for hit in c.hits() if hit.at >= restarted]

            wait_until(after_restart, "c gets traffic again")
            assert after_restart()[0].at >= revival - TIMER_SLACK
            wait_until(lambda: len(after_restart()) >= 20, "c is back in rotation")
            assert len(a.hits()) > served["a"] + 20 and len(b.hits()) > served["b"] + 20
        assert load.count() > 100
        assert load.failures() == []


# -- circuit breaker ---------------------------------------------------------------------


def test_circuit_breaker_opens_moves_traffic_and_closes_after_one_good_trial() -> None:
    open_for = 0.3
    settings: dict[str, Any] = {
        # 500 counts as a failure for the breaker; passive ejection stays out of the way
        "health_check": {"passive": {"statuses": [500], "failures": 1000}},
        "circuit_breaker": {
            "failure_rate": 0.5,
            "window": 1.0,
            "min_requests": 5,
            "open_for": open_for,
            "half_open_probes": 1,
        },
    }
    with behind_proxy("a", "b", **settings) as ([a, b], proxy), Client(proxy.port) as client:
        a.mode = "500"
        statuses = [client.request("GET", f"/{n}").status for n in range(20)]
        assert len(a.hits()) == 5  # opened on the fifth failure
        assert statuses.count(500) == 5 and statuses.count(200) == 15
        opened = a.hits()[-1].at

        # still failing when its trial comes: open again for open_for, one request only
        statuses = send_until(client, lambda: len(a.hits()) > 5, "a trial on a")
        assert statuses.count(500) == 1
        trial = a.hits()[5]
        assert trial.at - opened >= open_for - TIMER_SLACK
        a.mode = "hold"
        with Load(proxy.port, keep_alive=2, fresh=0) as load:
            wait_until(lambda: len(a.hits()) == 7, "a second trial on a")
            assert a.hits()[6].at - trial.at >= open_for - TIMER_SLACK
            # the trial is held: no other request goes to a meanwhile
            served = len(b.hits())
            wait_until(lambda: len(b.hits()) >= served + 20, "b takes the traffic")
            assert len(a.hits()) == 7
            a.mode = "ok"
            a.release()
            wait_until(lambda: len(a.hits()) >= 27, "a is back in rotation")
        assert load.failures() == []


# -- retry budget ------------------------------------------------------------------------


def test_the_retry_budget_keeps_retries_from_multiplying_the_load() -> None:
    retries = {"attempts": 5, "budget": {"ratio": 0.1, "min_per_second": 0}}
    requests = 200
    with behind_proxy("down", retries=retries) as ([down], proxy):
        down.mode = "reset"
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def hammer() -> None:
            with Client(proxy.port) as client:
                for n in range(requests // 4):
                    status = client.request("GET", f"/{n}").status
                    with lock:
                        statuses[status] += 1

        workers = [threading.Thread(target=hammer) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(20)
    assert statuses == {502: requests}
    assert requests < down.accepted <= requests * (1 + 0.1)


# -- bookkeeping that must survive failures ----------------------------------------------


def test_a_reset_on_a_pooled_connection_leaves_no_phantom_load_on_the_node() -> None:
    balance = {"algorithm": "least_conn"}
    with (
        behind_proxy("a", "b", balance=balance) as ([a, _], proxy),
        Client(proxy.port) as client,
    ):
        assert [served_by(client) for _ in range(4)] == ["a", "b", "a", "b"]
        a.mode = "reset"  # the next request to a meets its pooled connection reset
        assert [served_by(client) for _ in range(2)] == ["b", "b"]
        a.mode = "ok"
        names = [served_by(client) for _ in range(20)]
    # nothing is in flight any more: the idle nodes take turns again
    assert abs(names.count("a") - names.count("b")) <= 2, Counter(names)


def test_a_breaker_trial_abandoned_by_its_client_does_not_keep_the_node_out() -> None:
    settings: dict[str, Any] = {
        "health_check": {"passive": {"statuses": [500], "failures": 1000}},
        "circuit_breaker": {"min_requests": 5, "open_for": 0.2, "half_open_probes": 1},
        "timeouts": {"connect": 5},
    }
    with behind_proxy("a", "b", **settings) as ([a, _], proxy), Client(proxy.port) as client:
        a.mode = "500"
        send_until(client, lambda: len(a.hits()) == 5, "the breaker of a opens")
        a.stall()  # after open_for, the trial hangs connecting to a
        wait_until(lambda: abandoned(proxy.port, after=0.3), "a request hangs on a trial")
        a.mode = "ok"
        a.start()
        # the trial said nothing about a: a new one goes to a, succeeds and closes it
        send_until(client, lambda: len(a.hits()) > 5, "a gets a new trial", timeout=3)
        names = [served_by(client) for _ in range(10)]
    assert "a" in names


def abandoned(port: int, *, after: float) -> bool:
    """Send a GET; if no answer starts within ``after`` seconds, reset the connection
    (the client gives up) and return True."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(after)
        sock.sendall(b"GET /abandoned HTTP/1.1\r\nHost: t\r\n\r\n")
        try:
            assert sock.recv(12) == b"HTTP/1.1 200"
        except TimeoutError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)  # leaves with RST
            return True
    return False


def test_requests_refused_at_the_connection_limit_do_not_eject_the_node() -> None:
    settings: dict[str, Any] = {
        "pool": {"max_connections": 1},
        "health_check": {"passive": {"failures": 1, "cooldown": 30}},
    }
    with behind_proxy("a", **settings) as ([a], proxy), Client(proxy.port) as client:
        with held_requests(proxy.port, [a]) as send_slow:
            send_slow()
            wait_until(a.hits, "a holds a request on its only connection")
            refused = client.request("GET", "/over-the-limit")
        assert_problem(refused, 503)
        response = client.request("GET", "/after")
    # the node never failed: the proxy's own limit said no
    assert (response.status, response.body) == (200, b"a")


def test_ewma_does_not_keep_choosing_a_node_whose_requests_all_fail() -> None:
    requests = 150
    retries = {"backoff": 0, "budget": {"ratio": 1.0}}  # the budget is not what is tested
    settings: dict[str, Any] = {"balance": {"algorithm": "ewma"}, "retries": retries}
    with (
        behind_proxy("fast", "broken", **settings) as ([_, broken], proxy),
        Client(proxy.port) as client,
    ):
        broken.mode = "reset"
        names = [served_by(client, f"/{n}") for n in range(requests)]
    assert names == ["fast"] * requests  # every failed try was retried on fast
    # a node that only fails is no better than one that answers: at most its fair share
    tries_on_broken = len(broken.hits())
    assert tries_on_broken <= requests // 2


def test_an_applications_500s_do_not_eject_its_nodes_by_default() -> None:
    # Passive checks count connection failures, timeouts and 502/503/504 by default:
    # a bad client request answered 500 by the app says nothing of the node.
    with behind_proxy("a", "b", health_check={"passive": {"failures": 2}}) as (nodes, proxy):
        for node in nodes:
            node.mode = "500"
        with Client(proxy.port) as client:
            statuses = [client.request("GET", "/").status for _ in range(8)]
        assert statuses == [500] * 8
        for node in nodes:
            node.mode = "ok"
        with Client(proxy.port) as client:
            assert client.request("GET", "/").status == 200
    assert all(len(node.hits()) >= 4 for node in nodes)
