"""A source's config as a ``quiver.client.AsyncClient``: what ``quiver sync`` fetches with.

The client brings what a long pull needs from a public API: retries with backoff on
connection errors, timeouts, 429 and 5xx; ``Retry-After`` and the RateLimit fields
honoured; a circuit breaker per host; OAuth2 tokens renewed as they expire. The
``auth:`` block of a source names one of the client's schemes, the way dlt's
``rest_api`` spells them. Pages travel on the client's lean HTTP/1.1 transport
unless the source says ``transport: httpx`` (see "Transport" in docs/client.md).
A rotated OAuth2 refresh token is kept in the sources file's token file
(:mod:`quiver.sync.tokens`) before the access token that came with it is used.
"""

from __future__ import annotations

from functools import partial
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
from quiver.sync.tokens import TokenFile


def client_for(
    source: config.Source, tokens: TokenFile | None = None, **options: Any
) -> AsyncClient:
    """The client of ``source``, keeping its rotated refresh tokens in ``tokens``;
    ``options`` go to :class:`AsyncClient` as they are (tests hand in a recorded
    ``sleep`` and ``clock``)."""
    auth = auth_for(source.auth, source.name, tokens) if source.auth is not None else None
    options.setdefault("transport", source.transport)
    return AsyncClient(source.base_url, headers=source.headers, auth=auth, **options)


def auth_for(auth: config.Auth, source: str = "", tokens: TokenFile | None = None) -> Auth:
    """The client's scheme for an ``auth:`` block of ``source``; an OAuth2 refresh
    token starts from, and is kept in, ``tokens`` when there is a token file."""
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
            start, keep = auth.refresh_token, None
            if tokens is not None:  # a rotating endpoint revokes what the file says
                start = tokens.refresh_token(source, auth.refresh_token)
                keep = partial(tokens.keep, source, auth.refresh_token)
            return RefreshToken(
                auth.access_token_url,
                auth.client_id,
                start,
                client_secret=auth.client_secret,
                scope=auth.scope,
                on_refresh_token=keep,
            )
