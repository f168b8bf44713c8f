"""Consistent hashing: requests with the same key reach the same node.

Every node owns ``160 * weight`` points on a ring of 64-bit positions (the ketama
scheme nginx's ``hash ... consistent`` uses), placed by BLAKE2b of the node's URL,
so the ring is the same in every worker and after every restart.  A key hashes to
a position and belongs to the first point at or after it, going clockwise::

    balancer = ConsistentHash(nodes, key_reader("header", "X-User"))
    balancer.pick(request)     # X-User: 42 -> always the same node while it is up

A node's points depend on that node alone, so removing one of N nodes moves only
the keys it owned (about 1/N of them) and every other key stays where it was.  A
node that is down, or avoided by a retry, is walked past to the next point, which
is exactly where its keys would go if it were removed: when it comes back they
return to it and nothing else moves.  A request without the key (the header or
cookie is absent) is spread by round robin instead.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Callable, Sequence
from hashlib import blake2b
from itertools import chain, islice
from struct import unpack
from typing import TYPE_CHECKING

from quiver.proxy.balancing.round_robin import RoundRobin

if TYPE_CHECKING:
    from quiver.config.resilience import Balance, HashOn
    from quiver.proxy.balancing import RequestKeys
    from quiver.proxy.upstream import Node

POINTS_PER_WEIGHT = 160  # a multiple of 8: one 64-byte digest gives 8 points

KeyReader = Callable[["RequestKeys"], "bytes | None"]


def key_reader(hash_on: HashOn, name: str | None = None) -> KeyReader:
    """How to read the key from a request; ``name`` is the header or cookie name.

    ``path`` is the path without its query string (as Kong's ``hash_on: path``).
    """
    if hash_on == "ip":
        return lambda request: request.client.peer
    if hash_on == "path":
        return lambda request: request.raw_path.partition(b"?")[0]
    if not name:
        raise ValueError(f"hash_on: {hash_on} needs the {hash_on} name")
    if hash_on == "header":
        header = name.lower().encode("latin-1")
        return lambda request: request.get(header)
    prefix = name.encode("latin-1") + b"="

    def read_cookie(request: RequestKeys) -> bytes | None:
        cookies = request.get(b"cookie")
        if cookies is not None:
            for pair in cookies.split(b";"):  # RFC 6265 §4.2.1: name=value; name=value
                pair = pair.strip()
                if pair.startswith(prefix):
                    return pair[len(prefix) :]
        return None

    return read_cookie


def position(key: bytes) -> int:
    """Where ``key`` lands on the ring."""
    return int.from_bytes(blake2b(key, digest_size=8).digest(), "little")


def node_points(node: Node) -> list[int]:
    """The ring positions owned by ``node``."""
    url = node.url.encode()
    return [
        point
        for block in range(node.weight * POINTS_PER_WEIGHT // 8)
        for point in unpack("<8Q", blake2b(b"%s#%d" % (url, block)).digest())
    ]


class ConsistentHash:
    """Maps each request's key to a node on a hash ring."""

    __slots__ = ("_fallback", "_key", "_nodes", "_owners", "_points")

    def __init__(self, nodes: Sequence[Node], key: KeyReader) -> None:
        self._nodes = [node for node in nodes if node.weight > 0]
        self._key = key
        ring = sorted(
            (point, index) for index, node in enumerate(self._nodes) for point in node_points(node)
        )
        self._points = [point for point, _ in ring]
        self._owners = [self._nodes[index] for _, index in ring]
        self._fallback = RoundRobin(self._nodes)

    @classmethod
    def from_settings(
        cls,
        settings: Balance,
        nodes: Sequence[Node],
        rng: random.Random,
        clock: Callable[[], float],
    ) -> ConsistentHash:
        if settings.hash_on is None:
            raise ValueError("consistent_hash needs 'hash_on' (header, cookie, ip or path)")
        return cls(nodes, key_reader(settings.hash_on, settings.hash_key))

    def pick(self, request: RequestKeys, avoid: Node | None = None) -> Node | None:
        key = self._key(request)
        if not key:
            return self._fallback.pick(request, avoid)
        owners = self._owners
        index = bisect_left(self._points, position(key))
        if index == len(owners):
            index = 0  # past the last point: wrap around to the first
        node = owners[index]
        if node.up and node is not avoid:
            return node
        if not any(node.up and node is not avoid for node in self._nodes):
            return avoid if avoid is not None and avoid.up else None
        # walk clockwise to the next point of an eligible node (there is one)
        return next(
            node
            for node in chain(islice(owners, index + 1, None), owners)
            if node.up and node is not avoid
        )
