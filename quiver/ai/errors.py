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
call.  Errors the gateway raises before an AI route answers (key-auth's 401, a
budget's 429) are the proxy's problem documents; everything the route itself
answers is rendered by :func:`render` as OpenAI's
``{"error": {"message", "type", "param", "code"}}`` or Anthropic's
``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

from typing import Literal

import orjson

Shape = Literal["openai", "anthropic"]

_JSON = (b"Content-Type", b"application/json")

#: Anthropic's error type for each status it documents
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
#: OpenAI's error type for each status
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


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


def error_type(error: AIError, shape: Shape) -> str:
    """The ``type`` member of the error in the front's shape."""
    if shape == "anthropic":
        if error.status == 529 or error.status == 503:
            return "overloaded_error"
        return _ANTHROPIC_TYPES.get(error.status, "api_error")
    return _OPENAI_TYPES.get(
        error.status, "api_error" if error.status >= 500 else "invalid_request_error"
    )


def render(error: AIError, shape: Shape) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, header fields and body answering ``error`` in the front's shape."""
    headers = [_JSON]
    if error.retry_after is not None and error.status == 429:
        headers.append((b"Retry-After", b"%d" % max(1, round(error.retry_after))))
    if shape == "anthropic":
        document: object = {
            "type": "error",
            "error": {"type": error_type(error, shape), "message": error.message},
        }
    else:
        document = {
            "error": {
                "message": error.message,
                "type": error_type(error, shape),
                "param": error.param,
                "code": error.code,
            }
        }
    return error.status, headers, orjson.dumps(document)


def stream_error(error: AIError, shape: Shape) -> bytes:
    """``error`` as an event of a stream already begun (OpenAI: a ``data`` chunk with
    an ``error`` member; Anthropic: an ``error`` event), after which the stream ends
    without its normal end ([DONE], message_stop)."""
    if shape == "anthropic":
        data = {
            "type": "error",
            "error": {"type": error_type(error, shape), "message": error.message},
        }
        return b"event: error\ndata: " + orjson.dumps(data) + b"\n\n"
    member = {
        "message": error.message,
        "type": error_type(error, shape),
        "param": error.param,
        "code": error.code,
    }
    return b"data: " + orjson.dumps({"error": member}) + b"\n\n"
