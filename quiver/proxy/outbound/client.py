"""The outbound client: a pool per origin for plain URLs, a target's nodes for
``target://``, the worker's own listener for ``gateway://``."""

from __future__ import annotations

import asyncio
import ssl
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from quiver.config.models import Pool, Timeouts
from quiver.errors import HTTPError, ServiceUnavailable
from quiver.proxy.outbound.response import Response
from quiver.proxy.outbound.wire import header_block, request_head, send_to_node
from quiver.proxy.plain import plain
from quiver.proxy.sweeper import Sweeper
from quiver.proxy.tls import client_context
from quiver.proxy.upstream import Node, NodePool

if TYPE_CHECKING:
    from quiver.proxy.snapshot import TargetRuntime

#: a target request tries at most this many nodes when it cannot reach one
_MAX_TRIES = 3


class OutboundClient:
    """Sends the requests of one worker; implements :class:`quiver.plugins.outbound.Outbound`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sweeper: Sweeper,
        *,
        targets: Callable[[], Mapping[str, TargetRuntime]] | None = None,
        pool: Pool | None = None,
        timeouts: Timeouts | None = None,
        max_origins: int = 64,
    ) -> None:
        self.loop = loop
        self.sweeper = sweeper
        self.targets = targets
        self.pool_settings = plain(pool or Pool(max_idle=8))
        self.timeouts = plain(timeouts or Timeouts())
        self.max_origins = max_origins
        #: a node with its pool per origin, least recently used first
        self.origins: OrderedDict[tuple[str, str, int, str | None], Node] = OrderedDict()
        self._contexts: dict[str | None, ssl.SSLContext] = {}
        #: where ``gateway://`` requests go: the gateway's own first listener, once
        #: it listens (``listening``)
        self._gateway: Node | None = None
        self.closed = False

    def listening(self, host: str, port: int, tls: bool) -> None:
        """The gateway accepts on ``host:port``: ``gateway://`` requests go there (on
        loopback when it listens on every address)."""
        if self._gateway is not None:
            return
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        context = None
        if tls:  # its own certificate, on its own address: nothing to verify
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["http/1.1"])
        node = Node(
            host, port, weight=1, ssl_context=context, server_hostname=None, default_port=port
        )
        node.pool = NodePool(node, self.pool_settings, self.timeouts, self.loop, self.sweeper)
        self._gateway = node

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
    ) -> Response:
        if self.closed:
            raise ServiceUnavailable("the worker is shutting down")
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not path.isascii() or not path.isprintable() or " " in path:
            raise ValueError(f"{url!r} is not a URL of printable ASCII")
        block = header_block(method, headers, body)
        if parts.scheme == "target":
            return await self._to_target(
                method, parts.netloc, path.encode(), headers, block, timeout, idempotent
            )
        if parts.scheme == "gateway":
            return await self._to_gateway(
                method, parts.netloc, path.encode(), block, timeout, idempotent
            )
        node = self._origin(parts.scheme, parts.hostname, parts.port, ca_file, url)
        head = request_head(method, path.encode(), node, block)
        return await send_to_node(
            node, method, loop=self.loop, head=head, timeout=timeout, retry_stale=idempotent
        )

    async def _to_gateway(
        self,
        method: str,
        host: str,
        path: bytes,
        block: bytes,
        timeout: float | None,
        idempotent: bool | None,
    ) -> Response:
        """Send through the gateway itself, as a client would: routed, every plugin
        of the route run; ``host`` is the Host field routes see."""
        node = self._gateway
        if node is None:
            raise ServiceUnavailable("the gateway is not listening yet")
        if not host or not host.isprintable():
            raise ValueError("a gateway:// URL names the Host to send: gateway://HOST/path")
        head = b"".join(
            (
                method.encode("ascii"),
                b" ",
                path,
                b" HTTP/1.1\r\nHost: ",
                host.encode(),
                b"\r\n",
                block,
            )
        )
        return await send_to_node(
            node, method, loop=self.loop, head=head, timeout=timeout, retry_stale=idempotent
        )

    def close(self) -> None:
        """Close every origin's idle connections; busy ones close when their request ends."""
        self.closed = True
        if self._gateway is not None and self._gateway.pool is not None:
            self._gateway.pool.close()
        while self.origins:
            _, node = self.origins.popitem()
            assert node.pool is not None
            node.pool.close()

    def _origin(
        self, scheme: str, host: str | None, port: int | None, ca_file: str | None, url: str
    ) -> Node:
        if scheme not in ("http", "https") or not host:
            raise ValueError(f"{url!r} is not an http://, https://, target:// or gateway:// URL")
        https = scheme == "https"
        default_port = 443 if https else 80
        port = port or default_port
        key = (scheme, host, port, ca_file)
        node = self.origins.get(key)
        if node is not None:
            self.origins.move_to_end(key)
            return node
        context = None
        if https:
            context = self._contexts.get(ca_file)
            if context is None:
                context = self._contexts[ca_file] = client_context(ca_file)
        node = Node(
            host,
            port,
            weight=1,
            ssl_context=context,
            server_hostname=host if https else None,
            default_port=default_port,
        )
        node.pool = NodePool(node, self.pool_settings, self.timeouts, self.loop, self.sweeper)
        self.origins[key] = node
        while len(self.origins) > self.max_origins:
            _, dropped = self.origins.popitem(last=False)
            assert dropped.pool is not None
            dropped.pool.close()
        return node

    async def _to_target(
        self,
        method: str,
        name: str,
        path: bytes,
        headers: Mapping[str, str] | None,
        block: bytes,
        timeout: float | None,
        idempotent: bool | None,
    ) -> Response:
        """Send to a node the target chooses (as for a proxied request: balancer, panic
        routing when every node is out, breaker admission); a node that could not
        be reached is traded for another one."""
        target = self.targets().get(name) if self.targets is not None else None
        if target is None:
            raise ValueError(f"no target named {name!r}")
        path = target.base_path + path
        keys = _RequestKeys(path, headers)
        tries = min(len(target.nodes), _MAX_TRIES)
        avoid: Node | None = None
        deadline = self.loop.time() + timeout if timeout is not None else None
        for attempt in range(1, tries + 1):
            node = target.choose(keys, avoid, self.loop.time())
            if node is None:
                break
            head = request_head(method, path, node, block)
            try:
                return await send_to_node(
                    node,
                    method,
                    loop=self.loop,
                    head=head,
                    timeout=timeout,
                    retry_stale=idempotent,
                    target=target,
                    deadline=deadline,
                )
            except HTTPError as exc:
                # nothing reached the node: another one may take the request
                if not exc.retryable or attempt >= tries:
                    raise
                avoid = node
        raise ServiceUnavailable(f"target {name!r} has no healthy node")


class _RequestKeys:
    """What a balancer reads of a request (``quiver.proxy.balancing.RequestKeys``)."""

    __slots__ = ("fields", "raw_path")
    peer = b""  # the gateway itself is the client

    def __init__(self, raw_path: bytes, fields: Mapping[str, str] | None) -> None:
        self.raw_path = raw_path
        self.fields = fields or {}

    @property
    def client(self) -> _RequestKeys:
        return self

    def get(self, name: bytes) -> bytes | None:
        wanted = name.decode("latin-1")
        for field, value in self.fields.items():
            if field.lower() == wanted:
                return value.encode("latin-1")
        return None
