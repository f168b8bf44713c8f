"""The phases that fill an exchange's :class:`~quiver.observe.capture.Capture`, for
the routes whose ``call_log`` asks for bodies.

Such a route gets one more phase provider in its chain, :class:`CallCapture`,
running first: its access phase gives the exchange a capture, which from then on
keeps a capped copy of each body as it streams by (the request's from
``Exchange.on_request_body``, the response's as the body's tap, ahead of any
plugin's tap); its ``response_headers`` phase keeps the response's fields.  Other
routes carry nothing of this: their requests run the code they ran before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from quiver.config.models import ALWAYS_REDACTED, RouteCallLog
from quiver.observe.capture import Capture
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.response import ResponseHead

if TYPE_CHECKING:
    from quiver.proxy.exchange import Exchange


class CallCapture(Plugin[PluginConfig]):
    """The phases that fill an exchange's :class:`Capture` (not a plugin users attach:
    the route's ``call_log`` puts it in the route's chain)."""

    name = "call-log"
    priority = 1_000_000  # before every plugin: a refused request is kept too
    Config = PluginConfig

    def __init__(self, settings: RouteCallLog, context: PluginContext) -> None:
        super().__init__(PluginConfig(), context)
        self.limit = settings.max_body
        self.redacted = frozenset(
            name.encode() for name in (*ALWAYS_REDACTED, *settings.redact_headers)
        )

    def access(self, request: PluginRequest) -> None:
        exchange = cast("Exchange", request)
        capture = exchange.capture = Capture(self.limit, self.redacted, exchange.headers)
        exchange.tap = capture.response_chunk

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        capture = cast("Exchange", request).capture
        if capture is not None:
            capture.response_fields = list(response.fields)
