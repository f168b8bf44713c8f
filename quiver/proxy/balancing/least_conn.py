"""Least connections: the node with the fewest requests in flight per unit of weight.

A node of weight 2 with 4 requests in flight is as loaded as a node of weight 1
with 2.  Nodes tied for the lowest load take turns by smooth weighted round robin
(as nginx's ``least_conn`` does), so a lightly loaded target still spreads its
requests by weight rather than always sending them to the first node::

    balancer = LeastConn(nodes)          # a: 3 in flight, b: 1, c: 1 (weights 1)
    balancer.pick(request)               # b, then c, then b ... while loads tie
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from quiver.proxy.balancing.round_robin import take_turn

if TYPE_CHECKING:
    from quiver.config.resilience import Balance
    from quiver.proxy.balancing import RequestKeys
    from quiver.proxy.upstream import Node


class LeastConn:
    """Sends each request to the least loaded node."""

    __slots__ = ("_nodes", "_scores")

    def __init__(self, nodes: Sequence[Node]) -> None:
        self._nodes = [node for node in nodes if node.weight > 0]
        self._scores = [0] * len(self._nodes)  # round-robin scores among tied nodes

    @classmethod
    def from_settings(
        cls,
        settings: Balance,
        nodes: Sequence[Node],
        rng: random.Random,
        clock: Callable[[], float],
    ) -> LeastConn:
        return cls(nodes)

    def pick(self, request: RequestKeys, avoid: Node | None = None) -> Node | None:
        nodes = self._nodes
        first = -1
        lowest = 0.0
        tied = 0
        for index, node in enumerate(nodes):
            if node.up and node is not avoid:
                # equal fractions divide to equal floats (IEEE division rounds exactly)
                load = node.in_flight / node.weight
                if first < 0 or load < lowest:
                    first = index
                    lowest = load
                    tied = 1
                elif load == lowest:
                    tied += 1
        if first < 0:
            return avoid if avoid is not None and avoid.up else None
        if tied == 1:
            return nodes[first]
        # smooth weighted round robin among the tied nodes
        return nodes[take_turn(nodes, self._scores, avoid, first, lowest)]
