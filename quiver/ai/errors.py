"""What goes wrong on an AI route, and how each front API shows it.

    AIError                          answered in the shape of the front the client used
    ├── InvalidRequest           400 the request cannot be served as sent
    │   ├── ModelNotFound        404 no such model (or not on this route)
    │   └── Unsupported          400 the model's provider has no such API (embeddings...)
    └── ProviderError            the provider failed the call; its status and message kept
        ├── ProviderRejected     4xx the provider refused the request (not retried)
        │   └── ContextWindowExceeded  400 too long for the model (a fallback may take it)
        ├── ProviderAuthFailed   502 the provider refused Quiver's own credentials
        │                            (never the client's 401: its key was fine; retried)
        ├── ProviderRateLimited  429 the provider's limit (retried, Retry-After honoured)
        ├── ProviderUnavailable  5xx the provider failed or could not be reached (retried)
        └── ProviderTimeout      504 no answer in time (retried)

``retryable`` says whether another deployment (or a fallback model) may take the
call.  Everything an AI route answers is rendered by :func:`render` as OpenAI's
``{"error": {"message", "type", "param", "code"}}`` or Anthropic's
``{"type": "error", "error": {"type", "message"}, "request_id"}``; so are the
gateway's own refusals on the route (key-auth's 401, a rate limit's 429, a
guardrail's 400...), turned into an AIError by :func:`from_http_error` with their
header fields and problem members kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import orjson

from quiver.errors import HTTPError

Shape = Literal["openai", "anthropic"]

_JSON = (b"Content-Type", b"application/json")

#: Anthropic's error type for each status it documents (other 4xx are
#: invalid_request_error, other 5xx api_error)
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
#: OpenAI's error types are coarser: api.openai.com answers every 4xx but 429 as
#: invalid_request_error (401 and 403 too, the ``code`` saying more), a 429 as
#: rate_limit_error and a 5xx as server_error
_OPENAI_RATE_LIMIT = "rate_limit_error"
_OPENAI_SERVER = "server_error"
_OPENAI_REQUEST = "invalid_request_error"
#: OpenAI's ``code`` for gateway refusals whose slug is not what OpenAI says
_OPENAI_CODES = {"unauthorized": "invalid_api_key", "rate-limited": "rate_limit_exceeded"}


class AIError(Exception):
    """Base of the errors an AI route answers with."""

    status = 500
    code: str | None = None
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        extra: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.param = param
        #: seconds the provider asked to wait (its Retry-After), when it said
        self.retry_after = retry_after
        #: more header fields of the answer (a gateway refusal's: Retry-After,
        #: WWW-Authenticate, RateLimit-*...)
        self.headers = headers
        #: more members of the error object (a problem document's extensions, such as
        #: the guardrail rule that refused), never overriding the shape's own
        self.extra: Mapping[str, object] = extra or {}


class InvalidRequest(AIError):
    status = 400
    code = "invalid_request"


class ModelNotFound(InvalidRequest):
    status = 404
    code = "model_not_found"


class Unsupported(InvalidRequest):
    code = "unsupported"


class ProviderError(AIError):
    """The provider failed the call; ``provider`` names it, the message keeps its cause."""

    status = 502
    code = "provider_error"

    def __init__(self, message: str, *, provider: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.provider = provider


class ProviderRejected(ProviderError):
    status = 400
    code = "provider_rejected"


class ContextWindowExceeded(ProviderRejected):
    code = "context_length_exceeded"
    retryable = True  # (by a fallback model with a larger window, not the same one)


class ProviderAuthFailed(ProviderError):
    status = 502
    code = "provider_auth_failed"
    retryable = True  # (another deployment's credentials may be good)


class ProviderRateLimited(ProviderError):
    status = 429
    code = "rate_limit_exceeded"
    retryable = True


class ProviderUnavailable(ProviderError):
    status = 502
    code = "provider_unavailable"
    retryable = True


class ProviderTimeout(ProviderError):
    status = 504
    code = "provider_timeout"
    retryable = True


def from_http_error(error: HTTPError) -> AIError:
    """A gateway refusal (an ``HTTPError`` of the proxy, a plugin or the accounting)
    as an AIError: its status, its detail as the message, its slug as the code (in
    OpenAI's words where it has one), every header field and problem member kept."""
    code = getattr(error, "code", None)  # (the accounting's refusals name theirs)
    if not isinstance(code, str):
        slug = error.slug
        code = _OPENAI_CODES.get(slug) or slug.replace("-", "_")
    return AIError(
        error.detail,
        status=error.status_code,
        code=code,
        headers=error.headers,
        extra=error.extensions,
    )


def error_type(error: AIError, shape: Shape) -> str:
    """The ``type`` member of the error in the front's shape."""
    status = error.status
    if shape == "anthropic":
        if status in _ANTHROPIC_TYPES:
            return _ANTHROPIC_TYPES[status]
        return "api_error" if status >= 500 else "invalid_request_error"
    if status == 429:
        return _OPENAI_RATE_LIMIT
    return _OPENAI_SERVER if status >= 500 else _OPENAI_REQUEST


def _member(error: AIError, shape: Shape) -> dict[str, object]:
    """The error object of the shape (``error`` of the document)."""
    if shape == "anthropic":
        member: dict[str, object] = {"type": error_type(error, shape), "message": error.message}
    else:
        member = {
            "message": error.message,
            "type": error_type(error, shape),
            "param": error.param,
            "code": error.code,
        }
    for key, value in error.extra.items():
        member.setdefault(key, value)
    return member


def render(
    error: AIError, shape: Shape, request_id: bytes = b""
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, header fields and body answering ``error`` in the front's shape.

    ``request_id`` (the exchange's, also in X-Request-ID, which OpenAI's SDKs read)
    is sent as ``request-id`` too, the field Anthropic's SDKs read, and in the body
    of Anthropic's shape, as Anthropic does."""
    headers = [_JSON]
    if request_id:
        headers.append((b"request-id", request_id))
    if error.retry_after is not None and error.status == 429:
        headers.append((b"Retry-After", b"%d" % max(1, round(error.retry_after))))
    headers.extend(error.headers)
    document: dict[str, object]
    if shape == "anthropic":
        document = {"type": "error", "error": _member(error, shape)}
        if request_id:
            document["request_id"] = request_id.decode("latin-1")
    else:
        document = {"error": _member(error, shape)}
    return error.status, headers, orjson.dumps(document)


def stream_error(error: AIError, shape: Shape) -> bytes:
    """``error`` as an event of a stream already begun (OpenAI: a ``data`` chunk with
    an ``error`` member; Anthropic: an ``error`` event), after which the stream ends
    without its normal end ([DONE], message_stop)."""
    if shape == "anthropic":
        data = {"type": "error", "error": _member(error, shape)}
        return b"event: error\ndata: " + orjson.dumps(data) + b"\n\n"
    return b"data: " + orjson.dumps({"error": _member(error, shape)}) + b"\n\n"
