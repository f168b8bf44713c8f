"""The refusals of resource routes, all answered as problem documents.

HTTPError (quiver.errors)
├── InvalidRequest          400 a query parameter or body that cannot be read
├── ItemNotFound            404 no such item (or parent item)
├── Conflict                409 a unique value taken, children in the way, a failed test
├── PreconditionFailed      412 If-Match names another version
├── UnsupportedMediaType    415 a body in a content type the method does not take
├── Unprocessable           422 a body that breaks the declared fields (with pointers)
└── StorageFailed           500 the database failed; its text stays in the log
"""

from __future__ import annotations

from quiver.errors import ClientError, HTTPError, NotFound, ServerError


class InvalidRequest(ClientError):
    status_code = 400
    title = "Bad Request"
    slug = "invalid-request"


class ItemNotFound(NotFound):
    slug = "not-found"


class Conflict(ClientError):
    status_code = 409
    title = "Conflict"
    slug = "conflict"


class PreconditionFailed(ClientError):
    status_code = 412
    title = "Precondition Failed"
    slug = "precondition-failed"


class UnsupportedMediaType(ClientError):
    status_code = 415
    title = "Unsupported Media Type"
    slug = "unsupported-media-type"


class Unprocessable(ClientError):
    status_code = 422
    title = "Unprocessable Content"
    slug = "validation-failed"


class PreconditionRequired(ClientError):
    status_code = 428
    title = "Precondition Required"
    slug = "precondition-required"


class StorageFailed(ServerError):
    status_code = 500
    title = "Internal Server Error"
    slug = "storage-failed"


def invalid(errors: list[dict[str, str]], status: type[HTTPError] = Unprocessable) -> HTTPError:
    """A refusal listing ``{pointer, detail}`` per failing part of a body."""
    first = errors[0]
    detail = f"{first['pointer'] or 'the body'}: {first['detail']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    return status(detail, extensions={"errors": errors})
