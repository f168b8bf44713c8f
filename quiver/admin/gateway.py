"""Where the admin process reaches the gateway it runs beside.

The admin API runs in a child of the master process, which reserved the proxy's
listening sockets before it forked it: the master hands the addresses they are
bound to (ports known, also when the config says port 0) to the child, which makes
a :class:`Gateway` of them (:func:`gateway_at`), unless ``portal.gateway_url`` says
where the gateway is reached.  The developer portal's "Try it" sends its requests
there, through the gateway like any client's.  An admin process started on its own
(``run_admin`` without one) knows no gateway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: a wildcard listen address, and the loopback address it is reached on
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True)
class Gateway:
    """The gateway's base URL (no trailing slash) and how to reach it."""

    url: str
    #: check the gateway's TLS certificate (off for this node's own listener reached
    #: by its address, whose certificate names the gateway's public name instead)
    verify: bool = True
    timeout: float = 10.0  # seconds for a whole exchange


@dataclass(frozen=True)
class Listening:
    """One address the proxy accepts on."""

    host: str
    port: int
    tls: bool


def gateway_at(listening: Sequence[Listening], url: str | None = None) -> Gateway | None:
    """The gateway at ``url`` when given, else at the first plain address of
    ``listening`` (else its first address with TLS); None without any."""
    if url is not None:
        return Gateway(url.rstrip("/"))
    ordered = sorted(listening, key=lambda address: address.tls)  # (stable: plain first)
    if not ordered:
        return None
    chosen = ordered[0]
    host = _WILDCARDS.get(chosen.host, chosen.host)
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if chosen.tls else "http"
    return Gateway(f"{scheme}://{shown}:{chosen.port}", verify=not chosen.tls)
