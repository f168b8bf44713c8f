"""Choosing a node of a target for each request.

Every algorithm is a small class with one hot-path method, ``pick``, and a
``from_settings`` constructor; :data:`BALANCERS` maps each ``balance.algorithm``
name of the config to it and :func:`make_balancer` builds one per target when a
config is compiled::

    balancer = make_balancer(Balance(algorithm="least_conn"), nodes)
    node = balancer.pick(exchange)                # the first attempt
    node = balancer.pick(exchange, avoid=node)    # a retry: another node if any

Every balancer follows the same rules: a node with ``up`` false or weight 0 is
never returned; ``avoid`` is returned only when it is the one node up (a retry on
the same node beats no retry); ``None`` means no node is up.

Balancers keep their own small state (scores, a hash ring) but read the live
state from the nodes (``up``, ``in_flight``, ``ewma``), which the proxy updates
as requests start and end.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from quiver.proxy.balancing.consistent_hash import ConsistentHash
from quiver.proxy.balancing.ewma import PeakEwma
from quiver.proxy.balancing.least_conn import LeastConn
from quiver.proxy.balancing.p2c import PowerOfTwoChoices
from quiver.proxy.balancing.round_robin import RoundRobin

if TYPE_CHECKING:
    from quiver.config.resilience import Balance
    from quiver.proxy.upstream import Node

__all__ = [
    "BALANCERS",
    "Balancer",
    "BalancerFactory",
    "ConsistentHash",
    "LeastConn",
    "PeakEwma",
    "Peer",
    "PowerOfTwoChoices",
    "RequestKeys",
    "RoundRobin",
    "make_balancer",
]


class Peer(Protocol):
    @property
    def peer(self) -> bytes:
        """The client's IP address."""
        ...


class RequestKeys(Protocol):
    """What a balancer may read from a request (the proxy passes its exchange)."""

    @property
    def client(self) -> Peer: ...

    @property
    def raw_path(self) -> bytes:
        """The request target as received: path and query."""
        ...

    def get(self, name: bytes) -> bytes | None:
        """The value of header ``name`` (lowercase), or None."""
        ...


class Balancer(Protocol):
    """Chooses the node for one attempt of a request."""

    def pick(self, request: RequestKeys, avoid: Node | None = None) -> Node | None: ...


#: Builds a balancer from its settings, the target's nodes, a random source and a
#: clock (the one that stamps ``Node.ewma_at``).
BalancerFactory = Callable[
    ["Balance", Sequence["Node"], random.Random, Callable[[], float]], Balancer
]

BALANCERS: Mapping[str, BalancerFactory] = MappingProxyType(
    {
        "round_robin": RoundRobin.from_settings,
        "least_conn": LeastConn.from_settings,
        "p2c": PowerOfTwoChoices.from_settings,
        "ewma": PeakEwma.from_settings,
        "consistent_hash": ConsistentHash.from_settings,
    }
)


def make_balancer(
    settings: Balance,
    nodes: Sequence[Node],
    *,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Balancer:
    """The balancer ``settings.algorithm`` names, over ``nodes``.

    ``clock`` must be the clock whose readings the proxy passes to
    :func:`quiver.proxy.balancing.ewma.record_latency` (the event loop's ``time``).
    """
    try:
        factory = BALANCERS[settings.algorithm]
    except KeyError:
        known = ", ".join(BALANCERS)
        raise ValueError(
            f"unknown balancing algorithm {settings.algorithm!r}; known: {known}"
        ) from None
    return factory(settings, nodes, rng or random.Random(), clock)
