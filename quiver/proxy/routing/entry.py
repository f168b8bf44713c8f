"""A route compiled for one of its path/host combinations, and the match it yields."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from quiver.config.models import Route
from quiver.proxy.routing.patterns import PathPattern

T = TypeVar("T")

NO_PARAMS: dict[str, str] = {}


class HeaderLookup(Protocol):
    """Request headers as routing reads them: a value by lowercase name, or None."""

    def get(self, name: bytes, /) -> bytes | None: ...


# shared by every match without parameters; never mutated


@dataclass(frozen=True, slots=True)
class RouteMatch(Generic[T]):
    """The route chosen for a request and the path to forward upstream.

    ``params`` is read-only: matches without parameters share one empty dict, and
    an exact-path route returns the same match object for every request.
    """

    value: T  # payload given with the route at compile time
    route: Route
    params: dict[str, str]  # {name} segments or named regex groups, still percent-encoded
    path: bytes  # after strip_path / rewrite; always starts with b"/"


# A frozen dataclass's __init__ goes through object.__setattr__ once per field;
# writing the slots directly builds the same object in about half the time, which
# matters because every routed request gets one.
_SLOTS = vars(RouteMatch)
_SET_VALUE = _SLOTS["value"].__set__
_SET_ROUTE = _SLOTS["route"].__set__
_SET_PARAMS = _SLOTS["params"].__set__
_SET_PATH = _SLOTS["path"].__set__


def new_match(value: T, route: Route, params: dict[str, str], path: bytes) -> RouteMatch[T]:
    """``RouteMatch(value, route, params, path)``, built faster."""
    match: RouteMatch[T] = object.__new__(RouteMatch)
    _SET_VALUE(match, value)
    _SET_ROUTE(match, route)
    _SET_PARAMS(match, params)
    _SET_PATH(match, path)
    return match


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
    plain: bool  # neither methods nor headers: accepts every request its path fits
    strip: bool
    # Literal bytes, and for each parameter its index among the trie's captured
    # segments (int) or its regex group name (str).
    rewrite: tuple[bytes | int | str, ...] | None
    depth: int  # segments a trie pattern covers, to strip them
    cut: int  # bytes strip_path removes for a literal prefix; -1 when it depends on the path
    static: RouteMatch[T] | None  # the match itself when no request can change it

    def accepts(self, method: bytes, headers: HeaderLookup) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.headers is not None:
            for rule in self.headers:
                if not rule.accepts(headers.get(rule.name)):
                    return False
        return True

    def result(self, path: bytes, segments: list[bytes], extra: object) -> RouteMatch[T]:
        """The match for ``path``; ``extra`` is the trie's captured segments or a re.Match."""
        if self.static is not None:
            return self.static
        rewrite = self.rewrite
        if type(extra) is tuple:  # from the trie: captured segments, in parameter order
            names = self.pattern.param_names
            if not names:
                params = NO_PARAMS
            elif len(names) == 1:
                params = {names[0]: extra[0].decode("latin-1")}
            else:
                params = {}
                for name, captured in zip(names, extra, strict=True):
                    params[name] = captured.decode("latin-1")
            if rewrite is None and not self.strip:
                forward = path
            else:
                # what follows the part of the path the pattern matched
                if self.pattern.anchored:
                    rest = b""
                elif self.cut >= 0:
                    rest = path[self.cut :]
                else:
                    cut = self.depth  # one slash per covered segment, plus their lengths
                    for segment in segments[1 : self.depth + 1]:
                        cut += len(segment)
                    rest = path[cut:]
                if rewrite is not None:
                    forward = join_rest(fill(rewrite, extra, None), rest)
                else:
                    forward = rest or b"/"
            return new_match(self.value, self.route, params, forward)
        assert isinstance(extra, re.Match)
        params = {k: v for k, v in extra.groupdict().items() if v is not None} or NO_PARAMS
        if rewrite is not None:
            forward = join_rest(fill(rewrite, (), extra), path[extra.end() :])
        elif self.strip:
            forward = path[extra.end() :]
            if forward[:1] != b"/":
                forward = b"/" + forward
        else:
            forward = path
        return new_match(self.value, self.route, params, forward)


def fill(
    rewrite: tuple[bytes | int | str, ...],
    captured: tuple[bytes, ...],
    groups: re.Match[str] | None,
) -> bytes:
    """A rewrite template with its parameters substituted as captured."""
    out: list[bytes] = []
    for part in rewrite:
        if isinstance(part, bytes):
            out.append(part)
        elif isinstance(part, int):
            out.append(captured[part])
        elif groups is not None:
            out.append((groups.group(part) or "").encode("latin-1"))
    return b"".join(out)


def join_rest(rewritten: bytes, rest: bytes) -> bytes:
    """The rewritten part of a path followed by the rest, one slash between them."""
    if not rest:
        return rewritten
    if rest[:1] == b"/":
        return rewritten + rest[1:] if rewritten[-1:] == b"/" else rewritten + rest
    return rewritten + rest if rewritten[-1:] == b"/" else rewritten + b"/" + rest


def pick(
    bucket: Sequence[Entry[T]], best_rank: int, method: bytes, headers: HeaderLookup
) -> Entry[T] | None:
    """The first entry of a rank-sorted bucket that beats ``best_rank`` and accepts."""
    for entry in bucket:
        if entry.rank >= best_rank:
            return None
        if entry.plain or entry.accepts(method, headers):
            return entry
    return None
