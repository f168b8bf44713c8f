"""Smooth weighted round robin, the algorithm of nginx's upstream module.

Each pick adds every eligible node's weight to that node's running score, takes the
node with the highest score and subtracts the total weight of the eligible nodes
from it.  Over a cycle of ``sum(weights)`` picks each node is chosen exactly
``weight`` times, and a heavy node's turns are spread out instead of bunched::

    balancer = RoundRobin(nodes)                 # weights a=5, b=1, c=1
    [balancer.pick(request).label for _ in range(7)]
    # a a b a c a a      (not a a a a a b c)

A down node, and the node a retry avoids, sit the round out: their scores stay as
they are and the total shrinks, so the others share the traffic by weight.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quiver.config.resilience import Balance
    from quiver.proxy.balancing import RequestKeys
    from quiver.proxy.upstream import Node


class RoundRobin:
    """Spreads requests over the nodes in proportion to their weights."""

    __slots__ = ("_nodes", "_scores")

    def __init__(self, nodes: Sequence[Node]) -> None:
        self._nodes = [node for node in nodes if node.weight > 0]
        self._scores = [0] * len(self._nodes)

    @classmethod
    def from_settings(
        cls,
        settings: Balance,
        nodes: Sequence[Node],
        rng: random.Random,
        clock: Callable[[], float],
    ) -> RoundRobin:
        return cls(nodes)

    def pick(self, request: RequestKeys, avoid: Node | None = None) -> Node | None:
        best = take_turn(self._nodes, self._scores, avoid)
        if best < 0:
            return avoid if avoid is not None and avoid.up else None
        return self._nodes[best]


def take_turn(
    nodes: Sequence[Node],
    scores: list[int],
    avoid: Node | None,
    start: int = 0,
    load: float | None = None,
) -> int:
    """One smooth weighted round-robin step over the nodes from ``start`` on that are
    up, not ``avoid`` and, when ``load`` is given, have that many requests in flight
    per unit of weight: each adds its weight to its score, the highest score wins and
    gives back the total weight of those taking part.  The winner's index, or -1."""
    best = -1
    top = 0
    total = 0
    for index in range(start, len(nodes)):
        node = nodes[index]
        if node.up and node is not avoid and (load is None or node.in_flight / node.weight == load):
            weight = node.weight
            score = scores[index] = scores[index] + weight
            total += weight
            if best < 0 or score > top:
                best = index
                top = score
    if best >= 0:
        scores[best] = top - total
    return best
