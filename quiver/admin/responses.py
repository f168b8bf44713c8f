"""OpenAPI descriptions of the answers endpoints give besides their main one."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_WHY = {
    400: "Malformed JSON or an invalid cursor (invalid-request).",
    401: "Missing, unknown or revoked token (unauthorized).",
    403: "The token's role is too low (forbidden).",
    404: "No such entity (not-found) or team (team-not-found).",
    405: "File mode: the config comes from a file (read-only).",
    409: "The entity exists (already-exists) or the change would break a reference (conflict).",
    412: "If-Match or If-None-Match does not hold (precondition-failed).",
    413: "The body is larger than 16 MiB (content-too-large).",
    422: "The body or the resulting config is invalid (invalid-request, invalid-config).",
    500: "A fault in the admin API (internal); nothing internal is shown.",
}
READ = (400, 401, 403, 404, 422, 500)
WRITE = (*READ, 405, 409, 412, 413)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The problem+json answers ``statuses`` (READ or WRITE when none is named)."""
    return {
        status: {
            "description": _WHY.get(status, HTTPStatus(status).phrase),
            "content": {"application/problem+json": {"schema": PROBLEM_REF}},
        }
        for status in statuses or READ
    }


def with_etag(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {
            "ETag": {"description": "Strong ETag of the entity.", "schema": {"type": "string"}}
        },
    }


def json_body(ref: str, media_type: str = "application/json") -> dict[str, Any]:
    """A request body documented by the schema ``ref`` (components/schemas)."""
    return {
        "requestBody": {
            "required": True,
            "content": {media_type: {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }
    }
