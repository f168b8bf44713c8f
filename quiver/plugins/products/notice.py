"""``api-deprecation``: the fields of a deprecated API on every response of its routes.

It runs before every other plugin (the highest priority there is), so whatever
answers the request (the target, or a plugin refusing it: key-auth's 401, a rate
limit's 429) the answer carries them: fields added with
``add_response_field`` go on gateway errors too.  Built by ``api-product`` for
a deprecated API, never written in a config.
"""

from __future__ import annotations

from pydantic import Field

from quiver.config.apis import Api
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.products.lifecycle import deprecation_fields

NOTICE_PLUGIN = "api-deprecation"


class NoticeConfig(PluginConfig):
    api: Api = Field(description="The deprecated API the route belongs to.")


class DeprecationNotice(Plugin[NoticeConfig]):
    """Adds ``Deprecation``, ``Sunset`` and ``Link`` (RFC 9745, RFC 8594)."""

    name = NOTICE_PLUGIN
    priority = 1_000_000  # first of all: a refusal by any other plugin carries them
    Config = NoticeConfig

    def __init__(self, config: NoticeConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.fields = deprecation_fields(config.api)

    def access(self, request: PluginRequest) -> None:
        for name, value in self.fields:
            request.add_response_field(name, value)
