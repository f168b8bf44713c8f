"""Every error of the admin API as ``application/problem+json`` (RFC 9457).

Endpoints raise :class:`ApiProblem`; the handlers installed by
:func:`install_handlers` render it, and turn what FastAPI and Starlette raise
themselves (an unknown path, a wrong method, a body that is not JSON) into the
same shape.  :class:`RequestIds` gives every response its ``X-Request-ID`` and is
the one fault boundary: whatever an endpoint raises unexpectedly is logged once,
with the request id, and answered 500 with nothing of it in the body.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_TYPE = "application/problem+json"
#: the largest request body taken (a whole document of thousands of routes fits)
MAX_BODY = 16 << 20
_log = logging.getLogger("quiver.admin")

#: the slug of what Starlette answers by itself, by status
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_SLUGS = {400: "invalid-request", 404: "not-found", 405: "method-not-allowed"}


class ProblemIssue(BaseModel):
    """One problem with what was sent."""

    pointer: str | None = Field(
        None, description="RFC 6901 pointer into the request body, when the issue lies in it."
    )
    location: str | None = Field(
        None, description="Where `quiver check` would place the issue in a config file."
    )
    detail: str = Field(description="What is wrong, as `quiver check` says it.")


class Problem(BaseModel):
    """An error (RFC 9457): ``type`` is ``urn:quiver:problem:<slug>``."""

    type: str = Field(description="urn:quiver:problem:<slug>, e.g. urn:quiver:problem:not-found")
    title: str
    status: int
    detail: str
    request_id: str = Field(description="Also sent as X-Request-ID; quote it in reports.")
    errors: list[ProblemIssue] | None = Field(
        None, description="Each problem with the request body or the resulting config."
    )


class ApiProblem(Exception):
    """Stops a request with a problem document; ``slug`` names its type."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        errors: Sequence[ProblemIssue] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


def request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def problem_response(
    request_id: str,
    status: int,
    slug: str,
    detail: str,
    errors: Sequence[ProblemIssue] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:quiver:problem:{slug}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = [issue.model_dump(exclude_none=True) for issue in errors]
    return JSONResponse(body, status, headers=dict(headers or {}), media_type=PROBLEM_TYPE)


class RequestIds:
    """Tags every request and response with an id, refuses bodies over
    ``MAX_BODY`` and answers 500 for any fault."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        started = False
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY:
                state["too_large"] = True
                raise _TooLarge
            return message

        async def tagged(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            await _too_large(rid)(scope, receive, tagged)
            return
        try:
            await self.app(scope, counted, tagged)
        except Exception:
            _log.exception("admin request %s failed", rid)
            if started:
                raise
            detail = f"the request failed inside the admin API; the log has request {rid}"
            await problem_response(rid, 500, "internal", detail)(scope, receive, tagged)


class _TooLarge(Exception):
    pass


def _too_large(rid: str) -> JSONResponse:
    detail = f"the body is larger than the admin API takes ({MAX_BODY >> 20} MiB)"
    return problem_response(rid, 413, "content-too-large", detail)


def install_handlers(app: FastAPI, authenticated: Callable[[Request], bool]) -> None:
    """Render problems; a malformed request is told so only when its token is valid
    (FastAPI reads the body before any dependency runs): others get the 401."""

    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not await run_in_threadpool(authenticated, request):
            detail = "send a valid admin token as 'Authorization: Bearer <token>'"
            headers = {"WWW-Authenticate": "Bearer"}
            return problem_response(request_id(request), 401, "unauthorized", detail, (), headers)
        return _invalid(request, exc)

    app.add_exception_handler(ApiProblem, _problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid)  # type: ignore[arg-type]
    app.add_middleware(RequestIds)


async def _problem(request: Request, exc: ApiProblem) -> JSONResponse:
    return problem_response(
        request_id(request), exc.status, exc.slug, exc.detail, exc.errors, exc.headers
    )


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if request.scope.get("state", {}).get("too_large"):
        return _too_large(request_id(request))
    slug = _SLUGS.get(exc.status_code, "invalid-request" if exc.status_code < 500 else "internal")
    detail = {
        404: f"there is nothing at {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed(request))
    return problem_response(request_id(request), exc.status_code, slug, detail, headers=headers)


def _allowed(request: Request) -> list[str]:
    """Every method some route takes at the request's path (Starlette names only the
    first route's, and each of ours has one method)."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.routes
        )
    ]


def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    issues: list[ProblemIssue] = []
    status = 422
    for error in exc.errors():
        where = [str(part) for part in error.get("loc", ())]
        if error.get("type") == "json_invalid":
            status = 400
            issues.append(ProblemIssue(pointer="", detail="the body is not valid JSON"))
        elif where and where[0] == "body":
            pointer = "".join("/" + _escape(part) for part in where[1:])
            issues.append(ProblemIssue(pointer=pointer, detail=str(error.get("msg", ""))))
        else:
            name = where[-1] if where else "?"
            kind = where[0] if where else "request"
            issues.append(ProblemIssue(detail=f"{kind} parameter '{name}': {error.get('msg')}"))
    detail = "the body is not valid JSON" if status == 400 else "the request is not valid"
    return problem_response(request_id(request), status, "invalid-request", detail, issues)


def _escape(part: str) -> str:
    """An RFC 6901 reference token: ``~`` and ``/`` escaped."""
    return part.replace("~", "~0").replace("/", "~1")
