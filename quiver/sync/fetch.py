"""A source's config as a ``quiver.client.AsyncClient``: what ``quiver sync`` fetches with.

The client brings what a long pull needs from a public API: retries with backoff on
connection errors, timeouts, 429 and 5xx; ``Retry-After`` and the RateLimit fields
honoured; a circuit breaker per host; OAuth2 tokens renewed as they expire. The
``auth:`` block of a source names one of the client's schemes, the way dlt's
``rest_api`` spells them. Pages travel on the client's lean HTTP/1.1 transport
unless the source says ``transport: httpx`` (see "Transport" in docs/client.md).
"""

from __future__ import annotations

from typing import Any

from quiver.client import (
    APIKeyAuth,
    AsyncClient,
    Auth,
    BasicAuth,
    BearerAuth,
    ClientCredentials,
    RefreshToken,
)
from quiver.sync import config


def client_for(source: config.Source, **options: Any) -> AsyncClient:
    """The client of ``source``; ``options`` go to :class:`AsyncClient` as they are
    (tests hand in a recorded ``sleep`` and ``clock``)."""
    auth = auth_for(source.auth) if source.auth is not None else None
    options.setdefault("transport", source.transport)
    return AsyncClient(source.base_url, headers=source.headers, auth=auth, **options)


def auth_for(auth: config.Auth) -> Auth:
    match auth:
        case config.Bearer():
            return BearerAuth(auth.token)
        case config.ApiKey():
            return APIKeyAuth(auth.api_key, auth.name, auth.location)
        case config.HttpBasic():
            return BasicAuth(auth.username, auth.password)
        case config.OAuth2ClientCredentials():
            return ClientCredentials(
                auth.access_token_url, auth.client_id, auth.client_secret, auth.scope
            )
        case config.OAuth2RefreshToken():
            return RefreshToken(
                auth.access_token_url,
                auth.client_id,
                auth.refresh_token,
                client_secret=auth.client_secret,
                scope=auth.scope,
            )
