"""One request's dealings with the cache, kept in ``request.ctx``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

from quiver.plugins.proxy_cache.directives import Directives
from quiver.plugins.proxy_cache.entry import Entry

Label = Literal["HIT", "MISS", "EXPIRED", "STALE", "BYPASS", "REVALIDATED"]
LABELS: tuple[Label, ...] = ("HIT", "MISS", "EXPIRED", "STALE", "BYPASS", "REVALIDATED")


class Visit:
    """What the access phase found and the response phases need: the key, the
    stale entry being revalidated, the flight this request leads, and the entry
    being filled from the response body."""

    __slots__ = (
        "__weakref__",
        "body",
        "client_validators",
        "directives",
        "draft",
        "entry",
        "flight",
        "invalidate",
        "key",
        "label",
        "limit",
        "locked",
        "on_complete",
        "path_id",
        "request_time",
        "size",
        "validating",
        "variant_key",
        "writable",
    )

    def __init__(self, label: Label, directives: Directives, key: str = "", path_id: str = ""):
        self.label: Label = label
        self.directives = directives
        self.key = key
        self.path_id = path_id
        self.variant_key = ""  # where the response goes when it has Vary
        self.entry: Entry | None = None  # stored, but not usable as it is
        self.flight: asyncio.Future[Entry | None] | None = None  # led by this request
        self.invalidate = False  # an unsafe method: its success invalidates
        self.validating = False  # the node was asked to validate ``entry``
        self.writable = True  # False once the store failed this request
        self.locked = False  # holds the store's lock on the key (other processes wait)
        self.client_validators: tuple[bytes | None, bytes | None] = (None, None)
        self.request_time = 0.0
        self.draft: Entry | None = None  # to be stored once its body is complete
        self.body: list[bytes] = []
        self.size = 0
        self.limit = 0
        self.on_complete: Callable[[Visit, Entry | None], None] | None = None

    def collect(
        self, draft: Entry, limit: int, on_complete: Callable[[Visit, Entry | None], None]
    ) -> None:
        """Keep the body for ``draft`` as it streams; ``on_complete`` gets the entry,
        or None once it grows past ``limit`` (what was kept is let go at once)."""
        self.draft = draft
        self.limit = limit
        self.on_complete = on_complete

    def receive(self, chunk: bytes, last: bool) -> None:
        """The tap on the response body (see ``PluginRequest.tap_body``)."""
        draft = self.draft
        if draft is None:
            return
        if chunk:
            self.size += len(chunk)
            if self.size > self.limit:
                self._complete(None)
                return
            self.body.append(chunk)
        if last:
            draft.body = b"".join(self.body)
            draft.render()
            self._complete(draft)

    def _complete(self, entry: Entry | None) -> None:
        self.draft = None
        self.body = []
        done = self.on_complete
        self.on_complete = None
        if done is not None:
            done(self, entry)
