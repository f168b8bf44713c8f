"""Starting and ending a surface's session from a page: the cookie, the redirect.

Signing in always makes a new session id (whatever session the browser had is
ended), so that an id planted before sign-in is worth nothing after it.  Where the
browser goes next is a path of the same surface (``?next=/portal/apps``), never
another site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from quiver.accounts.sessions import LIFETIME, Surface, create_session, end_session
from quiver.accounts.signin import AccountDisabled, Throttled, sign_in
from quiver.accounts.users import User
from quiver.errors import AccountError
from quiver.web.forms import FormState, read_form
from quiver.web.identity import signed_in
from quiver.web.pages import render, store_of
from quiver.web.security import (
    FORM_COOKIE,
    SESSION_COOKIE,
    check_post,
    clear_cookie,
    form_token,
    keep_form_token,
    set_cookie,
)

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


@dataclass(frozen=True)
class Refused:
    """A sign-in refused (what was wrong is said on the form): the status to answer
    with, and its headers."""

    status: int
    headers: dict[str, str] | None = None


async def password_sign_in(
    request: Request, fields: dict[str, str], state: FormState
) -> User | Refused:
    """The user of the posted ``email`` and ``password``; else why not, said on
    ``state`` (next to a field, or above the form), and the status to answer."""
    if not fields.get("email", "").strip():
        state.errors["email"] = "Enter your email address."
    if not fields.get("password"):
        state.errors["password"] = "Enter your password."
    if state.errors:
        return Refused(400)
    try:
        user: User = await run_in_threadpool(
            sign_in,
            store_of(request),
            fields["email"],
            fields["password"],
            client_address(request),
        )
    except Throttled as exc:
        state.refuse(exc)
        return Refused(429, {"Retry-After": str(exc.retry_after)})
    except AccountError as exc:
        state.refuse(exc)
        return Refused(403 if isinstance(exc, AccountDisabled) else 400)
    return user


def anonymous_page(
    request: Request,
    surface: Surface,
    template: str,
    *,
    title: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """A page shown before sign-in (sign-in, sign-up): its forms carry the form token
    of the visitor's browser, set in its cookie when new."""
    token = form_token(request)
    response = render(
        request,
        surface,
        template,
        title=title,
        who=None,
        form_token=token,
        status=status,
        headers=headers,
        **context,
    )
    keep_form_token(request, response, token, surface)
    return response


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
