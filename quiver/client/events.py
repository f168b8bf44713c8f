"""Structured events: what the client decided, for logs, metrics or tests.

A hook is any callable taking a :class:`ClientEvent`.  The default one logs to
the ``quiver.client`` logger with the event's name and fields in ``extra``, so a
JSON log formatter gets them as keys.  A hook of your own::

    def count_retries(event: ClientEvent) -> None:
        if event.name == "retry":
            RETRIES.labels(event.fields["host"]).inc()

    client = AsyncClient(base_url, on_event=count_retries)

Events: ``request`` (DEBUG), ``retry`` (WARNING), ``wait`` (INFO: the rate limiter
or a server's quota holds a request), ``breaker`` (WARNING: a host's breaker
changed state), ``paginator`` (INFO: what auto-detection chose), ``token``
(INFO: an OAuth2 token was obtained).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ClientEvent:
    name: str
    level: int
    message: str
    fields: Mapping[str, Any] = field(default_factory=dict)


EventHook = Callable[[ClientEvent], None]


def logging_hook(logger: logging.Logger | None = None) -> EventHook:
    """A hook writing each event to ``logger`` (``quiver.client`` by default)."""
    log = logger if logger is not None else logging.getLogger("quiver.client")

    def hook(event: ClientEvent) -> None:
        if log.isEnabledFor(event.level):
            extra = {"event": event.name, "fields": dict(event.fields)}
            log.log(event.level, "%s", event.message, extra=extra)

    return hook
