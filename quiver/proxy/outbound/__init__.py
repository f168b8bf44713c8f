"""The gateway's own HTTP client, over the same pools as proxied traffic.

Every request Quiver makes on its own behalf (a JWK Set, a token introspection, a
health probe) goes through :class:`OutboundClient`, one per worker, which plugins
receive as ``PluginContext.outbound`` (see :mod:`quiver.plugins.outbound`)::

    client = OutboundClient(loop, sweeper, targets=lambda: state.snapshot.targets)
    response = await client.request("GET", "https://idp.example/jwks", timeout=5)
    keys = await response.read(limit=1 << 20)
    async with await client.request("POST", "target://billing/events", body=b"{}") as r:
        async for chunk in r.stream():
            ...

A plain URL is sent over a keep-alive pool for its origin (scheme, host, port and
CA file), made when first needed; the least recently used origin is dropped past
``max_origins``.  ``target://NAME/path`` goes to a target of the live config and
its node is chosen as for a proxied request (``TargetRuntime.choose``): its
balancer picks, its nodes are tried anyway when health checks ejected them all,
its breakers admit, the outcome feeds its health checks, and a node that cannot
be reached is traded for another one.  Every failure is a
:class:`~quiver.errors.GatewayError`, never an ``OSError`` or a parser error, and
tells clients the target's name, never a node's address.

- :mod:`.client`: :class:`OutboundClient`, origins and targets
- :mod:`.wire`: the request as written, and sending it over a node's pool
- :mod:`.response`: :class:`Response`, what the pooled connection calls back
- :mod:`.admission`: the one outcome a try on a target's node owes its breaker
- :mod:`.carried`: what every outbound request is alike to a pooled connection
"""

from quiver.proxy.outbound.client import OutboundClient
from quiver.proxy.outbound.response import Response
from quiver.proxy.outbound.wire import send_to_node

__all__ = ["OutboundClient", "Response", "send_to_node"]
