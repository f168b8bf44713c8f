"""Quiver's client SDK: a client of any HTTP API that knows Quiver's own errors.

``AsyncClient`` is the source; ``Client`` is generated from it (scripts/unasync.py)
and behaves the same way, blocking.  See docs/client.md.
"""

from quiver.client._async.client import AsyncClient
from quiver.client._sync.client import Client
from quiver.client.auth import (
    APIKeyAuth,
    Auth,
    BasicAuth,
    BearerAuth,
    ClientCredentials,
    RefreshToken,
    StaticAuth,
)
from quiver.client.breaker import BreakerPolicy
from quiver.client.cache import ResponseCache
from quiver.client.errors import (
    AuthError,
    CircuitOpenError,
    ClientProblem,
    ClientStatusError,
    ConnectError,
    ConnectTimeout,
    DecodingError,
    HTTPStatusError,
    InvalidURL,
    NetworkError,
    PoolTimeout,
    ProblemError,
    QuiverClientError,
    RateLimited,
    RateLimitedProblem,
    ReadTimeout,
    ServerProblem,
    ServerStatusError,
    TimeoutError,
    TooManyRedirects,
    TransportError,
)
from quiver.client.events import ClientEvent, EventHook, logging_hook
from quiver.client.headers import Headers
from quiver.client.models import RequestSpec, Response, Timeouts
from quiver.client.pagination import Page, Paginator, paginator_from_config
from quiver.client.ratelimit import RateLimiter
from quiver.client.retry import NO_RETRY, RetryPolicy

__all__ = [
    "NO_RETRY",
    "APIKeyAuth",
    "AsyncClient",
    "Auth",
    "AuthError",
    "BasicAuth",
    "BearerAuth",
    "BreakerPolicy",
    "CircuitOpenError",
    "Client",
    "ClientCredentials",
    "ClientEvent",
    "ClientProblem",
    "ClientStatusError",
    "ConnectError",
    "ConnectTimeout",
    "DecodingError",
    "EventHook",
    "HTTPStatusError",
    "Headers",
    "InvalidURL",
    "NetworkError",
    "Page",
    "Paginator",
    "PoolTimeout",
    "ProblemError",
    "QuiverClientError",
    "RateLimited",
    "RateLimitedProblem",
    "RateLimiter",
    "ReadTimeout",
    "RefreshToken",
    "RequestSpec",
    "Response",
    "ResponseCache",
    "RetryPolicy",
    "ServerProblem",
    "ServerStatusError",
    "StaticAuth",
    "TimeoutError",
    "Timeouts",
    "TooManyRedirects",
    "TransportError",
    "logging_hook",
    "paginator_from_config",
]
