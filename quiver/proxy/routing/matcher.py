"""The compiled route table: built once per config, read by every request."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Sequence
from typing import Generic, TypeVar

from quiver.config.models import Route
from quiver.proxy.routing.entry import (
    NO_PARAMS,
    Entry,
    HeaderLookup,
    HeaderRule,
    RouteMatch,
    fill,
    pick,
)
from quiver.proxy.routing.patterns import KIND_ORDER, PathPattern, parse_path_pattern, parse_rewrite
from quiver.proxy.routing.trie import Found, Node

T = TypeVar("T")

#: routes handled between two pauses of a stepwise build (see ``Router.in_steps``)
STEP = 50

_EXACT_HOST, _WILDCARD_HOST, _ANY_HOST = 0, 1, 2


class _Table(Generic[T]):
    """Routes of one host key (or of no host), indexed by path; not changed once built."""

    __slots__ = ("exact", "trie")

    def __init__(self) -> None:
        self.exact: dict[bytes, tuple[Entry[T], ...]] = {}
        self.trie: Node[T] | None = None

    def add(self, entry: Entry[T]) -> None:
        pattern = entry.pattern
        if pattern.segments is not None:
            if self.trie is None:
                self.trie = Node()
            self.trie.insert(entry)
        else:
            self.exact[pattern.literal] = (*self.exact.get(pattern.literal, ()), entry)

    def search(
        self,
        method: bytes,
        path: bytes,
        segments: list[bytes],
        headers: HeaderLookup,
        found: Found[T],
    ) -> Found[T]:
        bucket = self.exact.get(path)
        if bucket is not None and bucket[0].rank < found[0]:
            entry = pick(bucket, found[0], method, headers)
            if entry is not None:
                found = (entry.rank, entry, None)
        if self.trie is not None:
            found = self.trie.search(path, segments, method, headers, found)
        return found


class Router(Generic[T]):
    """Routes compiled for lookup; immutable once built.

    >>> router = Router([(Route(name="u", paths=["/users/{id}"], target="t"), "users")])
    >>> hit = router.match(b"GET", b"", b"/users/7/posts", {})
    >>> (hit.value, hit.params, hit.path) if hit else None
    ('users', {'id': '7'}, b'/users/7/posts')
    """

    __slots__ = (
        "_any_host",
        "_entries",
        "_exact_hosts",
        "_miss",
        "_wildcard_hosts",
        "depends_on_headers",
        "depends_on_host",
    )

    def __init__(self, entries: Sequence[tuple[Route, T]]) -> None:
        for _ in self._fill(entries):
            pass

    @classmethod
    def in_steps(cls, entries: Sequence[tuple[Route, T]]) -> Generator[None, None, Router[T]]:
        """Build the router a few routes at a time: the generator pauses (yields) every
        ``STEP`` routes and returns the router, the same as ``Router(entries)``."""
        router = cls.__new__(cls)
        yield from router._fill(entries)
        return router

    def _fill(self, entries: Sequence[tuple[Route, T]]) -> Iterator[None]:
        ordered = yield from _rank(entries)
        self._entries: tuple[Entry[T], ...] = ordered
        self._exact_hosts: dict[bytes, _Table[T]] = {}
        self._wildcard_hosts: dict[bytes, _Table[T]] = {}  # keyed by ".example.com"
        self._any_host: _Table[T] | None = None
        for count, entry in enumerate(ordered, 1):
            if count % STEP == 0:
                yield
            if entry.host is None:
                if self._any_host is None:
                    self._any_host = _Table()
                self._any_host.add(entry)
                continue
            kind, key = _host_key(entry.route, entry.host)
            index = self._exact_hosts if kind == _EXACT_HOST else self._wildcard_hosts
            index.setdefault(key, _Table()).add(entry)
        self._miss: Found[T] = (len(ordered), None, None)
        #: whether a match can depend on request headers / on the Host: callers may
        #: cache matches by method, host and path when it cannot depend on headers
        self.depends_on_headers = any(entry.headers for entry in ordered)
        self.depends_on_host = bool(self._exact_hosts or self._wildcard_hosts)

    def match(
        self, method: bytes, host: bytes, path: bytes, headers: HeaderLookup
    ) -> RouteMatch[T] | None:
        """The route of best precedence accepting the request, or None.

        ``path`` is normalized (see ``normalize_path``) and has no query string;
        ``host`` is lowercase without port (b"" when absent); header names are
        lowercase.
        """
        segments = path.split(b"/")
        found = self._miss
        if host:
            if self._exact_hosts:
                table = self._exact_hosts.get(host)
                if table is not None:
                    found = table.search(method, path, segments, headers, found)
            if self._wildcard_hosts:
                dot = host.find(b".", 1)
                while dot > 0:
                    table = self._wildcard_hosts.get(host[dot:])
                    if table is not None:
                        found = table.search(method, path, segments, headers, found)
                    dot = host.find(b".", dot + 1)
        if self._any_host is not None:
            found = self._any_host.search(method, path, segments, headers, found)
        entry = found[1]
        if entry is None:
            return None
        return entry.result(path, segments, found[2])

    def table(self) -> list[dict[str, object]]:
        """One row per route, path and host, in match precedence order.

        ``hosts`` holds the one host of the row (None: any host); a route with
        several paths or hosts has a row for each combination.
        """
        rows: list[dict[str, object]] = []
        for entry in self._entries:
            route = entry.route
            rows.append(
                {
                    "order": entry.rank + 1,
                    "name": route.name,
                    "kind": entry.pattern.kind,
                    "pattern": entry.pattern.text,
                    "methods": list(route.methods) if route.methods else None,
                    "hosts": [entry.host] if entry.host is not None else None,
                    "headers": {k: list(v) for k, v in route.headers.items()}
                    if route.headers
                    else None,
                    "priority": route.priority,
                    "strip_path": route.strip_path,
                    "rewrite": route.rewrite,
                }
            )
        return rows


def _rank(
    entries: Sequence[tuple[Route, T]],
) -> Generator[None, None, tuple[Entry[T], ...]]:
    """Every path/host combination of every route, compiled, in match precedence order
    (returned by the generator, which pauses every ``STEP`` routes)."""
    drafts: list[tuple[tuple[int, ...], _Draft[T]]] = []
    for route_index, (route, value) in enumerate(entries):
        if route_index % STEP == STEP - 1:
            yield
        methods = frozenset(m.encode("ascii") for m in route.methods) if route.methods else None
        headers = _header_rules(route)
        conditions = (1 if methods else 0) + len(headers or ())
        hosts = [None if h.strip() == "*" else h for h in route.hosts or ()] or [None]
        host_keys = [(_ANY_HOST, b"") if h is None else _host_key(route, h) for h in hosts]
        for path_index, text in enumerate(route.paths):
            try:
                pattern = parse_path_pattern(text)
            except ValueError as exc:
                raise ValueError(f"route {route.name!r}: {exc}") from exc
            rewrite = _rewrite(route, pattern)
            for host_index, (host, (host_kind, host_bytes)) in enumerate(
                zip(hosts, host_keys, strict=True)
            ):
                key = (
                    -route.priority,
                    host_kind,
                    -len(host_bytes) if host_kind == _WILDCARD_HOST else 0,
                    0 if pattern.anchored else 1,
                    -pattern.literal_count,
                    KIND_ORDER[pattern.kind],
                    -conditions,
                    route_index,
                    path_index,
                    host_index,
                )
                drafts.append((key, (value, route, pattern, host, methods, headers, rewrite)))
    drafts.sort(key=lambda draft: draft[0])
    ordered: list[Entry[T]] = []
    for rank, (_, (value, route, pattern, host, methods, headers, rewrite)) in enumerate(drafts):
        if rank % STEP == STEP - 1:
            yield
        ordered.append(
            Entry(
                rank=rank,
                value=value,
                route=route,
                pattern=pattern,
                host=host,
                methods=methods,
                headers=headers,
                plain=methods is None and headers is None,
                strip=route.strip_path,
                rewrite=rewrite,
                depth=len(pattern.segments or ()) if pattern.regex is None else 0,
                cut=len(pattern.literal) - pattern.trailing_slash
                if pattern.kind == "prefix"
                else -1,
                static=_static_match(route, value, pattern, rewrite),
            )
        )
    return tuple(ordered)


_Draft = tuple[
    T,
    Route,
    PathPattern,
    "str | None",
    "frozenset[bytes] | None",
    "tuple[HeaderRule, ...] | None",
    "tuple[bytes | int | str, ...] | None",
]


def _static_match(
    route: Route, value: T, pattern: PathPattern, rewrite: tuple[bytes | int | str, ...] | None
) -> RouteMatch[T] | None:
    """The match of an exact path, the same for every request it accepts."""
    if pattern.segments is not None:
        return None
    if rewrite is not None:
        forward = fill(rewrite, (), None)
    else:
        forward = b"/" if route.strip_path else pattern.literal
    return RouteMatch(value, route, NO_PARAMS, forward)


def _host_key(route: Route, host: str) -> tuple[int, bytes]:
    """(exact or wildcard, lowercase bytes); wildcards keyed by their ".suffix"."""
    name = host.strip().lower()
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[1:]
    if "*" in name or not name.strip(".") or (":" in name and not name.startswith("[")):
        raise ValueError(
            f"route {route.name!r}: host {host!r}: give a name without port, "
            "optionally starting with '*.'"
        )
    encoded = name.encode("ascii") if name.isascii() else name.encode("idna")
    if wildcard and not encoded.startswith(b"."):
        encoded = b"." + encoded
    return (_WILDCARD_HOST if wildcard else _EXACT_HOST), encoded


def _header_rules(route: Route) -> tuple[HeaderRule, ...] | None:
    if not route.headers:
        return None
    rules: list[HeaderRule] = []
    for name, accepted in route.headers.items():
        values: set[bytes] = set()
        patterns: list[re.Pattern[str]] = []
        for value in accepted:
            if value.startswith("~"):
                try:
                    patterns.append(re.compile(value[1:]))
                except re.error as exc:
                    raise ValueError(
                        f"route {route.name!r}: header {name!r}: bad regex {value!r}: {exc}"
                    ) from exc
            else:
                values.add(value.encode())
        rules.append(HeaderRule(name.lower().encode("latin-1"), frozenset(values), tuple(patterns)))
    return tuple(rules)


def _rewrite(route: Route, pattern: PathPattern) -> tuple[bytes | int | str, ...] | None:
    if route.rewrite is None:
        return None
    try:
        parts = parse_rewrite(route.rewrite)
    except ValueError as exc:
        raise ValueError(f"route {route.name!r}: {exc}") from exc
    compiled: list[bytes | int | str] = []
    for part in parts:
        if isinstance(part, bytes):
            compiled.append(part)
        elif part not in pattern.param_names:
            raise ValueError(
                f"route {route.name!r}: rewrite {route.rewrite!r} uses {{{part}}}, "
                f"which path {pattern.text!r} does not capture"
            )
        elif pattern.regex is None:
            compiled.append(pattern.param_names.index(part))
        else:
            compiled.append(part)
    return tuple(compiled)
