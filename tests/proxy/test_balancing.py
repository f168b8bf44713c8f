"""Balancing algorithms: who gets picked, by weight, by load, by latency and by key."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import get_args

import pytest

from quiver.config.resilience import Balance, BalanceAlgorithm
from quiver.proxy.balancing import (
    BALANCERS,
    Balancer,
    ConsistentHash,
    LeastConn,
    PeakEwma,
    PowerOfTwoChoices,
    RoundRobin,
    make_balancer,
)
from quiver.proxy.balancing.consistent_hash import key_reader
from quiver.proxy.balancing.ewma import cost, record_latency
from quiver.proxy.upstream import Node


@dataclass
class Client:
    peer: bytes = b"192.0.2.1"


@dataclass
class Request:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    raw_path: bytes = b"/"
    client: Client = field(default_factory=Client)

    def get(self, name: bytes) -> bytes | None:
        return self.headers.get(name)


REQUEST = Request()


def make_nodes(*weights: int) -> list[Node]:
    return [
        Node(
            f"10.0.0.{index + 1}",
            8000,
            weight=weight,
            ssl_context=None,
            server_hostname=None,
            default_port=80,
        )
        for index, weight in enumerate(weights)
    ]


def picks(balancer: Balancer, count: int, request: Request = REQUEST) -> Counter[Node | None]:
    return Counter(balancer.pick(request) for _ in range(count))


def keyed(key: str) -> Request:
    return Request(headers={b"x-user": key.encode()})


def by_user(nodes: Sequence[Node]) -> ConsistentHash:
    return ConsistentHash(nodes, key_reader("header", "x-user"))


# -- rules every algorithm follows -----------------------------------------------------

ALL_SETTINGS = [
    Balance(algorithm="round_robin"),
    Balance(algorithm="least_conn"),
    Balance(algorithm="p2c"),
    Balance(algorithm="ewma"),
    Balance(algorithm="consistent_hash", hash_on="ip"),
    Balance(algorithm="consistent_hash", hash_on="header", hash_key="X-User"),  # key absent
]
IDS = ["round_robin", "least_conn", "p2c", "ewma", "consistent_hash", "consistent_hash_no_key"]


def build(settings: Balance, nodes: Sequence[Node]) -> Balancer:
    return make_balancer(settings, nodes, rng=random.Random(1), clock=lambda: 100.0)


@pytest.mark.parametrize("settings", ALL_SETTINGS, ids=IDS)
class TestEveryAlgorithm:
    def test_down_nodes_are_never_picked(self, settings: Balance) -> None:
        nodes = make_nodes(1, 1, 1, 1)
        nodes[1].up = nodes[3].up = False
        balancer = build(settings, nodes)
        requests = [Request(client=Client(b"10.1.0.%d" % i)) for i in range(200)]
        assert {balancer.pick(request) for request in requests} <= {nodes[0], nodes[2]}

    def test_the_avoided_node_is_not_picked_while_another_is_up(self, settings: Balance) -> None:
        nodes = make_nodes(1, 1, 1)
        nodes[2].up = False
        balancer = build(settings, nodes)
        for i in range(200):
            request = Request(client=Client(b"10.1.0.%d" % i))
            assert balancer.pick(request, avoid=nodes[0]) is nodes[1]
            assert balancer.pick(request, avoid=nodes[1]) is nodes[0]

    def test_the_avoided_node_is_picked_when_it_is_the_only_one_up(self, settings: Balance) -> None:
        nodes = make_nodes(1, 1, 1)
        nodes[0].up = nodes[2].up = False
        assert build(settings, nodes).pick(REQUEST, avoid=nodes[1]) is nodes[1]

    def test_none_when_every_node_is_down(self, settings: Balance) -> None:
        nodes = make_nodes(1, 2, 3)
        for node in nodes:
            node.up = False
        balancer = build(settings, nodes)
        assert balancer.pick(REQUEST) is None
        assert balancer.pick(REQUEST, avoid=nodes[0]) is None

    def test_weight_zero_nodes_are_never_picked(self, settings: Balance) -> None:
        nodes = make_nodes(0, 1, 0, 1)
        balancer = build(settings, nodes)
        requests = [Request(client=Client(b"10.1.0.%d" % i)) for i in range(200)]
        assert {balancer.pick(request) for request in requests} <= {nodes[1], nodes[3]}
        nodes[1].up = nodes[3].up = False
        assert balancer.pick(REQUEST) is None

    def test_a_single_node_is_always_picked(self, settings: Balance) -> None:
        nodes = make_nodes(3)
        assert picks(build(settings, nodes), 50) == {nodes[0]: 50}


# -- round robin ------------------------------------------------------------------------


def test_round_robin_shares_follow_weights_exactly_over_each_cycle() -> None:
    nodes = make_nodes(3, 2, 1)
    assert picks(RoundRobin(nodes), 600) == {nodes[0]: 300, nodes[1]: 200, nodes[2]: 100}


def test_round_robin_interleaves_a_heavy_node_smoothly() -> None:
    a, b, c = nodes = make_nodes(5, 1, 1)
    balancer = RoundRobin(nodes)
    order = [balancer.pick(REQUEST) for _ in range(14)]
    assert order == [a, a, b, a, c, a, a] * 2


def test_round_robin_shares_the_down_nodes_traffic_by_weight() -> None:
    nodes = make_nodes(2, 5, 1)
    nodes[1].up = False
    assert picks(RoundRobin(nodes), 300) == {nodes[0]: 200, nodes[2]: 100}


def test_round_robin_takes_a_node_back_when_it_comes_up() -> None:
    nodes = make_nodes(1, 1)
    balancer = RoundRobin(nodes)
    nodes[0].up = False
    assert picks(balancer, 10) == {nodes[1]: 10}
    nodes[0].up = True
    counts = picks(balancer, 100)
    assert abs(counts[nodes[0]] - counts[nodes[1]]) <= 2


# -- least connections ------------------------------------------------------------------


def test_least_conn_prefers_the_node_with_fewest_requests_in_flight() -> None:
    nodes = make_nodes(1, 1, 1)
    nodes[0].in_flight, nodes[1].in_flight, nodes[2].in_flight = 4, 1, 2
    assert picks(LeastConn(nodes), 20) == {nodes[1]: 20}


def test_least_conn_divides_the_load_by_weight() -> None:
    heavy, light = nodes = make_nodes(4, 1)
    heavy.in_flight, light.in_flight = 3, 1  # 0.75 against 1 per unit of weight
    assert LeastConn(nodes).pick(REQUEST) is heavy
    heavy.in_flight = 5  # 1.25 against 1
    assert LeastConn(nodes).pick(REQUEST) is light


def test_least_conn_takes_turns_among_tied_nodes() -> None:
    nodes = make_nodes(1, 1, 1)
    nodes[0].in_flight = 3
    nodes[1].in_flight = nodes[2].in_flight = 1
    balancer = LeastConn(nodes)
    assert [balancer.pick(REQUEST) for _ in range(4)] == [nodes[1], nodes[2]] * 2


def test_least_conn_spreads_by_weight_when_nodes_are_idle() -> None:
    nodes = make_nodes(3, 1)
    assert picks(LeastConn(nodes), 400) == {nodes[0]: 300, nodes[1]: 100}


def test_least_conn_under_load_fills_nodes_by_weight() -> None:
    nodes = make_nodes(3, 2, 1)
    balancer = LeastConn(nodes)
    for _ in range(60):  # requests that never finish
        node = balancer.pick(REQUEST)
        assert node is not None
        node.in_flight += 1
    assert [node.in_flight for node in nodes] == [30, 20, 10]


# -- power of two choices ---------------------------------------------------------------


def test_p2c_never_picks_the_busiest_of_three_when_the_others_are_idle() -> None:
    nodes = make_nodes(1, 1, 1)
    nodes[1].in_flight = 50
    counts = picks(PowerOfTwoChoices(nodes, rng=random.Random(3)), 3000)
    assert counts[nodes[1]] == 0
    assert counts[nodes[0]] > 1200 and counts[nodes[2]] > 1200


def test_p2c_of_two_nodes_always_takes_the_less_loaded() -> None:
    nodes = make_nodes(1, 1)
    nodes[0].in_flight = 1
    assert picks(PowerOfTwoChoices(nodes, rng=random.Random(3)), 100) == {nodes[1]: 100}


def test_p2c_compares_load_per_unit_of_weight() -> None:
    heavy, light = nodes = make_nodes(10, 1)
    heavy.in_flight, light.in_flight = 5, 1  # 0.5 against 1
    assert picks(PowerOfTwoChoices(nodes, rng=random.Random(3)), 100) == {heavy: 100}


def test_p2c_draws_by_weight_when_nodes_are_idle() -> None:
    nodes = make_nodes(1, 1, 2)
    counts = picks(PowerOfTwoChoices(nodes, rng=random.Random(5)), 20000)
    # the first of two idle candidates wins, and it is drawn by weight
    assert counts[nodes[2]] / 20000 == pytest.approx(0.5, abs=0.02)
    assert counts[nodes[0]] / 20000 == pytest.approx(0.25, abs=0.02)


def test_p2c_finds_the_few_nodes_up_among_many_down() -> None:
    nodes = make_nodes(*[1] * 10)
    for node in nodes[:8]:
        node.up = False
    balancer = PowerOfTwoChoices(nodes, rng=random.Random(9))
    counts = picks(balancer, 1000)
    assert set(counts) == {nodes[8], nodes[9]}
    assert all(balancer.pick(REQUEST, avoid=nodes[8]) is nodes[9] for _ in range(100))


def test_p2c_still_draws_by_weight_with_a_node_down() -> None:
    nodes = make_nodes(1, 3, 5, 1)
    nodes[2].up = False
    counts = picks(PowerOfTwoChoices(nodes, rng=random.Random(5)), 20000)
    assert counts[nodes[2]] == 0
    assert counts[nodes[1]] / 20000 == pytest.approx(0.6, abs=0.02)  # 3 of the 5 up


# -- peak EWMA --------------------------------------------------------------------------


def test_record_latency_starts_from_the_first_sample_and_jumps_to_peaks() -> None:
    (node,) = make_nodes(1)
    record_latency(node, 0.05, now=10.0)
    assert (node.ewma, node.ewma_at) == (0.05, 10.0)
    record_latency(node, 0.8, now=10.1)  # slower: replaces the average at once
    assert node.ewma == 0.8


def test_record_latency_decays_towards_faster_samples_with_a_ten_second_constant() -> None:
    (node,) = make_nodes(1)
    record_latency(node, 1.0, now=0.0)
    record_latency(node, 0.0, now=10.0)  # one time constant later: 1/e of the old average
    assert node.ewma == pytest.approx(0.3679, abs=1e-3)
    record_latency(node, 0.1, now=10.0)  # no time passed: a lower sample weighs nothing
    assert node.ewma == pytest.approx(0.3679, abs=1e-3)


def test_ewma_prefers_the_fast_node() -> None:
    fast, slow, slower = nodes = make_nodes(1, 1, 1)
    for node, seconds in ((fast, 0.01), (slow, 0.1), (slower, 0.2)):
        record_latency(node, seconds, now=100.0)
    counts = picks(PeakEwma(nodes, rng=random.Random(2), clock=lambda: 100.0), 3000)
    assert counts[slower] == 0  # always drawn against a cheaper node
    assert counts[fast] == pytest.approx(2000, rel=0.1)  # wins whenever it is drawn


def test_ewma_moves_away_from_a_node_at_its_first_slow_answer() -> None:
    a, b = nodes = make_nodes(1, 1)
    balancer = PeakEwma(nodes, rng=random.Random(2), clock=lambda: 100.0)
    for t in range(10):
        record_latency(a, 0.010, now=90.0 + t)
        record_latency(b, 0.020, now=90.0 + t)
    assert picks(balancer, 50) == {a: 50}
    record_latency(a, 1.5, now=100.0)  # one spike
    assert picks(balancer, 50) == {b: 50}


def test_ewma_weighs_latency_by_queue_length_and_weight() -> None:
    a, b = nodes = make_nodes(1, 1)
    record_latency(a, 0.010, now=100.0)
    record_latency(b, 0.030, now=100.0)
    balancer = PeakEwma(nodes, rng=random.Random(2), clock=lambda: 100.0)
    a.in_flight = 4  # 0.010 * 5 > 0.030 * 1
    assert picks(balancer, 20) == {b: 20}
    a.in_flight = 0
    (heavy,) = make_nodes(10)
    record_latency(heavy, 0.030, now=100.0)
    assert cost(heavy, 100.0) == pytest.approx(0.003)
    assert cost(heavy, 100.0) < cost(a, 100.0)


def test_ewma_sends_requests_to_an_unmeasured_node_so_it_gets_measured() -> None:
    measured, fresh = nodes = make_nodes(1, 1)
    record_latency(measured, 0.001, now=100.0)
    balancer = PeakEwma(nodes, rng=random.Random(2), clock=lambda: 100.0)
    assert balancer.pick(REQUEST) is fresh
    fresh.in_flight = 1  # its first answer is still awaited: do not pile on
    assert balancer.pick(REQUEST) is measured


def test_ewma_tries_a_once_slow_node_again_after_it_is_left_alone() -> None:
    fast, slow = nodes = make_nodes(1, 1)
    record_latency(fast, 0.010, now=0.0)
    record_latency(slow, 2.0, now=0.0)
    now = [1.0]
    balancer = PeakEwma(nodes, rng=random.Random(2), clock=lambda: now[0])
    assert balancer.pick(REQUEST) is fast
    # a minute on, the fast node has fresh samples while the slow one's average decayed
    now[0] = 60.0
    record_latency(fast, 0.010, now=60.0)
    assert balancer.pick(REQUEST) is slow  # 2.0 * e**-6 ≈ 0.005 < 0.010


# -- consistent hashing -----------------------------------------------------------------

KEYS = [f"user-{i}" for i in range(10_000)]


def mapping(balancer: Balancer, keys: Sequence[str] = KEYS) -> dict[str, Node | None]:
    return {key: balancer.pick(keyed(key)) for key in keys}


def test_consistent_hash_sends_a_key_to_the_same_node_every_time() -> None:
    balancer = by_user(make_nodes(1, 1, 1))
    for key in KEYS[:100]:
        assert len({balancer.pick(keyed(key)) for _ in range(5)}) == 1


def test_consistent_hash_ring_does_not_depend_on_node_order_or_process() -> None:
    nodes = make_nodes(1, 2, 1)
    first = mapping(by_user(nodes), KEYS[:2000])
    assert mapping(by_user(nodes[::-1]), KEYS[:2000]) == first
    # positions come from BLAKE2b, not from Python's per-process salted hash(): the
    # same keys land on the same nodes in every worker and after every restart
    assert [first[f"user-{i}"] for i in range(5)] == [nodes[i] for i in (2, 0, 0, 2, 2)]


def test_consistent_hash_spreads_keys_evenly() -> None:
    nodes = make_nodes(1, 1, 1)
    counts = Counter(mapping(by_user(nodes)).values())
    for node in nodes:
        assert counts[node] == pytest.approx(10_000 / 3, rel=0.25)


def test_consistent_hash_shares_follow_weights() -> None:
    nodes = make_nodes(1, 1, 2)
    counts = Counter(mapping(by_user(nodes)).values())
    assert counts[nodes[2]] == pytest.approx(5_000, rel=0.15)
    assert counts[nodes[0]] == pytest.approx(2_500, rel=0.25)
    assert counts[nodes[1]] == pytest.approx(2_500, rel=0.25)


@pytest.mark.parametrize("count", [3, 5, 10])
def test_removing_a_node_moves_only_its_own_keys(count: int) -> None:
    nodes = make_nodes(*[1] * count)
    before = mapping(by_user(nodes))
    for removed in nodes:
        after = mapping(by_user([node for node in nodes if node is not removed]))
        moved = [key for key in KEYS if after[key] is not before[key]]
        assert all(before[key] is removed for key in moved)
        assert len(moved) == sum(1 for node in before.values() if node is removed)
        assert len(moved) / len(KEYS) <= 1.2 / count + 0.01


def test_a_down_node_hands_its_keys_where_removing_it_would() -> None:
    nodes = make_nodes(1, 1, 1, 1, 1)
    balancer = by_user(nodes)
    before = mapping(balancer)
    nodes[2].up = False
    down = mapping(balancer)
    assert down == mapping(by_user([node for node in nodes if node is not nodes[2]]))
    assert all(before[key] is nodes[2] for key in KEYS if down[key] is not before[key])
    nodes[2].up = True
    assert mapping(balancer) == before


def test_a_retry_avoiding_the_keys_node_goes_where_it_would_go_if_that_node_were_down() -> None:
    nodes = make_nodes(1, 1, 1)
    balancer = by_user(nodes)
    for key in KEYS[:300]:
        first = balancer.pick(keyed(key))
        assert first is not None
        retry = balancer.pick(keyed(key), avoid=first)
        first.up = False
        assert retry is not first and retry is balancer.pick(keyed(key))
        first.up = True


def test_consistent_hash_on_a_header_ignores_the_configured_names_case() -> None:
    nodes = make_nodes(1, 1, 1)
    settings = Balance(algorithm="consistent_hash", hash_on="header", hash_key="X-User")
    configured = mapping(make_balancer(settings, nodes), KEYS[:500])
    assert configured == mapping(by_user(nodes), KEYS[:500])


def test_consistent_hash_on_a_cookie_reads_that_cookie_only() -> None:
    nodes = make_nodes(*[1] * 10)
    balancer = ConsistentHash(nodes, key_reader("cookie", "sid"))

    def pick(cookie: bytes) -> Node | None:
        return balancer.pick(Request(headers={b"cookie": cookie}))

    expected = by_user(nodes)
    for key in KEYS[:200]:
        target = expected.pick(keyed(key))
        value = key.encode()
        assert pick(b"sid=" + value) is target
        assert pick(b"theme=dark; xsid=other; sid=" + value + b"; sidx=zzz") is target
        assert pick(b"sidx=zzz;sid=" + value) is target


def test_consistent_hash_on_the_client_ip() -> None:
    nodes = make_nodes(1, 1, 1)
    balancer = ConsistentHash(nodes, key_reader("ip"))
    expected = by_user(nodes)
    for i in range(200):
        ip = b"198.51.100.%d" % i
        request = Request(client=Client(ip), headers={b"x-user": b"ignored"})
        assert balancer.pick(request) is expected.pick(Request(headers={b"x-user": ip}))


def test_consistent_hash_on_the_path_ignores_the_query() -> None:
    nodes = make_nodes(1, 1, 1)
    balancer = ConsistentHash(nodes, key_reader("path"))
    expected = by_user(nodes)
    for i in range(200):
        path = b"/items/%d" % i
        target = expected.pick(Request(headers={b"x-user": path}))
        assert balancer.pick(Request(raw_path=path)) is target
        assert balancer.pick(Request(raw_path=path + b"?page=%d" % i)) is target


@pytest.mark.parametrize(
    "request_",
    [Request(), Request(headers={b"cookie": b"other=1"}), Request(headers={b"cookie": b"sid="})],
    ids=["no-cookie-header", "other-cookie", "empty-value"],
)
def test_consistent_hash_without_the_key_falls_back_to_round_robin(request_: Request) -> None:
    nodes = make_nodes(2, 1, 1)
    balancer = ConsistentHash(nodes, key_reader("cookie", "sid"))
    assert picks(balancer, 400, request_) == {nodes[0]: 200, nodes[1]: 100, nodes[2]: 100}
    nodes[0].up = False
    assert picks(balancer, 100, request_) == {nodes[1]: 50, nodes[2]: 50}


def test_key_reader_needs_a_name_for_headers_and_cookies() -> None:
    with pytest.raises(ValueError, match="needs the header name"):
        key_reader("header")
    with pytest.raises(ValueError, match="needs the cookie name"):
        key_reader("cookie", "")


# -- building from the config -----------------------------------------------------------


def test_every_configurable_algorithm_has_a_balancer() -> None:
    assert set(BALANCERS) == set(get_args(BalanceAlgorithm))


@pytest.mark.parametrize(
    ("settings", "kind"),
    [
        (Balance(), RoundRobin),
        (Balance(algorithm="round_robin"), RoundRobin),
        (Balance(algorithm="least_conn"), LeastConn),
        (Balance(algorithm="p2c"), PowerOfTwoChoices),
        (Balance(algorithm="ewma"), PeakEwma),
        (Balance(algorithm="consistent_hash", hash_on="path"), ConsistentHash),
    ],
)
def test_make_balancer_builds_the_configured_algorithm(settings: Balance, kind: type) -> None:
    nodes = make_nodes(1, 1)
    balancer = make_balancer(settings, nodes)
    assert type(balancer) is kind
    assert balancer.pick(REQUEST) in nodes


def test_make_balancer_hands_its_random_source_and_clock_over() -> None:
    nodes = make_nodes(1, 1, 1, 1)
    settings = Balance(algorithm="p2c")
    runs = [
        [make_balancer(settings, nodes, rng=random.Random(4)).pick(REQUEST) for _ in range(30)]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    fast, slow = two = make_nodes(1, 1)
    record_latency(slow, 2.0, now=0.0)
    record_latency(fast, 0.010, now=60.0)
    early = make_balancer(Balance(algorithm="ewma"), two, clock=lambda: 1.0)
    late = make_balancer(Balance(algorithm="ewma"), two, clock=lambda: 60.0)
    assert early.pick(REQUEST) is fast
    assert late.pick(REQUEST) is slow  # its average has decayed to ≈0.005 by then
