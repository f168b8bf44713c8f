"""Choosing a node of a target for each request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar


class Weighted(Protocol):
    @property
    def weight(self) -> int: ...


N = TypeVar("N", bound=Weighted)


class SmoothWeightedRoundRobin(Generic[N]):
    """Interleaves nodes in proportion to their weights, as nginx's upstream does.

    Each pick adds every node's weight to its running score, takes the highest and
    subtracts the total from it: weights 5,1,1 give a a b a c a a rather than
    a a a a a b c.
    """

    __slots__ = ("_current", "_nodes", "_single", "_total")

    def __init__(self, nodes: Sequence[N]) -> None:
        self._nodes = [node for node in nodes if node.weight > 0]
        self._current = [0] * len(self._nodes)
        self._total = sum(node.weight for node in self._nodes)
        self._single = self._nodes[0] if len(self._nodes) == 1 else None

    def pick(self, request: object = None, avoid: object = None) -> N | None:
        best = -1
        current = self._current
        total = 0
        for index, node in enumerate(self._nodes):
            if not getattr(node, "up", True) or node is avoid:
                continue
            total += node.weight
            current[index] += node.weight
            if best < 0 or current[index] > current[best]:
                best = index
        if best < 0:
            return avoid if avoid is not None and getattr(avoid, "up", False) else None  # type: ignore[return-value]
        current[best] -= total
        return self._nodes[best]
