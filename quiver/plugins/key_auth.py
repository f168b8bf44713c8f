"""``key-auth``: identify the consumer by an API key in a header or the query string."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from pydantic import Field

from quiver.errors import Unauthorized
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest

_CHALLENGE = ((b"WWW-Authenticate", b'Key realm="quiver"'),)


class KeyAuthConfig(PluginConfig):
    header_names: list[str] = Field(
        default_factory=lambda: ["apikey", "X-API-Key"],
        description="Request headers that may carry the key, tried in order.",
    )
    query_names: list[str] = Field(
        default_factory=lambda: ["apikey"],
        description="Query parameters that may carry the key, when no header does.",
    )
    hide_credentials: bool = Field(
        True,
        description="Remove every header and query parameter named above from the request "
        "before it goes upstream, not only the one that carried the key.",
    )
    anonymous: str | None = Field(
        None, description="Consumer to use for requests without a key (else 401)."
    )


class KeyAuth(Plugin[KeyAuthConfig]):
    """Requests must carry the API key of a consumer (401 with a WWW-Authenticate
    challenge when it is missing or unknown). The consumer's name, custom id and
    groups go upstream as X-Consumer-* headers; the key itself does not."""

    name = "key-auth"
    priority = 1250
    identifies_consumers = True
    Config = KeyAuthConfig

    def __init__(self, config: KeyAuthConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.headers = tuple(name.lower().encode() for name in config.header_names)
        self.hide = config.hide_credentials  # (plain attributes: read every request)
        self.query_names = frozenset(config.query_names)
        self.consumers = context.consumers
        self.anonymous = (
            context.consumers.by_name.get(config.anonymous) if config.anonymous else None
        )
        if config.anonymous and self.anonymous is None:
            raise ValueError(f"key-auth: anonymous consumer {config.anonymous!r} is not defined")

    def access(self, request: PluginRequest) -> None:
        key = None
        for header in self.headers:
            key = request.get(header)
            if key is not None:
                break
        if key is None and self.query_names and request.query:
            key = self._from_query(request)  # (hides the query's keys itself)
        elif key is not None and self.hide:
            # every place a key may be, not only the one used: a second key is a secret too
            for header in self.headers:
                request.remove_header(header)
            if self.query_names and request.query:
                self._from_query(request)
        if key is None:
            if self.anonymous is not None:
                request.set_consumer(self.anonymous)
                return
            raise Unauthorized("no API key in the request", headers=_CHALLENGE)
        consumer = self.consumers.by_api_key(key)
        if consumer is None:
            raise Unauthorized("invalid API key", headers=_CHALLENGE)
        request.set_consumer(consumer)

    def _from_query(self, request: PluginRequest) -> bytes | None:
        pairs = parse_qsl(request.query.decode("latin-1"), keep_blank_values=True)
        key = next((value for name, value in pairs if name in self.query_names), None)
        if key is not None and self.hide:
            kept = [(name, value) for name, value in pairs if name not in self.query_names]
            request.set_query(urlencode(kept).encode("latin-1"))
        return key.encode("latin-1") if key is not None else None
