"""``acl``: let in or keep out consumers by group."""

from __future__ import annotations

from pydantic import Field, model_validator

from quiver.errors import Forbidden, Unauthorized
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest


class AclConfig(PluginConfig):
    allow: list[str] = Field(
        default_factory=list, description="Groups let in; with a list, all others are refused."
    )
    deny: list[str] = Field(default_factory=list, description="Groups refused (wins over allow).")

    @model_validator(mode="after")
    def _some_rule(self) -> AclConfig:
        if not self.allow and not self.deny:
            raise ValueError("give 'allow' or 'deny' groups")
        return self


class Acl(Plugin[AclConfig]):
    """Runs after an authentication plugin: a request without an identified consumer
    gets 401; a consumer outside the allowed groups, or in a denied one, gets 403."""

    name = "acl"
    priority = 950
    Config = AclConfig

    def __init__(self, config: AclConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.allow = frozenset(config.allow)
        self.deny = frozenset(config.deny)

    def access(self, request: PluginRequest) -> None:
        consumer = request.consumer
        if consumer is None:
            raise Unauthorized("this route needs an authenticated consumer")
        if consumer.groups & self.deny or (self.allow and not consumer.groups & self.allow):
            raise Forbidden(f"consumer {consumer.name!r} may not use this route")
