"""The request fields the cache reads on every request, found in one pass."""

from __future__ import annotations

_WANTED = frozenset({b"host", b"cache-control", b"if-none-match", b"if-modified-since"})
_SIZES = frozenset(len(name) for name in _WANTED)


class Fields:
    """Host, Cache-Control and the client's validators (repeated fields joined by
    ", "), read off the request's fields once instead of looked up one by one."""

    __slots__ = ("cache_control", "host", "validators")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        found: dict[bytes, bytes] = {}
        for name, value in headers:
            if len(name) in _SIZES:
                lowered = name.lower()
                if lowered in _WANTED:
                    known = found.get(lowered)
                    found[lowered] = value if known is None else known + b", " + value
        self.host = found.get(b"host")
        self.cache_control = found.get(b"cache-control")
        #: If-None-Match and If-Modified-Since, for answering the client's own conditions
        self.validators = (found.get(b"if-none-match"), found.get(b"if-modified-since"))
