"""Error responses as RFC 9457 ``application/problem+json`` documents."""

from __future__ import annotations

from quiver.errors import PROBLEM_TYPE_PREFIX, Answer, HTTPError, problem_body
from quiver.http.fields import reason_phrase

__all__ = ["PROBLEM_TYPE_PREFIX", "problem_body", "problem_response"]


def problem_response(
    error: HTTPError, request_id: str, *, close: bool, head_only: bool, added: bytes = b""
) -> bytes:
    """The whole HTTP/1.1 response carrying ``error``; no body when ``head_only``;
    ``added``: fields plugins add to every response (``Name: value\r\n`` each)."""
    if isinstance(error, Answer) and error.head is not None:  # rendered by the plugin
        parts = [error.head, added, b"X-Request-ID: ", request_id.encode(), b"\r\n"]
        if close:
            parts.append(b"Connection: close\r\n")
        parts.append(b"\r\n")
        if not head_only:
            parts.append(error.body)
        return b"".join(parts)
    if isinstance(error, Answer):
        body, content_type = error.body, error.content_type
    else:
        body, content_type = problem_body(error, request_id), b"application/problem+json"
    status = error.status_code
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason_phrase(status))]
    if status != 204 and status != 304:  # (RFC 9110 §8.6: no Content-Length on 204)
        lines += (b"Content-Type: %s\r\n" % content_type, b"Content-Length: %d\r\n" % len(body))
    lines.append(b"X-Request-ID: %s\r\n" % request_id.encode())
    if not isinstance(error, Answer):
        lines.append(b"Cache-Control: no-store\r\n")
    lines.extend(b"%s: %s\r\n" % pair for pair in error.headers)
    if added:
        lines.append(added)
    if close:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    if not head_only and status != 204 and status != 304:
        lines.append(body)
    return b"".join(lines)
