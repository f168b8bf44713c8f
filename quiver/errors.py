"""Every error Quiver raises on purpose.

    QuiverError
    ├── ConfigError                  the declarative config is invalid (lists each issue)
    ├── StoreError                   the config store cannot be used (e.g. its schema is newer)
    ├── SyncError                    `quiver sync` cannot go on (a source or a destination failed)
    ├── WebhookVerificationError     a received webhook's headers or signature do not hold
    ├── AccountError                 an account cannot be made or used (email taken, bad password)
    └── HTTPError                    stops a request; rendered as application/problem+json
        ├── Answer                   not an error: a plugin answers the request itself
        ├── ClientError              4xx: the caller sent something we refuse
        │   ├── BadRequest               400 malformed or ambiguous request (closes)
        │   ├── Unauthorized             401 missing or bad credentials
        │   │   └── SubscriptionRequired     401 no approved subscription to the route's API
        │   ├── Forbidden                403 credentials fine, access refused
        │   ├── NotFound                 404 no route matched
        │   ├── MethodNotAllowed         405 the resource exists, not with this method
        │   ├── ApiRetired               410 the route's API is retired
        │   ├── RequestTimeout           408 client too slow sending head or body
        │   ├── ContentTooLarge          413 body over the configured limit
        │   ├── URITooLong               414 request line over the limit
        │   ├── TooManyRequests          429 a rate limit, quota or concurrency limit is spent
        │   └── HeaderFieldsTooLarge     431 header block or count over the limit
        ├── ServerError              5xx raised by Quiver itself
        │   ├── PluginError              500 a plugin phase failed (a fault, not a refusal)
        │   ├── LimitUnavailable         503 a limit could not be checked (its store is down)
        │   └── Overloaded               503 a concurrency limit is full (status: 503)
        └── GatewayError             5xx: the target failed us
            ├── BadGateway               502 unparsable or cut upstream response
            │   ├── UpstreamConnectError     refused or unreachable  (retry kind "connect_error")
            │   └── UpstreamResetError       reset before any byte   (retry kind "reset")
            ├── ServiceUnavailable       503 no node can take the request
            ├── GatewayTimeout           504 upstream did not answer in time (retry kind "timeout")
            └── NotCached                504 only-if-cached and the response cache has no answer

``retry_kind`` names the ``retries.on`` condition an error is (None: never
retried), and ``retryable`` says whether the request may be sent again on another
connection without risk of doing its work twice.  ``internal`` is what the log
gets instead of ``detail`` (it may name node addresses); clients never see it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson


class QuiverError(Exception):
    """Base of every error Quiver raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config source: where it is and what is wrong."""

    location: str  # dotted path such as "routes[0].plugins"
    message: str
    source: str | None = None  # file name
    line: int | None = None

    def __str__(self) -> str:
        where = self.source or "<config>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        if self.location:
            return f"{where}: {self.location}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(QuiverError):
    """The config is invalid; ``issues`` names every key at fault and where it is."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class StoreError(QuiverError):
    """The config store cannot be opened or used as asked; the message says why."""


class SyncError(QuiverError):
    """``quiver sync`` cannot go on: a source answered an error or a destination refused
    the rows. The message names the source and resource; what was committed stays, and
    the next run resumes from it."""


class WebhookVerificationError(QuiverError):
    """A received webhook failed verification (``quiver.webhooks.verify``): a header
    is missing or malformed, its timestamp is out of tolerance, or no signature
    matches a secret the receiver knows."""


class AccountError(QuiverError):
    """A user account of the portal or console cannot be made or changed as asked: the
    email is taken or malformed, the password too short (``quiver.accounts``).  The
    message is fit to show next to the form field it names in ``field``."""

    field: str | None = None


class HTTPError(QuiverError):
    """Stops a request. Subclasses set ``status_code``, ``title`` and ``slug``.

    Raise one from any request phase, for example::

        raise NotFound("no route matches GET /nothing")
    """

    status_code = 500
    title = "Internal Server Error"
    slug = "internal-error"
    #: the client connection cannot be trusted after this error
    close_connection = False
    retryable = False
    #: the ``retries.on`` condition this error is; None when never retried
    retry_kind: str | None = None

    def __init__(
        self,
        detail: str = "",
        *,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        extensions: Mapping[str, object] | None = None,
        internal: str | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        #: for the log only (e.g. with the node's address); ``detail`` when None
        self.internal = internal
        self.headers = headers
        #: extra members of the problem document (RFC 9457 §3.2), e.g. a list of
        #: violations; JSON values, never overriding type, title, status or detail
        self.extensions: Mapping[str, object] = extensions or {}


class Answer(HTTPError):
    """A plugin answers the request itself, without going upstream.

    Rendered as given (status, headers, optional body), not as a problem document::

        raise Answer(204, headers=((b"Access-Control-Allow-Origin", b"*"),))

    A whole stored response (a cache's) comes rendered in ``head``: the status line
    and every field, each line ending in CRLF, Content-Length included (none on 204
    and 304), without the blank line; the proxy adds only X-Request-ID (and
    ``Connection: close`` when it closes), then ``body`` unless the request was HEAD::

        raise Answer(200, head=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", body=b"ok")

    Such a head is taken for a node's response kept earlier: its Location,
    Content-Location and Set-Cookie paths are mapped back by the route's
    ``redirects``, as they were when the node's response was relayed.  The route's
    ``response_headers`` phases do not run on an answer: it goes out as the plugin
    made it.
    """

    def __init__(
        self,
        status: int,
        *,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        body: bytes = b"",
        content_type: bytes = b"text/plain",
        head: bytes | None = None,
    ) -> None:
        super().__init__("answered by a plugin", headers=headers)
        self.status_code = status
        self.body = body
        self.content_type = content_type
        self.head = head


class ClientError(HTTPError):
    status_code = 400


class BadRequest(ClientError):
    status_code = 400
    title = "Bad Request"
    slug = "bad-request"
    close_connection = True


class Unauthorized(ClientError):
    """Missing or invalid credentials; pass a ``WWW-Authenticate`` challenge in headers."""

    status_code = 401
    title = "Unauthorized"
    slug = "unauthorized"


class SubscriptionRequired(Unauthorized):
    """The consumer has no approved subscription to the API of the route (its plans
    gate it); the key-auth challenge goes with it."""

    slug = "subscription-required"


class Forbidden(ClientError):
    status_code = 403
    title = "Forbidden"
    slug = "forbidden"


class NotFound(ClientError):
    status_code = 404
    title = "Not Found"
    slug = "no-route"


class MethodNotAllowed(ClientError):
    """Pass the methods that would be accepted as an ``Allow`` header."""

    status_code = 405
    title = "Method Not Allowed"
    slug = "method-not-allowed"


class ApiRetired(ClientError):
    """The route belongs to a retired API: it answers nothing any more (RFC 8594)."""

    status_code = 410
    title = "Gone"
    slug = "api-retired"


class RequestTimeout(ClientError):
    status_code = 408
    title = "Request Timeout"
    slug = "request-timeout"
    close_connection = True


class ContentTooLarge(ClientError):
    status_code = 413
    title = "Content Too Large"
    slug = "content-too-large"
    close_connection = True


class URITooLong(ClientError):
    status_code = 414
    title = "URI Too Long"
    slug = "uri-too-long"
    close_connection = True


class TooManyRequests(ClientError):
    """A limit is spent; pass ``Retry-After`` (and the RateLimit fields) in headers."""

    status_code = 429
    title = "Too Many Requests"
    slug = "rate-limited"


class HeaderFieldsTooLarge(ClientError):
    status_code = 431
    title = "Request Header Fields Too Large"
    slug = "header-fields-too-large"
    close_connection = True


class ServerError(HTTPError):
    status_code = 500


class PluginError(ServerError):
    """A plugin phase raised something other than an HTTPError: a fault in the plugin."""

    status_code = 500
    title = "Internal Server Error"
    slug = "plugin-failed"


class LimitUnavailable(ServerError):
    """A limit's counter store could not answer and its policy is to refuse."""

    status_code = 503
    title = "Service Unavailable"
    slug = "limit-unavailable"


class Overloaded(ServerError):
    """As many requests as a concurrency limit allows are in flight already (its
    ``status: 503`` form; pass ``Retry-After`` in headers)."""

    status_code = 503
    title = "Service Unavailable"
    slug = "overloaded"


class GatewayError(HTTPError):
    status_code = 502


class BadGateway(GatewayError):
    status_code = 502
    title = "Bad Gateway"
    slug = "bad-gateway"


class UpstreamConnectError(BadGateway):
    """The node refused or could not be reached: nothing was sent, so retrying is safe."""

    retryable = True
    retry_kind = "connect_error"


class UpstreamResetError(BadGateway):
    """The connection broke before any response byte arrived."""

    retry_kind = "reset"


class ServiceUnavailable(GatewayError):
    status_code = 503
    title = "Service Unavailable"
    slug = "no-upstream-available"
    retryable = True


class GatewayTimeout(GatewayError):
    status_code = 504
    title = "Gateway Timeout"
    slug = "upstream-timeout"
    retry_kind = "timeout"


class NotCached(GatewayError):
    """The request said ``Cache-Control: only-if-cached`` and the response cache has
    no answer it may give (RFC 9111 §5.2.1.7)."""

    status_code = 504
    title = "Gateway Timeout"
    slug = "not-cached"


PROBLEM_TYPE_PREFIX = "urn:quiver:problem:"


def problem_body(error: HTTPError, request_id: str) -> bytes:
    """``error`` as an RFC 9457 ``application/problem+json`` document."""
    document: dict[str, object] = {
        "type": PROBLEM_TYPE_PREFIX + error.slug,
        "title": error.title,
        "status": error.status_code,
        "detail": error.detail,
        "request_id": request_id,
    }
    for key, value in error.extensions.items():  # (RFC 9457 §3.2)
        document.setdefault(key, value)
    return orjson.dumps(document)
