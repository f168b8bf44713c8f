"""Mapping the URLs a node puts in its response head back to the client's view.

A node knows itself by its own address and paths; the client knows it through the
gateway.  ``Location`` (RFC 9110 §10.2.2), ``Content-Location`` (§8.7) and the
``Path`` attribute of ``Set-Cookie`` (RFC 6265 §5.2.4) are rewritten so a redirect
never sends a client around the gateway, as nginx's ``proxy_redirect default`` and
``proxy_cookie_path`` do.

With ``redirects: auto`` (the default):

- a URL on the node's own origin (``http://10.0.0.5:9001/x``) loses the origin and
  becomes a path on the gateway (``/x``, a relative reference the client resolves
  against the URL it asked for);
- a path under what the gateway put in front of the client's path (the target's
  base path, a rewrite) is mapped back under what the client sent: with
  ``strip_path`` on ``/api``, the node's ``/login`` becomes ``/api/login``.

The two prefixes are read off each request: the client's path and the path sent
upstream share a tail; what comes before it differs.  A list of ``{from, to}`` rules
replaces the automatic mapping: the first rule whose ``from`` starts the value
rewrites it.  ``redirects: off`` leaves every field as the node sent it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PATH_FIELD = re.compile(
    rb"\r\n(location|content-location|set-cookie)([ \t]*:[ \t]*)([^\r]*)", re.I
)
_COOKIE_PATH = re.compile(rb"(;[ \t]*path[ \t]*=[ \t]*)([^;]*)", re.I)


class Redirects:
    """The rewriting of one route: automatic for its nodes' origins, or explicit rules."""

    __slots__ = ("origins", "rules")

    def __init__(
        self, origins: Iterable[bytes] = (), rules: Iterable[tuple[bytes, bytes]] | None = None
    ) -> None:
        #: the nodes' own origins, longest first, e.g. b"http://127.0.0.1:9001"
        self.origins = tuple(sorted(set(origins), key=len, reverse=True))
        self.rules = tuple(rules) if rules is not None else None

    @staticmethod
    def concerns(raw: bytes) -> bool:
        """Whether the head ``raw`` has a field this rewriting may change."""
        return _PATH_FIELD.search(raw) is not None

    def apply(self, raw: bytes, client_path: bytes, upstream_path: bytes) -> bytes:
        """``raw`` (a response head) with its URL-bearing fields rewritten."""
        rules: Iterable[tuple[bytes, bytes]]
        if self.rules is not None:
            rules = self.rules
        else:
            rules = self._automatic(client_path, upstream_path)

        def rewrite(match: re.Match[bytes]) -> bytes:
            name, sep, value = match.groups()
            if name.lower() == b"set-cookie":
                value = _COOKIE_PATH.sub(lambda m: m.group(1) + _mapped(m.group(2), rules), value)
            else:
                value = _mapped(value, rules)
            return b"\r\n" + name + sep + value

        return _PATH_FIELD.sub(rewrite, raw)

    def _automatic(self, client_path: bytes, upstream_path: bytes) -> list[tuple[bytes, bytes]]:
        client_prefix, upstream_prefix = _prefixes(client_path, upstream_path.partition(b"?")[0])
        rules = [(origin + upstream_prefix, client_prefix) for origin in self.origins]
        rules += [(origin, b"") for origin in self.origins]
        if client_prefix != upstream_prefix:
            rules.append((upstream_prefix, client_prefix))
        return rules


def _mapped(value: bytes, rules: Iterable[tuple[bytes, bytes]]) -> bytes:
    for old, new in rules:
        if value.startswith(old):
            rest = value[len(old) :]
            if rest[:2] == b"//":
                continue  # a network-path reference: another host
            if old.endswith(b"/") or not rest or rest[:1] in (b"/", b"?", b"#"):
                if not new and not rest.startswith(b"/"):
                    rest = b"/" + rest  # the origin alone: the gateway's root
                return new + rest
    return value


def _prefixes(client: bytes, upstream: bytes) -> tuple[bytes, bytes]:
    """What precedes the tail the two paths share, on segment boundaries:
    ``/api/users/1`` and ``/v1/users/1`` give ``(b"/api", b"/v1")``."""
    client_parts = client.split(b"/")
    upstream_parts = upstream.split(b"/")
    shared = 0
    limit = min(len(client_parts), len(upstream_parts)) - 1  # (both start with "")
    while shared < limit and client_parts[-1 - shared] == upstream_parts[-1 - shared]:
        shared += 1
    client_prefix = b"/".join(client_parts[: len(client_parts) - shared])
    upstream_prefix = b"/".join(upstream_parts[: len(upstream_parts) - shared])
    return client_prefix.rstrip(b"/"), upstream_prefix.rstrip(b"/")
