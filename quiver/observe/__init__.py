"""Observability: what the gateway tells about the exchanges it served.

The data plane fills one :class:`~quiver.observe.record.ExchangeRecord` per
exchange when it ends and queues it on the worker's record writer
(:mod:`quiver.observe.writer`), which hands it to each output on a thread of its
own, off the hot path: the access log (:mod:`quiver.observe.access_log`), the call
spool the admin sidecar ingests (:mod:`quiver.observe.call_spool`); metrics and
tracing are to be outputs too (:mod:`quiver.observe.outputs`).  This package sits
below the proxy: it imports only the config and the errors, never the proxy, the
store or the admin API.
"""
