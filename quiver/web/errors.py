"""How a page stops: a typed error rendered as a friendly HTML page with the request id.

A page handler (or one of its dependencies) raises a :class:`PageError` subclass to
refuse, or :class:`Redirect` to send the browser elsewhere.  Every page route is a
:class:`PageRoute`, the pages' one fault boundary: what a handler raises that is no
page error is logged once with the request id and answered with the 500 page, never
with a traceback.  Paths under the surfaces that match no page (404) or no method
(405) get the same pages (:func:`install_error_pages`); the JSON API keeps its
``application/problem+json``.

    raise PageNotFound("There is no app named 'billing' in your team.")
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from quiver.admin.problems import ApiProblem, request_id
from quiver.web.templates import SURFACE_NAMES, Templates

_log = logging.getLogger("quiver.web")


class PageError(Exception):
    """Stops a page with an error page: ``status``, a ``title`` and what to do."""

    status = 500
    title = "Something went wrong"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class BadForm(PageError):
    status = 400
    title = "The form could not be read"


class CsrfRefused(PageError):
    """The form's CSRF token or its Origin is not this site's own."""

    status = 403
    title = "This form was not accepted"


class NoAccess(PageError):
    status = 403
    title = "You do not have access to this page"


class PageNotFound(PageError):
    status = 404
    title = "Page not found"


class Redirect(Exception):  # (not an error: where the browser goes instead)
    """Send the browser to ``url`` (303: the next request is a GET)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def error_page(
    request: Request,
    status: int,
    title: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """The error page: what happened, what to do, and the request id to quote."""
    templates: Templates = request.app.state.web.templates
    rid = request_id(request)
    surface = "console" if request.url.path.startswith("/console") else "portal"
    return templates.render(
        request,
        "error.html",
        {
            "surface": surface,
            "surface_name": SURFACE_NAMES[surface],
            "nav": (),
            "who": None,
            "title": title,
            "status": status,
            "phrase": HTTPStatus(status).phrase,
            "message": message,
            "request_id": rid,
        },
        status=status,
        headers=headers,
    )


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    """A page: its errors are pages, and whatever else it raises is a logged 500."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Redirect as exc:
                return RedirectResponse(exc.url, status_code=303)
            except PageError as exc:
                return error_page(request, exc.status, exc.title, exc.message, exc.headers)
            except RequestValidationError:
                message = "The address or the form has a value this page cannot use."
                return error_page(request, 400, "This request could not be read", message)
            except StarletteHTTPException as exc:
                return _http_page(request, exc)
            except Exception:
                _log.exception("page %s failed (request %s)", request.url.path, request_id(request))
                return _fault_page(request)

        return guarded


def install_error_pages(app: FastAPI, prefixes: tuple[str, ...]) -> None:
    """Answer 404 and 405 under ``prefixes`` with pages; elsewhere as before."""
    previous = app.exception_handlers[StarletteHTTPException]

    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, StarletteHTTPException) and _under(request.url.path, prefixes):
            return _http_page(request, exc)
        answer = previous(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        assert isinstance(answer, Response)
        return answer

    app.add_exception_handler(StarletteHTTPException, handle)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _http_page(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404:
        message = "There is nothing at this address. Check the link, or go back to the start."
        return error_page(request, 404, "Page not found", message)
    if exc.status_code == 405:
        message = f"This page does not take {request.method} requests."
        return error_page(request, 405, "That cannot be done here", message)
    if exc.status_code >= 500:
        return _fault_page(request)
    return error_page(request, exc.status_code, "This request could not be served", str(exc.detail))


def _fault_page(request: Request) -> Response:
    message = (
        "Quiver failed to show this page. Nothing you did caused it; try again, and if it "
        "keeps happening give your operator the request id below."
    )
    return error_page(request, 500, "Something went wrong", message)


class Conflict(PageError):
    status = 409
    title = "This was changed meanwhile"


#: why a page cannot change what a config file declares
READ_ONLY = (
    "This gateway's config comes from a file ({detail}), so pages cannot change it. "
    "Apps, keys, subscriptions and rollbacks are made in these pages when Quiver runs "
    "in store mode (quiver serve without a config file); with a file, they are "
    "written in the file."
)


def refusal(problem: ApiProblem) -> str:
    """What the admin API's logic refused, as a sentence for a page."""
    if problem.slug == "read-only":
        return READ_ONLY.format(detail=problem.detail)
    detail = problem.detail
    return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")


def page_error(problem: ApiProblem) -> PageError:
    """The page that tells what the admin API's logic refused."""
    message = refusal(problem)
    if problem.status == 404:
        return PageNotFound(message)
    if problem.status == 403:
        return NoAccess(message)
    if problem.status == 409:
        return Conflict(message)
    error = PageError(message)
    error.status = problem.status if 400 <= problem.status < 600 else 500
    error.title = "This could not be done"
    return error
