"""Encoded spans in, OTLP/HTTP exports out, on a thread of their own.

The tracing output encodes spans on the worker's writer thread and queues them
here; this thread POSTs them to the collector in batches (``Content-Type:
application/x-protobuf``, https://opentelemetry.io/docs/specs/otlp/#otlphttp): when
a batch is full, else once a second.  A thread of its own because an export waits
for the network, up to ``otlp.timeout`` when the collector is away, and the writer
thread (which the access log shares) must not.

When the queue is full, spans are dropped and counted; an export that fails (no
collector, an error status) loses its batch, counted too, and the next one is
tried as usual.  Warnings say so at most once a minute on ``quiver.tracing``.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from quiver.config.tracing import Otlp
from quiver.observe.otlp import Envelope

log = logging.getLogger("quiver.tracing")

WARN_EVERY = 60.0  # seconds between warnings about lost spans
BATCH = 512  # spans per export, at most
INTERVAL = 1.0  # seconds a span waits for its batch to fill, at most


class SpanExporter:
    """One worker's span exports.  Feed it with :meth:`add` (from the writer thread)."""

    def __init__(
        self,
        otlp: Otlp,
        envelope: Envelope,
        *,
        limit: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = otlp.endpoint
        parts = urlsplit(otlp.endpoint)
        self._https = parts.scheme == "https"
        self._address = (parts.hostname or "", parts.port)
        self._path = parts.path + (f"?{parts.query}" if parts.query else "") or "/"
        self._headers = {"Content-Type": "application/x-protobuf", **otlp.headers}
        self._timeout = otlp.timeout
        self._envelope = envelope
        self.limit = limit
        self._clock = clock
        self.pending: deque[bytes] = deque()
        self.exported = 0
        self.dropped = 0  # the queue was full
        self.failed = 0  # in exports that failed
        self._warned_at = -WARN_EVERY
        self._connection: http.client.HTTPConnection | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def add(self, spans: list[bytes]) -> None:
        """Queue encoded spans for export, dropping what does not fit."""
        pending = self.pending
        room = self.limit - len(pending)
        if len(spans) > room:
            lost = len(spans) - max(room, 0)
            spans = spans[: max(room, 0)]
            self.dropped += lost
            self._warn(
                "span queue full (%d spans): %d spans dropped so far", self.limit, self.dropped
            )
        pending.extend(spans)
        if len(pending) >= BATCH:
            self._wake.set()

    def status(self) -> dict[str, Any]:
        return {
            "to": self.endpoint,
            "queued": len(self.pending),
            "exported": self.exported,
            "dropped": self.dropped,
            "failed": self.failed,
        }

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="quiver-tracing", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Export what is queued (until an export fails), then stop the thread."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self._timeout * (len(self.pending) // BATCH + 2))
            self._thread = None

    # -- on the exporter's thread -----------------------------------------------------

    def _run(self) -> None:
        pending = self.pending
        while True:
            self._wake.wait(INTERVAL)
            self._wake.clear()
            while pending:
                batch = [pending.popleft() for _ in range(min(BATCH, len(pending)))]
                if not self._export(batch) and self._stopping:
                    self.failed += len(pending)  # no collector to wait for on the way out
                    pending.clear()
            if self._stopping:
                self._disconnect()
                return

    def _export(self, spans: list[bytes]) -> bool:
        """POST one batch; False when it was lost."""
        body = self._envelope.request(spans)
        try:
            connection = self._connection or self._connect()
            connection.request("POST", self._path, body, self._headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._disconnect()
            return self._lost(spans, str(exc) or type(exc).__name__)
        if response.will_close:
            self._disconnect()
        if 200 <= response.status < 300:
            self.exported += len(spans)
            return True
        return self._lost(spans, f"{response.status} {response.reason}")

    def _lost(self, spans: list[bytes], why: str) -> bool:
        self.failed += len(spans)
        self._warn("spans not exported to %s (%d lost so far): %s", self.endpoint, self.failed, why)
        return False

    def _connect(self) -> http.client.HTTPConnection:
        host, port = self._address
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        self._connection = kind(host, port, timeout=self._timeout)
        return self._connection

    def _disconnect(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _warn(self, message: str, *args: object) -> None:
        now = self._clock()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            log.warning(message, *args)
