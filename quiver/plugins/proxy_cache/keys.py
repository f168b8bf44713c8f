"""Cache keys: which request a stored response answers.

A key is ``"<host> <path>?<digest>"``: the Host (unless ``key_host`` is off), the
path as sent, then a digest of what else the config puts in the key: the query
parameters (every one by default, sorted by name so their order does not matter;
repeated names keep their order), chosen request headers, the consumer.  The
host and path stay readable so that purges and invalidations find entries by URL.
Only GET responses are stored; HEAD is answered from them, so the method is not
part of the key.

A response with ``Vary`` is stored under ``"<key>#<digest of the selecting
values>"``, and the key itself holds the Vary names (RFC 9111 §4.1).
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from quiver.plugins.base import PluginRequest
from quiver.plugins.proxy_cache.config import ProxyCacheConfig

#: fields whose values compare case-insensitively, normalised to lowercase
_CASELESS = frozenset({b"accept", b"accept-charset", b"accept-encoding", b"accept-language"})
_MADE_MAX = 4096


class KeyMaker:
    """The key of a request under one plugin config (built once per route)."""

    __slots__ = ("consumer", "headers", "host", "made", "query", "simple")

    def __init__(self, config: ProxyCacheConfig) -> None:
        self.host = config.key_host
        self.query = (
            None if config.key_query is None else frozenset(q.encode() for q in config.key_query)
        )
        self.headers = tuple(name.lower().encode() for name in config.key_headers)
        self.consumer = config.key_consumer
        #: only the path and query: no digest to compute for a request without a query
        self.simple = self.query is None and not self.headers and not self.consumer
        #: (Host, path, query) -> (key, path id), when nothing else is in the key: most
        #: traffic repeats a few URLs (cleared when it grows past _MADE_MAX)
        self.made: dict[tuple[bytes | None, bytes, bytes], tuple[str, str]] | None = (
            {} if not self.headers and not self.consumer else None
        )

    def identify(self, request: PluginRequest, host: bytes | None) -> tuple[str, str]:
        """``(key, path id)`` of ``request``, whose Host is ``host``."""
        made = self.made
        if made is None:
            path_id = self.path_id(request)
            return self.key(request, path_id), path_id
        url = (host if self.host else None, request.raw_path, request.query)
        found = made.get(url)
        if found is None:
            if len(made) >= _MADE_MAX:
                made.clear()
            path_id = self.path_id(request)
            found = made[url] = (self.key(request, path_id), path_id)
        return found

    def key(self, request: PluginRequest, base: str) -> str:
        """The key of ``request``, whose path id is ``base``."""
        if self.simple and not request.query:
            return base
        digest = hashlib.blake2b(digest_size=12)
        digest.update(self._query(request.query))
        for name in self.headers:
            digest.update(b"\x00" + name + b"=" + (request.get(name) or b"\x01"))
        if self.consumer:
            consumer = request.consumer
            digest.update(b"\x00consumer=" + (consumer.name.encode() if consumer else b"\x01"))
        return base + "?" + digest.hexdigest()

    def path_id(self, request: PluginRequest) -> str:
        """``"<host> <path>"``: what invalidation and purges look entries up by."""
        path = request.raw_path.decode("latin-1")
        if not self.host:
            return " " + path
        return (request.get(b"host") or b"").decode("latin-1").lower() + " " + path

    def _query(self, query: bytes) -> bytes:
        if not query:
            return b""
        pairs = query.split(b"&")
        if self.query is not None:
            allowed = self.query
            pairs = [pair for pair in pairs if pair.partition(b"=")[0] in allowed]
        pairs.sort(key=lambda pair: pair.partition(b"=")[0])  # (stable: repeats keep order)
        return b"&".join(pairs)


def variant(key: str, names: tuple[bytes, ...], request: PluginRequest) -> str:
    """The key of the variant the request's selecting header values pick (§4.1):
    values normalised (whitespace around commas, case where it carries no meaning),
    an absent field distinct from an empty one."""
    digest = hashlib.blake2b(digest_size=12)
    for name in names:
        value = request.get(name)
        if value is None:
            digest.update(b"\x00" + name + b"\x01")
            continue
        value = b",".join(part.strip(b" \t") for part in value.split(b","))
        if name in _CASELESS:
            value = value.lower()
        digest.update(b"\x00" + name + b"=" + value)
    return key + "#" + digest.hexdigest()


def vary_names(value: bytes | None) -> tuple[bytes, ...]:
    """The field names a Vary value lists, lowercase, sorted, without repeats."""
    if not value:
        return ()
    names = {name.strip(b" \t").lower() for name in value.split(b",")}
    names.discard(b"")
    return tuple(sorted(names))


def location_ids(value: bytes | None, host: str, keep_host: bool) -> list[str]:
    """The path ids of a Location or Content-Location value on the same host
    (RFC 9111 §4.4: other hosts' entries are not invalidated)."""
    if not value:
        return []
    parts = urlsplit(value.decode("latin-1").strip())
    if parts.netloc and parts.netloc.lower() != host:
        return []
    if not parts.path.startswith("/"):
        return []
    return [f"{host if keep_host else ''} {parts.path}"]
