"""``request-size-limit``: refuse request bodies over a size (413), checked as they stream."""

from __future__ import annotations

from pydantic import Field

from quiver.config.base import Size
from quiver.errors import ContentTooLarge
from quiver.plugins.base import Plugin, PluginConfig, PluginRequest


class RequestSizeLimitConfig(PluginConfig):
    max_size: Size = Field(gt=0, description="Largest request body in bytes, e.g. 1MB.")


class RequestSizeLimit(Plugin[RequestSizeLimitConfig]):
    """Bodies declared larger are refused before any byte is read; chunked bodies
    are cut off with 413 as soon as they grow past the limit."""

    name = "request-size-limit"
    priority = 951
    Config = RequestSizeLimitConfig

    def access(self, request: PluginRequest) -> None:
        limit = self.config.max_size
        declared = request.content_length
        if declared is not None and declared > limit:
            raise ContentTooLarge(f"request body of {declared} bytes exceeds {limit}")
        request.limit_body(limit)
