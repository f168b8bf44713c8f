"""Settings of the connections the gateway opens to upstream nodes, and the name
pattern entities share (apart from the models so that sections such as ``ai`` can
build on them without importing the whole declaration)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field

from quiver.config.base import Duration, Strict

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class Timeouts(Strict):
    connect: Duration = Field(5.0, gt=0, description="Connecting (and TLS handshake) to a node.")
    read: Duration = Field(60.0, gt=0, description="Longest wait between two reads from a node.")
    write: Duration = Field(60.0, gt=0, description="Longest stall writing a request to a node.")
    tunnel_idle: Duration = Field(
        3600.0,
        gt=0,
        description="An Upgrade tunnel (WebSocket) is closed after this long without bytes "
        "in either direction; replaces `read` once the node switched protocols.",
    )


class Pool(Strict):
    max_idle: int = Field(64, ge=0, description="Idle keep-alive connections kept per node.")
    idle_timeout: Duration = Field(
        30.0, gt=0, description="An idle pooled connection is closed after this."
    )
    max_requests: int = Field(
        0, ge=0, description="Requests sent on one connection before it is retired; 0: no limit."
    )
    max_connections: int = Field(
        0, ge=0, description="Open connections per node; 0: no limit. Beyond it, 503."
    )


def check_target_url(value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"URL must start with http:// or https://, got {value!r}")
    if not parts.hostname:
        raise ValueError(f"URL has no host: {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"target URL may not carry a query or fragment: {value!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"bad port in {value!r}") from exc
