"""One route for one of its path/host combinations, with everything precomputed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from quiver.config.models import Route
from quiver.proxy.routing.patterns import PathPattern

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HeaderRule:
    """A header that must be present with one of ``values`` or matching one of ``patterns``.

    With neither values nor patterns, being present is enough.
    """

    name: bytes
    values: frozenset[bytes]
    patterns: tuple[re.Pattern[str], ...]

    def accepts(self, value: bytes | None) -> bool:
        if value is None:
            return False
        if value in self.values or not (self.values or self.patterns):
            return True
        if self.patterns:
            text = value.decode("latin-1")
            return any(pattern.match(text) for pattern in self.patterns)
        return False


@dataclass(frozen=True, slots=True, eq=False)
class Entry(Generic[T]):
    """A route for one path pattern and one host (or any host).

    ``rank`` is the position in match precedence, 0 first: comparing two ranks
    is all the matcher does to choose between candidates.
    """

    rank: int
    value: T
    route: Route
    pattern: PathPattern
    host: str | None  # as configured; None: any host
    methods: frozenset[bytes] | None
    headers: tuple[HeaderRule, ...] | None
    rewrite: tuple[bytes | str, ...] | None  # literal bytes and parameter names

    def accepts(self, method: bytes, headers: Mapping[bytes, bytes]) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.headers is not None:
            for rule in self.headers:
                if not rule.accepts(headers.get(rule.name)):
                    return False
        return True


def pick(
    bucket: Sequence[Entry[T]], best_rank: int, method: bytes, headers: Mapping[bytes, bytes]
) -> Entry[T] | None:
    """The first entry of a rank-sorted bucket that beats ``best_rank`` and accepts."""
    for entry in bucket:
        if entry.rank >= best_rank:
            return None
        if (entry.methods is None and entry.headers is None) or entry.accepts(method, headers):
            return entry
    return None
