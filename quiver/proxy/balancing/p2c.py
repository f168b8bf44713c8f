"""Power of two choices: the less loaded of two nodes drawn at random.

Two distinct up nodes are drawn, each with a probability proportional to its
weight, and the one with fewer requests in flight per unit of weight wins.  This
avoids both the herd behaviour of "always the least loaded" (every balancer in
every worker rushing to the same idle node) and the blindness of pure random
choice, while costing two draws instead of a scan of all nodes::

    balancer = PowerOfTwoChoices(nodes, rng=random.Random(7))
    balancer.pick(request)     # draws e.g. a (5 in flight) and c (1): returns c

With three nodes the busiest one can never win: it is always drawn against a
less loaded one.  Subclasses change how the two candidates compare by overriding
``_choose`` (see :mod:`quiver.proxy.balancing.ewma`).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quiver.config.resilience import Balance
    from quiver.proxy.balancing import RequestKeys
    from quiver.proxy.upstream import Node

# Draws among all nodes before drawing from a list of the eligible ones.
_ATTEMPTS = range(3)


class PowerOfTwoChoices:
    """Picks the less loaded of two random nodes."""

    __slots__ = ("_bounds", "_last", "_nodes", "_random", "_total")

    def __init__(self, nodes: Sequence[Node], rng: random.Random | None = None) -> None:
        self._nodes = [node for node in nodes if node.weight > 0]
        self._bounds = list(accumulate(node.weight for node in self._nodes))
        self._total = self._bounds[-1] if self._bounds else 0
        self._last = len(self._nodes) - 1
        self._random = (rng or random.Random()).random

    @classmethod
    def from_settings(
        cls,
        settings: Balance,
        nodes: Sequence[Node],
        rng: random.Random,
        clock: Callable[[], float],
    ) -> PowerOfTwoChoices:
        return cls(nodes, rng)

    def pick(self, request: RequestKeys, avoid: Node | None = None) -> Node | None:
        nodes = self._nodes
        last = self._last
        if last > 0:
            # The usual case inline: both candidates eligible at their first draw.
            # Otherwise ``_draw`` goes on drawing, which keeps each choice exactly
            # weighted among the eligible nodes.
            bounds = self._bounds
            total = self._total
            first = bisect_right(bounds, self._random() * total, 0, last)
            a = nodes[first]
            if a.up and a is not avoid:
                width = a.weight
                point = self._random() * (total - width)
                if point >= bounds[first] - width:
                    point += width  # jump over the first candidate's share
                b = nodes[bisect_right(bounds, point, 0, last)]
                if b.up and b is not avoid:
                    return self._choose(a, b)
                second = self._draw(avoid, first)
                return a if second < 0 else self._choose(a, nodes[second])
        first = self._draw(avoid, -1)
        if first < 0:
            return avoid if avoid is not None and avoid.up else None
        second = self._draw(avoid, first)
        return nodes[first] if second < 0 else self._choose(nodes[first], nodes[second])

    def _choose(self, a: Node, b: Node) -> Node:
        """The better of two candidates: here, fewer requests in flight per weight."""
        return a if a.in_flight * b.weight <= b.in_flight * a.weight else b

    def _draw(self, avoid: Node | None, skip: int) -> int:
        """Index of a random eligible node by weight, never ``skip``; -1 if there is none."""
        nodes = self._nodes
        bounds = self._bounds
        total = self._total
        start = total  # where the skipped node's share of [0, total) starts
        width = 0
        if skip >= 0:
            width = nodes[skip].weight
            start = bounds[skip] - width
            total -= width
        if total:
            for _ in _ATTEMPTS:
                point = self._random() * total
                if point >= start:
                    point += width
                index = bisect_right(bounds, point, 0, self._last)
                node = nodes[index]
                if node.up and node is not avoid:
                    return index
        # many nodes are down: draw among the eligible ones only
        eligible = [
            index
            for index, node in enumerate(nodes)
            if index != skip and node.up and node is not avoid
        ]
        point = self._random() * sum(nodes[index].weight for index in eligible)
        for index in eligible:
            point -= nodes[index].weight
            if point < 0:
                return index
        return eligible[-1] if eligible else -1
