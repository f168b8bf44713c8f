"""Which of an API's routes serves a request: the portal's "Try it" sends only to
paths its API's routes take, with what the route needs to take it.

A route's ``paths`` are read by the gateway's rules (``quiver/proxy/routing``)::

    /items          prefix on segment boundaries: /items, /items/1, not /itemsx
    /api/           prefix ending in a slash: /api/x, not /api
    =/items         exactly that path
    /users/{id}     template: {id} is one non-empty segment; also a prefix
    =/users/{id}    template that must cover the whole path
    ~^/v[0-9]+/     Python regex, re.match against the path

Paths compare in the canonical form the gateway routes by (quiver.http.normalize),
so ``/orders/7/..`` is ``/orders``.  This says which routes could take a request;
which one does is the gateway's choice (priorities, other teams' routes), made as
for any request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from quiver.http.normalize import canonical_pattern, normalize_path

_PARAM = re.compile(r"\{[^{}/]*\}")
#: where key-auth looks for the key when its config does not say (its first header)
DEFAULT_KEY_HEADER = "apikey"


@dataclass(frozen=True)
class Served:
    """The route of an API that takes a request, and what the request needs."""

    route: str
    host: str | None  # the Host the route answers on (None: any)
    key_header: str  # where key-auth reads the key
    key_prefix: str = ""  # "Bearer " when it reads it from Authorization


def canonical(path: str) -> str | None:
    """``path`` (percent-encoded) as the gateway routes it, or None when no request
    could carry it."""
    if not path.isascii():
        return None
    found = normalize_path(path.encode("ascii"))
    return None if found is None else found.decode("latin-1")


def accepts(pattern: str, path: str) -> bool:
    """Whether the path pattern ``pattern`` takes the canonical ``path``."""
    if pattern.startswith("~"):
        try:
            return re.match(pattern[1:], path) is not None
        except re.error:
            return False
    anchored = pattern.startswith("=")
    try:
        literal = canonical_pattern(pattern[1:] if anchored else pattern).decode("latin-1")
    except ValueError:
        return False
    source = "[^/]+".join(re.escape(piece) for piece in _PARAM.split(literal))
    if anchored:
        source += r"\Z"
    elif not literal.endswith("/"):
        source += r"(?=/|\Z)"  # a prefix ends on a segment boundary
    return re.match(source, path) is not None


def served_by(
    document: Mapping[str, Any], routes: Sequence[str], method: str, path: str
) -> Served | None:
    """The first of ``routes`` (names in the team's ``document``) taking ``method``
    on the canonical ``path``, or None."""
    declared = {
        str(item.get("name")): item
        for item in document.get("routes") or []
        if isinstance(item, Mapping)
    }
    for name in routes:
        route = declared.get(name)
        if route is None:
            continue
        methods = route.get("methods")
        if methods and method.upper() not in {str(m).upper() for m in methods}:
            continue
        if not any(accepts(str(pattern), path) for pattern in route.get("paths") or []):
            continue
        hosts = [str(host) for host in route.get("hosts") or []]
        exact = [host for host in hosts if not host.startswith("*")]
        if hosts and "*" not in hosts and not exact:
            continue  # (only wildcard hosts: no name to send)
        header, prefix = _key_place(document, route)
        host = exact[0] if exact and "*" not in hosts else None
        return Served(name, host, header, prefix)
    return None


def _key_place(document: Mapping[str, Any], route: Mapping[str, Any]) -> tuple[str, str]:
    """The header key-auth reads the key from on ``route`` (its own key-auth, else its
    target's, else the document's), and what goes before the key there."""
    targets = {
        str(item.get("name")): item
        for item in document.get("targets") or []
        if isinstance(item, Mapping)
    }
    target = targets.get(str(route.get("target")), {})
    for holder in (route, target, document):
        plugins = holder.get("plugins")
        config = plugins.get("key-auth") if isinstance(plugins, Mapping) else None
        if isinstance(config, Mapping):
            names = config.get("header_names")
            if names is None or names:
                return str((names or [DEFAULT_KEY_HEADER])[0]), ""
            return ("Authorization", "Bearer ") if config.get("bearer") else ("", "")
    return DEFAULT_KEY_HEADER, ""
