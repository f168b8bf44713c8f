"""Segment trie holding prefix paths, templates and regexes.

A node has literal children keyed by segment bytes and at most one parameter
child; routes hang off the node where their pattern ends:

- ``prefix``: the request path may end here or continue (``/items``);
- ``deeper``: the request path must continue past here (``/api/``);
- ``exact``: the request path must end here (``=/users/{id}``);
- ``regexes``: regexes (and templates with a parameter inside a segment) whose
  matches all start with the segments leading here, tried against the whole path.

A walk follows the request's segments once.  Where both a literal child and the
parameter child fit, it keeps the other branch on a small stack and comes back
to it, because a later, shallower or parameter branch can still hold the route
of best rank (priority can beat path length).
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

from quiver.proxy.routing.entry import Entry, HeaderLookup, pick

T = TypeVar("T")

# (rank of the best candidate so far, its entry, its captured segments or re.Match)
Found = tuple[int, Entry[T] | None, object]


class Node(Generic[T]):
    __slots__ = ("children", "deeper", "exact", "param", "prefix", "regexes", "routed")

    def __init__(self) -> None:
        self.children: dict[bytes, Node[T]] = {}
        self.param: Node[T] | None = None
        self.routed = False  # any route ends here; most nodes are only passed through
        # Rank-sorted; None when empty so the walk tests them cheaply.
        self.prefix: tuple[Entry[T], ...] | None = None
        self.deeper: tuple[Entry[T], ...] | None = None
        self.exact: tuple[Entry[T], ...] | None = None
        self.regexes: tuple[tuple[Entry[T], re.Pattern[str]], ...] | None = None

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
                child = node.children.get(segment)
                if child is None:
                    child = node.children[segment] = Node()
                node = child
        node.routed = True
        if pattern.regex is not None:
            node.regexes = (*(node.regexes or ()), (entry, pattern.regex))
        elif pattern.anchored:
            node.exact = (*(node.exact or ()), entry)
        elif pattern.trailing_slash:
            node.deeper = (*(node.deeper or ()), entry)
        else:
            node.prefix = (*(node.prefix or ()), entry)

    def search(
        self,
        path: bytes,
        segments: list[bytes],
        method: bytes,
        headers: HeaderLookup,
        found: Found[T],
    ) -> Found[T]:
        """Improve ``found`` with the best entry whose pattern fits the request.

        ``segments`` is ``path.split(b"/")``: index 0 is the empty text before the
        leading slash, so the request's k-th segment is ``segments[k]``.
        """
        last = len(segments) - 1
        best_rank, best, best_extra = found
        node = self
        depth = 0
        captured: tuple[bytes, ...] = ()
        pending: list[tuple[Node[T], int, tuple[bytes, ...]]] | None = None
        text: str | None = None  # the path as regexes see it, decoded once when needed
        while True:
            # Each bucket is rank-sorted: its head says whether it can beat the best so
            # far, and a head without methods/headers is taken without calling pick().
            if node.routed:
                if node.regexes is not None and node.regexes[0][0].rank < best_rank:
                    if text is None:
                        text = path.decode("latin-1")
                    for candidate, regex in node.regexes:
                        if candidate.rank >= best_rank:
                            break
                        hit = regex.match(text)
                        if hit is not None and candidate.accepts(method, headers):
                            best_rank, best, best_extra = candidate.rank, candidate, hit
                            break
                bucket = node.prefix
                if bucket is not None and bucket[0].rank < best_rank:
                    entry = (
                        bucket[0] if bucket[0].plain else pick(bucket, best_rank, method, headers)
                    )
                    if entry is not None:
                        best_rank, best, best_extra = entry.rank, entry, captured
                bucket = node.deeper if depth < last else node.exact
                if bucket is not None and bucket[0].rank < best_rank:
                    entry = (
                        bucket[0] if bucket[0].plain else pick(bucket, best_rank, method, headers)
                    )
                    if entry is not None:
                        best_rank, best, best_extra = entry.rank, entry, captured
            if depth < last:
                depth += 1
                segment = segments[depth]
                child = node.children.get(segment)
                param = node.param
                if param is not None and segment:
                    if child is None:
                        node = param
                        captured = (*captured, segment)
                        continue
                    if pending is None:
                        pending = []
                    pending.append((param, depth, (*captured, segment)))
                if child is not None:
                    node = child
                    continue
            if not pending:
                return best_rank, best, best_extra
            node, depth, captured = pending.pop()
