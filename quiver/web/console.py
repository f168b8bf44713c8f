"""The operator console's pages (``/console``): sign-in, sign-out and home.

Sign in with an email and password (a platform admin, or anybody with a team
membership), or with an admin token typed in the "Admin token" field: the session
then acts with that token's role and team, and ends when the token is revoked.

Pages of the console (routes, traffic, subscription requests, teams...) are routes
of :data:`router` taking ``who: ConsoleUser``, listed in :data:`NAV`; see
:mod:`quiver.web.portal` for the pattern.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quiver.accounts.memberships import memberships_of
from quiver.accounts.signin import Throttled, sign_in_with_token
from quiver.errors import AccountError
from quiver.web import (
    console_entities,
    console_errors,
    console_revisions,
    console_subscriptions,
    console_teams,
    console_usage,
)
from quiver.web.console_nav import NAV
from quiver.web.console_traffic import traffic
from quiver.web.errors import PageRoute, Redirect
from quiver.web.forms import FormState, read_form
from quiver.web.identity import ConsoleUser, MaybeConsoleUser
from quiver.web.pages import render, store_of
from quiver.web.paging import Page
from quiver.web.security import FORM_COOKIE, check_post
from quiver.web.signing import (
    Refused,
    anonymous_page,
    client_address,
    next_path,
    password_sign_in,
    sign_out,
    start_session,
)

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)
_NO_ACCESS = (
    "This account has no access to the console: it belongs to no team. "
    "Ask a team owner to add you, or use the developer portal."
)


@router.get("")
def home(request: Request, who: ConsoleUser, page: int = 1, team: str = "") -> Response:
    teams = Page.of(who.team_roles(), page)
    return render(
        request,
        "console",
        "console/home.html",
        title="Overview",
        who=who,
        nav=NAV,
        teams=teams,
        traffic=traffic(request, who, team),
    )


@router.get("/signin")
def signin_page(request: Request, who: MaybeConsoleUser, next: str = "") -> Response:
    if who is not None:
        raise Redirect(next_path("console", next))
    state = FormState(values={"next": next})
    if request.query_params.get("signed_out"):
        state.message = "You are signed out."
    return _signin_page(request, state, FormState(), notice=True)


@router.post("/signin")
async def signin(request: Request) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), request.cookies.get(FORM_COOKIE))
    state = FormState.of(fields, "email", "next")
    user = await password_sign_in(request, fields, state)
    if isinstance(user, Refused):
        return _signin_page(request, state, FormState(), user.status, user.headers)
    store = store_of(request)
    if not user.is_admin and not await run_in_threadpool(memberships_of, store, user.id):
        state.message = _NO_ACCESS
        return _signin_page(request, state, FormState(), 403)
    then = next_path("console", fields.get("next"))
    return await run_in_threadpool(start_session, request, "console", then, user_id=user.id)


@router.post("/signin/token")
async def signin_with_token(request: Request) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), request.cookies.get(FORM_COOKIE))
    state = FormState.of(fields, "next")
    token = fields.get("token", "").strip()
    if not token:
        state.errors["token"] = "Paste an admin token (it starts with qv_)."
        return _signin_page(request, FormState(), state, 400)
    try:
        token_id, _ = await run_in_threadpool(
            sign_in_with_token, store_of(request), token, client_address(request)
        )
    except Throttled as exc:
        headers = {"Retry-After": str(exc.retry_after)}
        return _signin_page(request, FormState(), state.refuse(exc), 429, headers)
    except AccountError as exc:
        state.errors["token"] = str(exc)
        return _signin_page(request, FormState(), state, 400)
    then = next_path("console", fields.get("next"))
    return await run_in_threadpool(start_session, request, "console", then, token_id=token_id)


@router.post("/signout")
async def signout(request: Request) -> Response:
    return await sign_out(request, "console")


def _signin_page(
    request: Request,
    state: FormState,
    token_state: FormState,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    notice: bool = False,
) -> Response:
    """The sign-in page's two forms."""
    return anonymous_page(
        request,
        "console",
        "console/signin.html",
        title="Sign in",
        form=state,
        token_form=token_state,
        next=state.values.get("next") or token_state.values.get("next", ""),
        notice=notice,
        status=status,
        headers=headers,
    )


router.include_router(console_entities.router)
router.include_router(console_subscriptions.router)
router.include_router(console_revisions.router)
router.include_router(console_errors.router)
router.include_router(console_usage.router)
router.include_router(console_teams.router)
