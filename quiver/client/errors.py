"""Every error the client SDK raises; httpx's never reach the caller.

    QuiverClientError
    ├── TransportError               no usable response arrived
    │   ├── ConnectError                 refused or unreachable: nothing was sent (retryable)
    │   ├── TimeoutError                 a timeout expired
    │   │   ├── ConnectTimeout               while connecting: nothing was sent (retryable)
    │   │   ├── PoolTimeout                  waiting for a pooled connection (retryable)
    │   │   └── ReadTimeout                  the request went out, no answer in time
    │   ├── NetworkError                 the connection broke mid-exchange
    │   └── CircuitOpenError             the host's breaker is open: not sent at all
    ├── HTTPStatusError              a response with a status of 400 or more
    │   ├── ClientStatusError            4xx
    │   │   └── RateLimited                  429 (retryable, carries ``retry_after``)
    │   ├── ServerStatusError            5xx (retryable)
    │   └── ProblemError                 the body is an RFC 9457 problem document
    │       ├── ClientProblem                (also a ClientStatusError)
    │       ├── RateLimitedProblem           (also a RateLimited)
    │       └── ServerProblem                (also a ServerStatusError)
    ├── DecodingError                the body is not what was expected (e.g. not JSON)
    ├── TooManyRedirects             redirects past the limit (a loop, most likely)
    ├── InvalidURL                   the URL cannot be requested (no scheme, unknown scheme)
    └── AuthError                    a token endpoint refused to issue a token

``retryable`` is a class attribute: whether sending the same request again may
succeed without risk of doing its work twice *for an idempotent request*.  The
retry loop asks it, together with the method (or an ``Idempotency-Key``) for
errors that happen after the request was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from quiver.client.headers import server_delay
from quiver.errors import QuiverError

if TYPE_CHECKING:
    from quiver.client.models import Response


class QuiverClientError(QuiverError):
    """Base of every error the client SDK raises."""

    retryable = False


class TransportError(QuiverClientError):
    """No usable response arrived; ``url`` says where the request was going."""

    #: the request cannot have reached the server, so any method may be resent
    unsent = False

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class ConnectError(TransportError):
    retryable = True
    unsent = True


class TimeoutError(TransportError):
    pass


class ConnectTimeout(TimeoutError):
    retryable = True
    unsent = True


class PoolTimeout(TimeoutError):
    retryable = True
    unsent = True


class ReadTimeout(TimeoutError):
    retryable = True


class NetworkError(TransportError):
    retryable = True


class CircuitOpenError(TransportError):
    """The host failed too often lately; the request was refused without being sent.

    Not retryable by the loop: waiting out the breaker is the caller's decision."""


class HTTPStatusError(QuiverClientError):
    """The server answered with a status of 400 or more; ``response`` is what it said."""

    def __init__(self, message: str, response: Response) -> None:
        super().__init__(message)
        self.response = response
        self.status = response.status

    @property
    def request_id(self) -> str | None:
        """The id the server gave the exchange (``X-Request-ID``), for its logs."""
        return self.response.headers.get("x-request-id")


class ClientStatusError(HTTPStatusError):
    pass


class RateLimited(ClientStatusError):
    retryable = True

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait (``Retry-After`` or the RateLimit fields)."""
        return server_delay(self.response.headers)


class ServerStatusError(HTTPStatusError):
    retryable = True


class ProblemError(HTTPStatusError):
    """The answer is an ``application/problem+json`` document (Quiver's errors are).

    ``type``, ``title``, ``detail`` come from the document; ``request_id`` from its
    ``request_id`` member (Quiver's), else the ``X-Request-ID`` header; any other
    member is in ``extensions``."""

    def __init__(self, message: str, response: Response, problem: Mapping[str, Any]) -> None:
        super().__init__(message, response)
        self.type = str(problem.get("type", "about:blank"))
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        standard = {"type", "title", "status", "detail", "instance", "request_id"}
        self.extensions = {k: v for k, v in problem.items() if k not in standard}
        self._request_id = problem.get("request_id")

    @property
    def request_id(self) -> str | None:
        if isinstance(self._request_id, str):
            return self._request_id
        return super().request_id


class ClientProblem(ClientStatusError, ProblemError):
    pass


class RateLimitedProblem(RateLimited, ProblemError):
    pass


class ServerProblem(ServerStatusError, ProblemError):
    pass


class DecodingError(QuiverClientError):
    """The body could not be decoded as asked."""


class TooManyRedirects(QuiverClientError):
    """The server kept redirecting (httpx follows 20 at most); ``url`` is the request's.

    Not retryable: the same request would be sent round the same redirects."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class InvalidURL(QuiverClientError, ValueError):
    """A mistake in the program rather than a failure: never retried."""


class AuthError(QuiverClientError):
    """A token endpoint refused to issue a token; ``response`` is its answer."""

    def __init__(self, message: str, response: Response | None = None) -> None:
        super().__init__(message)
        self.response = response


def status_error(response: Response) -> HTTPStatusError:
    """The typed error for a response of status 400 or more (the boundary's mapping)."""
    status = response.status
    problem = response.problem()
    message = f"{response.request.method} {response.url} answered {status}"
    if problem is not None:
        detail = problem.get("detail") or problem.get("title")
        message = f"{message}: {detail}" if detail else message
        kind: type[ProblemError] = ClientProblem if status < 500 else ServerProblem
        if status == 429:
            kind = RateLimitedProblem
        return kind(message, response, problem)
    plain: type[HTTPStatusError] = ClientStatusError if status < 500 else ServerStatusError
    if status == 429:
        plain = RateLimited
    return plain(message, response)
