"""What a limit is counted by: the ``by`` setting of the traffic-control plugins.

``by`` names one of ``consumer``, ``credential``, ``ip``, ``route``, ``path`` or
``header:<name>``, or a list of them counted together (``[consumer, path]``: each
consumer has its own allowance on each path).  A request without what ``by``
names (no consumer yet, no such header) is counted by its client address, as Kong
does, so a missing header cannot be used to slip past a limit.

Keys start with the plugin's scope (where its config is attached: globally, on a
target, on a route or on a consumer), so a limit on one route never counts the
requests of another, while a global one counts them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from quiver.http.normalize import normalize_path
from quiver.plugins.base import PluginRequest
from quiver.plugins.ip_restriction import NetworkSet, parse_address, parse_network

SIMPLE = ("consumer", "credential", "ip", "route", "path")
_SEPARATOR = b"\x1f"
_PATHS = 4096  # normalized paths remembered per plugin
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _checked(text: str) -> str:
    if text in SIMPLE:
        return text
    name = text.removeprefix("header:")
    if (
        name != text
        and name
        and all(33 <= ord(c) < 127 and c not in '()<>@,;:\\"/[]?={}' for c in name)
    ):
        return text
    raise ValueError(f"{text!r}: use consumer, credential, ip, route, path or header:<name>")


def _listed(value: object) -> object:
    return [value] if isinstance(value, str) else value


By = Annotated[
    list[Annotated[str, AfterValidator(_checked)]], BeforeValidator(_listed), Field(min_length=1)
]
"""``by`` as written (one name, or a list of them), as a list."""

Part = Callable[[PluginRequest], bytes | None]


class KeyMaker:
    """Builds the counter key of a request for ``by`` under ``scope``."""

    def __init__(self, scope: str, by: str | Sequence[str], trusted_proxies: Sequence[str]) -> None:
        self.prefix = scope.encode() + _SEPARATOR
        self.trusted = NetworkSet(map(parse_network, trusted_proxies))
        self.has_trusted = bool(trusted_proxies)
        self._paths: dict[bytes, bytes] = {}
        self.parts: tuple[Part, ...] = tuple(
            self._part(item) for item in ([by] if isinstance(by, str) else by)
        )
        #: by consumer alone: each consumer's key, made once (consumers are few and
        #: come from the config)
        self.per_consumer: dict[str, bytes] | None = {} if self.parts == (_consumer,) else None

    def __call__(self, request: PluginRequest) -> bytes:
        known = self.per_consumer
        if known is not None and (consumer := request.consumer) is not None:
            key = known.get(consumer.name)
            if key is None:
                key = known[consumer.name] = self._join([_consumer(request)])
            return key
        values = []
        for part in self.parts:
            value = part(request)
            values.append(value if value is not None else b"ip=" + self.client_ip(request))
        return self._join(values)

    def _join(self, values: Sequence[bytes | None]) -> bytes:
        return _SEPARATOR.join([self.prefix, *(value or b"" for value in values)])

    def _part(self, item: str) -> Part:
        if item == "consumer":
            return _consumer
        if item == "credential":
            return _credential
        if item == "ip":
            return lambda request: b"ip=" + self.client_ip(request)
        if item == "route":
            return lambda request: b"route"  # the scope names it
        if item == "path":
            return self._path
        header = item.removeprefix("header:").lower().encode()

        def by_header(request: PluginRequest) -> bytes | None:
            value = request.get(header)
            return None if value is None else b"h=" + value

        return by_header

    def _path(self, request: PluginRequest) -> bytes:
        raw = request.raw_path
        known = self._paths.get(raw)
        if known is None:
            if len(self._paths) >= _PATHS:
                self._paths.clear()
            # (a path that does not normalize never reached a route: keep it as sent)
            known = self._paths[raw] = b"path=" + (normalize_path(raw) or raw)
        return known

    def client_ip(self, request: PluginRequest) -> bytes:
        """The client's address: the peer, or, when the peer is a trusted proxy, the
        first address from the right of X-Forwarded-For that is not a trusted proxy
        (the last trusted one when the walk runs out or meets something else)."""
        client = request.client_ip
        if not self.has_trusted or not self._is_trusted(client):
            return client
        forwarded = request.get(b"x-forwarded-for")
        if forwarded:
            for entry in reversed(forwarded.split(b",")):
                hop = entry.strip(b" \t")
                if parse_address(hop) is None:
                    break
                client = hop
                if not self._is_trusted(hop):
                    break
        return client

    def _is_trusted(self, text: bytes) -> bool:
        address = parse_address(text)
        return address is not None and address in self.trusted


def _consumer(request: PluginRequest) -> bytes | None:
    consumer = request.consumer
    return None if consumer is None else b"consumer=" + consumer.name.encode()


def _credential(request: PluginRequest) -> bytes | None:
    credential = request.credential
    if credential is not None:
        return b"credential=" + credential
    return _consumer(request)
