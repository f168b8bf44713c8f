"""The record of one exchange: what every observer of the traffic reads.

The proxy makes one when an exchange ends (answered, refused, failed, cut off or
upgraded), in its log step, after the response is out: nothing of it is built
while the request is in flight except a few numbers the exchange keeps anyway.
Values read off the wire stay bytes here (decoding is left to whoever formats
them, off the event loop); names from the config are str.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quiver.http.tracecontext import TraceContext
    from quiver.observe.capture import Capture


class ExchangeRecord:
    """One exchange, as an access log line, a call-log row or a metric sees it."""

    __slots__ = (
        "ai",
        "answered_by",
        "bytes_in",
        "bytes_out",
        "cache",
        "capture",
        "client_ip",
        "consumer",
        "gateway_ms",
        "latency_ms",
        "mcp",
        "method",
        "node",
        "path",
        "plan",
        "request_id",
        "retries",
        "route",
        "status",
        "target",
        "time",
        "trace",
        "upstream_ms",
        "user_agent",
        "websocket",
    )

    def __init__(  # (positional in this order on the busy path: cheaper than keywords)
        self,
        time: float,
        request_id: bytes,
        client_ip: bytes,
        method: bytes,
        path: bytes,
        status: int,
        route: str | None = None,
        target: str | None = None,
        node: str | None = None,
        consumer: str | None = None,
        bytes_in: int = 0,
        bytes_out: int = 0,
        latency_ms: float = 0.0,
        upstream_ms: float | None = None,
        retries: int = 0,
        cache: str | None = None,
        answered_by: str | None = None,
        user_agent: bytes | None = None,
        capture: Capture | None = None,
        trace: TraceContext | None = None,
        ai: dict[str, Any] | None = None,
        mcp: dict[str, Any] | None = None,
        websocket: dict[str, Any] | None = None,
        plan: str | None = None,
    ) -> None:
        #: when the request head was complete (seconds since the epoch)
        self.time = time
        self.request_id = request_id
        self.client_ip = client_ip
        self.method = method
        #: as the client sent it (before normalization), with the query if configured
        self.path = path
        #: as the client got it: 499 when it left first, 101 for an upgrade
        self.status = status
        self.route = route
        self.target = target
        #: host:port of the node that answered (the last tried), None when none did
        self.node = node
        self.consumer = consumer
        self.bytes_in = bytes_in  # request body bytes read from the client
        self.bytes_out = bytes_out  # response bytes written to the client
        self.latency_ms = latency_ms  # from the head read to the exchange's end
        #: from the request sent to the node to the exchange's end (None: no node)
        self.upstream_ms = upstream_ms
        #: the time the gateway itself took: latency minus upstream
        self.gateway_ms = latency_ms - upstream_ms if upstream_ms is not None else latency_ms
        self.retries = retries  # tries after the first
        self.cache = cache  # what a cache plugin reported (HIT, MISS, ...)
        #: the plugin that answered instead of the target (a refusal or an answer)
        self.answered_by = answered_by
        self.user_agent = user_agent
        #: what a route that asks keeps beyond the call: header fields and capped
        #: bodies (None: nothing kept)
        self.capture = capture
        #: the trace the exchange belongs to (None: tracing is off, or the request
        #: never got that far); spans are made of the sampled ones
        self.trace = trace
        #: what a call to a model used (None: no model was called), as the AI target
        #: recorded it: model, provider, deployment, team, prompt_tokens,
        #: completion_tokens, cost (USD), ttft_ms (see quiver.ai.accounting.usage)
        self.ai = ai
        #: what an MCP message was and how it ended (None: not an MCP exchange), as
        #: the endpoint recorded it: method, tool, prompt, resource, outcome, ms,
        #: status, server (see quiver.observe.mcp_note)
        self.mcp = mcp
        #: what went through an upgrade's tunnel (None: not an upgrade), noted when it
        #: closed: messages_in, messages_out (None unless the route reads frames),
        #: bytes_in, bytes_out (as on the wire), close_code (None unless the route
        #: reads frames; 1006: no close frame), closed_by (client, target, gateway)
        self.websocket = websocket
        #: the plan of an API product the consumer called under (None: no plan)
        self.plan = plan

    def value(self, name: str) -> Any:
        """A field as written out: bytes decoded, milliseconds rounded to microseconds."""
        value = getattr(self, name)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        if isinstance(value, float) and name != "time":
            return round(value, 3)
        return value
