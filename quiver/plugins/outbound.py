"""The HTTP client a plugin may use for requests of its own (key sets, introspection, ...).

Plugins do not build HTTP clients: the proxy hands one to every plugin in
``PluginContext.outbound``.  It sends over the same keep-alive pools, TLS settings
and timeouts as proxied traffic, and maps every failure to a
:class:`~quiver.errors.GatewayError` (``BadGateway``, ``GatewayTimeout``, ...)::

    async def fetch_keys(self) -> bytes:
        outbound = self.context.outbound
        if outbound is None:
            raise ServiceUnavailable("no outbound client")
        response = await outbound.request(
            "GET", "https://idp.example/jwks", headers={"Accept": "application/json"}, timeout=5
        )
        if response.status != 200:
            response.close()
            raise BadGateway(f"the key server answered {response.status}")
        return await response.read(limit=1 << 20)

``url`` is an ``http://`` or ``https://`` URL (its connections are pooled by origin),
or ``target://NAME/path`` to send to a target of the config through its balancer,
health checks and circuit breakers, or ``gateway://HOST/path`` to send through the
gateway itself (its own listener, ``HOST`` sent as the Host field): routed like a
client's request, every plugin of the route applied (how an MCP tool call reaches
the API it stands for).  A response holds its connection until its body
has been read to the end or it is closed: read it, stream it, or use it as an
``async with`` block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Protocol, Self


class OutboundResponse(Protocol):
    """A response whose body has not necessarily arrived yet."""

    @property
    def status(self) -> int:
        """The final status code (interim 1xx responses are skipped)."""
        ...

    @property
    def headers(self) -> Sequence[tuple[str, str]]:
        """Every field of the head in order, names as the server sent them (latin-1)."""
        ...

    def header(self, name: str) -> str | None:
        """The value of field ``name`` (any case); repeated fields joined by ", "."""
        ...

    def stream(self) -> AsyncIterator[bytes]:
        """The body as it arrives, decoded from chunked framing."""
        ...

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body; BadGateway (and the connection dropped) past ``limit`` bytes."""
        ...

    def close(self) -> None:
        """Give up the rest of the body; the connection is dropped unless it was read."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class Outbound(Protocol):
    """Sends HTTP/1.1 requests on behalf of the gateway itself."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        timeout: float | None = None,
        ca_file: str | None = None,
        idempotent: bool | None = None,
    ) -> OutboundResponse:
        """Send a request; the response once its head has arrived.

        ``timeout`` bounds the whole exchange in seconds (connecting, the head, and
        the body as it is read); without it only the pool's connect and read
        timeouts apply.  ``ca_file`` names the CAs an https URL's certificate must
        chain to (default: the system store).  A request is sent again on a fresh
        connection when a pooled one turns out closed, if it is idempotent (by its
        method, unless ``idempotent`` says otherwise).
        """
        ...


class Fields(Mapping[str, str]):
    """Request header fields a caller sends unchanged on many requests (an AI
    provider's key, say), given as ``headers``: the outbound client checks and
    encodes them on the first request and keeps the result (in ``encoded``), which
    is why they cannot be changed."""

    __slots__ = ("_fields", "encoded")

    def __init__(self, fields: Mapping[str, str]) -> None:
        self._fields = dict(fields)
        #: the client's encoding of the fields, once it made it
        self.encoded: bytes | None = None

    def __getitem__(self, name: str) -> str:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Fields({self._fields!r})"
