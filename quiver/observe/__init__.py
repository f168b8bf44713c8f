"""Observability: what the gateway tells about the exchanges it served.

The data plane fills one :class:`~quiver.observe.record.ExchangeRecord` per
exchange when it ends; the access log (:mod:`quiver.observe.access_log`) formats
and writes those records off the hot path.  The call-log store, metrics and
tracing are to read the same records.  This package sits below the proxy: it
imports only the config and the errors, never the proxy, the store or the admin API.
"""
