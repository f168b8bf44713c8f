"""Health of the nodes of a target: passive ejection, active probes, and ``node.up``.

``watch_nodes`` sets it all up for one target from its config::

    checker = watch_nodes(target_nodes, loop, target.health_check, target.circuit_breaker)
    if checker is not None:
        checker.start()           # and checker.stop() when the target goes away

After that each configured node carries a ``NodeHealth`` in ``node.health`` (and its
``CircuitBreaker`` in ``node.breaker``), which alone writes ``node.up``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from quiver.config.resilience import CircuitBreaker as BreakerSettings
from quiver.config.resilience import HealthCheck
from quiver.proxy.health.active import (
    ActiveHealth,
    ActiveHealthChecker,
    ActiveSnapshot,
    ProbeFailed,
)
from quiver.proxy.health.node import NodeHealth, NodeHealthSnapshot
from quiver.proxy.health.passive import Outcome, PassiveHealth, PassiveSnapshot

if TYPE_CHECKING:
    from quiver.proxy.upstream import Node

__all__ = [
    "ActiveHealth",
    "ActiveHealthChecker",
    "ActiveSnapshot",
    "NodeHealth",
    "NodeHealthSnapshot",
    "Outcome",
    "PassiveHealth",
    "PassiveSnapshot",
    "ProbeFailed",
    "watch_nodes",
]


def watch_nodes(
    nodes: Sequence[Node],
    loop: asyncio.AbstractEventLoop,
    health_check: HealthCheck | None,
    breaker: BreakerSettings | None,
) -> ActiveHealthChecker | None:
    """Give each node its NodeHealth from the target's settings.

    Nodes get one only when passive checks, active checks or a breaker are on.
    Returns the active checker when the target has active checks; the caller
    starts it once the loop runs.
    """
    passive = health_check.passive if health_check is not None else None
    if passive is not None or breaker is not None:
        for node in nodes:
            NodeHealth(node, loop, passive=passive, breaker=breaker)
    if health_check is None or health_check.active is None:
        return None
    return ActiveHealthChecker(nodes, health_check.active, loop)
