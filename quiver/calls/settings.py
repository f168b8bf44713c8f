"""What the ingester keeps, as plain values (the config model is
quiver.config.models.CallLogSettings; this package does not depend on its shape)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallLog:
    #: raw call rows older than this (seconds) are deleted
    retention: float = 7 * 86400
    #: at most this many raw call rows are kept (the oldest go first)
    max_rows: int = 1_000_000
    #: per-minute rollups older than this (seconds) are deleted
    rollup_retention: float = 90 * 86400
    #: most rows read from spools and written in one transaction
    batch_rows: int = 5000
    #: most rows one retention DELETE removes (each chunk is its own transaction)
    delete_chunk: int = 10_000
