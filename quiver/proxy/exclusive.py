"""Refusing to share a listening address by accident.

Workers bind their addresses with SO_REUSEPORT so that the workers of one
master, and an old and a new server during a restart, can share them: the
kernel spreads new connections over every socket in the group.  It admits any
process of the same user to that group, so a second ``quiver serve`` started by
mistake on the same address would silently take a share of the traffic.
``quiver serve`` therefore checks first that nothing listens on its addresses,
unless ``--takeover`` says the sharing is a deliberate handover
(docs/resilience.md).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

from quiver.config.models import Listen, split_address


def in_use(address: str) -> bool:
    """Whether a socket listens on ``address`` (port 0 is never in use)."""
    host, port = split_address(address)
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Without SO_REUSEPORT the probe conflicts with any listener on the address;
        # SO_REUSEADDR keeps the connections a stopped server left in TIME_WAIT out
        # of the way.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def first_taken(listen: Iterable[Listen]) -> str | None:
    """The first of the ``listen`` addresses that something listens on, if any."""
    for spec in listen:
        if in_use(spec.address):
            return spec.address
    return None


def refuse_taken(addresses: Iterable[Listen], *, takeover: bool) -> None:
    """SystemExit naming the first of ``addresses`` something listens on, and what to
    do about it; nothing with ``--takeover`` (the sharing is the point then)."""
    if takeover:
        return
    taken = first_taken(addresses)
    if taken is not None:
        raise SystemExit(
            f"quiver: cannot listen on {taken}: Address already in use (by another "
            "`quiver serve`, or another program). To replace a running `quiver serve` "
            "without downtime, start the new one with --takeover, then send SIGTERM "
            "to the old one."
        )
