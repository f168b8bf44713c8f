"""The answers of ``request-validator``: typed HTTP errors of Quiver's one hierarchy."""

from __future__ import annotations

from quiver import errors
from quiver.errors import BadRequest, NotFound
from quiver.plugins.request_validator.schemas import MAX_VIOLATIONS, Violation


class InvalidRequest(BadRequest):
    """400: the request does not match its schema; the problem document's
    ``violations`` member lists each mismatch (RFC 9457 §3.2 extension member)."""

    slug = "invalid-request"
    # well framed, only refused: the connection can carry the next request
    close_connection = False

    def __init__(self, found: list[Violation]) -> None:
        count = len(found)
        listed = found[:MAX_VIOLATIONS]
        if count > MAX_VIOLATIONS:
            detail = (
                f"the request breaks its schema in {count} places; "
                f"the first {MAX_VIOLATIONS} are listed"
            )
        elif count == 1:
            detail = "the request breaks its schema in 1 place"
        else:
            detail = f"the request breaks its schema in {count} places"
        super().__init__(detail, extensions={"violations": listed})
        self.violations = listed


class UnknownOperation(NotFound):
    """404: the OpenAPI document has no operation for the request's path."""

    slug = "unknown-operation"


class MethodNotAllowed(errors.MethodNotAllowed):
    """405: the path is in the OpenAPI document, the method is not; ``Allow`` lists
    those it has (RFC 9110 §15.5.6)."""

    def __init__(self, detail: str, allowed: list[str]) -> None:
        super().__init__(detail, headers=((b"Allow", ", ".join(allowed).encode("latin-1")),))
