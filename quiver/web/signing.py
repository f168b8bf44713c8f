"""Starting and ending a surface's session from a page: the cookie, the redirect.

Signing in always makes a new session id (whatever session the browser had is
ended), so that an id planted before sign-in is worth nothing after it.  Where the
browser goes next is a path of the same surface (``?next=/portal/apps``), never
another site.
"""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from quiver.accounts.sessions import LIFETIME, Surface, create_session, end_session
from quiver.web.forms import read_form
from quiver.web.identity import signed_in
from quiver.web.pages import store_of
from quiver.web.security import FORM_COOKIE, SESSION_COOKIE, check_post, clear_cookie, set_cookie

_LOCAL_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")


def next_path(surface: Surface, wanted: str | None) -> str:
    """``wanted`` when it is a page of ``surface`` (no other host, no scheme), else
    the surface's home."""
    home = f"/{surface}"
    if not wanted or "//" in wanted or not _LOCAL_PATH.match(wanted):
        return home
    if wanted != home and not wanted.startswith(home + "/"):
        return home
    if wanted.rstrip("/").endswith(("/signin", "/signup", "/signout")):
        return home
    return wanted


def client_address(request: Request) -> str | None:
    """Whom failed sign-ins are counted against: the peer (the admin API is served
    directly, not behind a proxy that would hide it)."""
    return request.client.host if request.client is not None else None


def start_session(
    request: Request,
    surface: Surface,
    then: str,
    *,
    user_id: int | None = None,
    token_id: int | None = None,
) -> Response:
    """Sign the browser in to ``surface`` and send it to ``then`` (blocking: the store)."""
    store = store_of(request)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        end_session(store, previous)
    session_id, _ = create_session(store, surface, user_id=user_id, token_id=token_id)
    response = RedirectResponse(then, status_code=303)
    max_age = int(LIFETIME.total_seconds())
    set_cookie(request, response, SESSION_COOKIE, session_id, surface, max_age=max_age)
    clear_cookie(request, response, FORM_COOKIE, surface)
    return response


def end(request: Request, surface: Surface, session_id: str | None) -> Response:
    """Sign out (blocking: the store) and show the sign-in page saying so."""
    if session_id:
        end_session(store_of(request), session_id)
    response = RedirectResponse(f"/{surface}/signin?signed_out=1", status_code=303)
    clear_cookie(request, response, SESSION_COOKIE, surface)
    return response


async def sign_out(request: Request, surface: Surface) -> Response:
    """The sign-out form of either surface: its session ended (the form's token checked
    first), or only the cookie dropped when the session had ended already."""
    fields = await read_form(request)
    who = await run_in_threadpool(signed_in(surface), request)
    if who is None:  # ended already: nothing to protect, only the cookie to drop
        return end(request, surface, None)
    check_post(request, fields.get("csrf", ""), who.csrf)
    return await run_in_threadpool(end, request, surface, request.cookies.get(SESSION_COOKIE))
