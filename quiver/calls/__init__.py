"""The call log: per-request records spooled by the workers, ingested into the store
and read back as calls and analytics.  The data plane never imports it: workers
only append lines to spool files (see quiver.calls.spool)."""

from quiver.calls.ingest import Ingester
from quiver.calls.settings import CallLog

__all__ = ["CallLog", "Ingester"]
