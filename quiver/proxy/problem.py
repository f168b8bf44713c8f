"""Error responses as RFC 9457 ``application/problem+json`` documents."""

from __future__ import annotations

from http import HTTPStatus

import orjson

from quiver.errors import HTTPError

PROBLEM_TYPE_PREFIX = "urn:quiver:problem:"


def reason_phrase(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def problem_body(error: HTTPError, request_id: str) -> bytes:
    return orjson.dumps(
        {
            "type": PROBLEM_TYPE_PREFIX + error.slug,
            "title": error.title,
            "status": error.status_code,
            "detail": error.detail,
            "request_id": request_id,
        }
    )


def problem_response(error: HTTPError, request_id: str, *, close: bool, head_only: bool) -> bytes:
    """The whole HTTP/1.1 response carrying ``error``; no body when ``head_only``."""
    body = problem_body(error, request_id)
    lines = [
        b"HTTP/1.1 %d %s\r\n" % (error.status_code, reason_phrase(error.status_code)),
        b"Content-Type: application/problem+json\r\n",
        b"Content-Length: %d\r\n" % len(body),
        b"X-Request-ID: %s\r\n" % request_id.encode(),
        b"Cache-Control: no-store\r\n",
    ]
    lines.extend(b"%s: %s\r\n" % pair for pair in error.headers)
    if close:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    if not head_only:
        lines.append(body)
    return b"".join(lines)
