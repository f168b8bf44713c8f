"""Export requests in, OTLP/HTTP exports out, on a thread of their own.

The tracing output makes an export request of each write's spans on the worker's
writer thread and queues it here, serialized; this thread POSTs them to the
collector (``Content-Type: application/x-protobuf``,
https://opentelemetry.io/docs/specs/otlp/#otlphttp), the requests that queued up
together as one body of about a batch of spans (:mod:`quiver.observe.otlp`): when
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

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from quiver.config.tracing import Otlp
from quiver.observe.otlp import Spans
from quiver.observe.warnings import SparseWarnings

log = logging.getLogger("quiver.tracing")

BATCH = 512  # spans per export, about: the requests queued are sent whole
INTERVAL = 1.0  # seconds a span waits for its batch to fill, at most


class SpanExporter:
    """One worker's span exports.  Feed it with :meth:`add` (from the writer thread)."""

    def __init__(
        self,
        otlp: Otlp,
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
        self.limit = limit
        #: serialized requests waiting, with their span counts
        self.pending: deque[tuple[bytes, int]] = deque()
        self.queued = 0  # spans in ``pending`` (changed under ``_lock``)
        self._lock = threading.Lock()
        self.exported = 0
        self.dropped = 0  # the queue was full
        self.failed = 0  # in exports that failed
        self._warnings = SparseWarnings(log, clock)
        self._connection: http.client.HTTPConnection | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def add(self, request: ExportTraceServiceRequest, spans: Spans) -> None:
        """Queue ``request`` for export (``spans``: where its spans are), dropping the
        spans that do not fit."""
        room = self.limit - self.queued
        if len(spans) > room:
            lost = len(spans) - max(room, 0)
            del spans[max(room, 0) :]
            self.dropped += lost
            self._warnings.warn(
                "spans",
                "span queue full (%d spans): %d spans dropped so far",
                self.limit,
                self.dropped,
            )
        if not spans:
            return
        body = request.SerializeToString()
        with self._lock:
            self.pending.append((body, len(spans)))
            self.queued += len(spans)
        if self.queued >= BATCH:
            self._wake.set()

    def status(self) -> dict[str, Any]:
        return {
            "to": self.endpoint,
            "queued": self.queued,
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
            self._thread.join(self._timeout * (self.queued // BATCH + 2))
            self._thread = None

    # -- on the exporter's thread -----------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(INTERVAL)
            self._wake.clear()
            while self.pending:
                bodies, spans = self._take()
                if not self._export(bodies, spans) and self._stopping:
                    # no collector to wait for on the way out
                    self.failed += self._take(self.queued)[1]
            if self._stopping:
                self._disconnect()
                return

    def _take(self, spans: int = BATCH) -> tuple[list[bytes], int]:
        """The requests queued first, up to about ``spans`` spans, and their span count."""
        bodies: list[bytes] = []
        taken = 0
        with self._lock:
            while self.pending and taken < spans:
                body, count = self.pending.popleft()
                bodies.append(body)
                taken += count
            self.queued -= taken
        return bodies, taken

    def _export(self, bodies: list[bytes], spans: int) -> bool:
        """POST the requests as one body; False when they were lost."""
        try:
            connection = self._connection or self._connect()
            connection.request("POST", self._path, b"".join(bodies), self._headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._disconnect()
            return self._lost(spans, str(exc) or type(exc).__name__)
        if response.will_close:
            self._disconnect()
        if 200 <= response.status < 300:
            self.exported += spans
            return True
        return self._lost(spans, f"{response.status} {response.reason}")

    def _lost(self, spans: int, why: str) -> bool:
        self.failed += spans
        self._warnings.warn(
            "spans",
            "spans not exported to %s (%d lost so far): %s",
            self.endpoint,
            self.failed,
            why,
        )
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
