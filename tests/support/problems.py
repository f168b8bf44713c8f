"""Checks every error answer shares: RFC 9457 problem+json, never a traceback or a page."""

from __future__ import annotations

import json
from typing import Any

from tests.support.proxy import Response

PROBLEM_TYPE = "application/problem+json"
_FORBIDDEN_IN_BODY = (b"Traceback", b'File "', b"<html", b"<HTML", b"<!DOCTYPE", b"<body")


def assert_problem(response: Response, status: int, *, head: bool = False) -> dict[str, Any]:
    """``response`` is a complete problem document for ``status``; returns its fields.

    For a HEAD request the head is checked and the body must be empty.
    """
    assert response.status == status, (response.status, response.body[:500])
    content_type = response.header("Content-Type") or ""
    assert content_type.split(";")[0].strip() == PROBLEM_TYPE, content_type
    request_id = response.header("X-Request-ID")
    assert request_id, "error responses carry X-Request-ID"
    assert response.complete, "the error response was cut short"
    if head:
        assert response.body == b""
        return {}
    for marker in _FORBIDDEN_IN_BODY:
        assert marker not in response.body, response.body[:500]
    assert response.header("Content-Length") == str(len(response.body))
    problem = json.loads(response.body)
    assert isinstance(problem, dict)
    for key in ("type", "title", "status", "detail", "request_id"):
        assert key in problem, f"problem document lacks {key!r}: {problem}"
    assert problem["status"] == status
    assert isinstance(problem["type"], str) and problem["type"]
    assert isinstance(problem["title"], str) and problem["title"]
    assert isinstance(problem["detail"], str) and problem["detail"]
    assert problem["request_id"] == request_id
    return problem
