"""Segment trie holding prefix paths and whole-segment templates.

A node has literal children keyed by segment bytes and at most one parameter
child; routes hang off the node where their pattern ends:

- ``prefix``: the request path may end here or continue (``/items``);
- ``deeper``: the request path must continue past here (``/api/``);
- ``exact``: the request path must end here (``=/users/{id}``).

A walk follows the request's segments once.  Where both a literal child and the
parameter child fit, it keeps the other branch on a small stack and comes back
to it, because a later, shallower or parameter branch can still hold the route
of best rank (priority can beat path length).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Generic, TypeVar

from quiver.proxy.routing.entry import Entry, pick

T = TypeVar("T")

# (rank of the best candidate so far, its entry, its captured segments)
Found = tuple[int, Entry[T] | None, object]


class Node(Generic[T]):
    __slots__ = ("children", "deeper", "exact", "param", "prefix")

    def __init__(self) -> None:
        self.children: dict[bytes, Node[T]] = {}
        self.param: Node[T] | None = None
        # Rank-sorted; None when empty so the walk tests them cheaply.
        self.prefix: tuple[Entry[T], ...] | None = None
        self.deeper: tuple[Entry[T], ...] | None = None
        self.exact: tuple[Entry[T], ...] | None = None

    def insert(self, entry: Entry[T]) -> None:
        """Add ``entry`` along its pattern's segments; entries arrive in rank order."""
        pattern = entry.pattern
        assert pattern.segments is not None
        node = self
        for segment in pattern.segments:
            if segment is None:
                if node.param is None:
                    node.param = Node()
                node = node.param
            else:
                node = node.children.setdefault(segment, Node())
        if pattern.anchored:
            node.exact = (*(node.exact or ()), entry)
        elif pattern.trailing_slash:
            node.deeper = (*(node.deeper or ()), entry)
        else:
            node.prefix = (*(node.prefix or ()), entry)

    def search(
        self,
        segments: list[bytes],
        method: bytes,
        headers: Mapping[bytes, bytes],
        found: Found[T],
    ) -> Found[T]:
        """Improve ``found`` with the best entry whose pattern fits the request.

        ``segments`` is ``path.split(b"/")``: index 0 is the empty text before the
        leading slash, so the request's k-th segment is ``segments[k]``.
        """
        last = len(segments) - 1
        node = self
        depth = 0
        captured: tuple[bytes, ...] = ()
        pending: list[tuple[Node[T], int, tuple[bytes, ...]]] = []
        while True:
            bucket = node.prefix
            if bucket is not None and bucket[0].rank < found[0]:
                entry = pick(bucket, found[0], method, headers)
                if entry is not None:
                    found = (entry.rank, entry, captured)
            if depth < last:
                bucket = node.deeper
                if bucket is not None and bucket[0].rank < found[0]:
                    entry = pick(bucket, found[0], method, headers)
                    if entry is not None:
                        found = (entry.rank, entry, captured)
                segment = segments[depth + 1]
                child = node.children.get(segment)
                param = node.param
                depth += 1
                if param is not None and segment:
                    if child is None:
                        node = param
                        captured = (*captured, segment)
                        continue
                    pending.append((param, depth, (*captured, segment)))
                if child is not None:
                    node = child
                    continue
            else:
                bucket = node.exact
                if bucket is not None and bucket[0].rank < found[0]:
                    entry = pick(bucket, found[0], method, headers)
                    if entry is not None:
                        found = (entry.rank, entry, captured)
            if not pending:
                return found
            node, depth, captured = pending.pop()
