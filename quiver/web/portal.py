"""The developer portal's pages (``/portal``): sign-up, sign-in, sign-out and home.

The catalog, apps and subscriptions pages are routes of :data:`router` too: a page
takes ``who: PortalUser`` (a visitor who is not signed in is sent to sign in), checks
the team role it needs with :func:`quiver.web.identity.require_role`, renders a
template extending ``base.html`` with :func:`quiver.web.pages.render`, and names
itself in :data:`NAV` to appear in the navigation.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quiver.accounts.passwords import check_password
from quiver.accounts.signin import sign_up
from quiver.accounts.users import normalize_email
from quiver.errors import AccountError
from quiver.web.errors import PageRoute, Redirect
from quiver.web.forms import FormState, read_form
from quiver.web.identity import MaybePortalUser, PortalUser
from quiver.web.pages import render, store_of
from quiver.web.portal_apps import router as apps_router
from quiver.web.portal_catalog import router as catalog_router
from quiver.web.portal_common import NAV, declarations_of, working_team
from quiver.web.portal_tryit import router as tryit_router
from quiver.web.security import FORM_COOKIE, check_post
from quiver.web.signing import (
    Refused,
    anonymous_page,
    next_path,
    password_sign_in,
    sign_out,
    start_session,
)

router = APIRouter(prefix="/portal", route_class=PageRoute, include_in_schema=False)
router.include_router(catalog_router)  # /portal/apis
router.include_router(tryit_router)  # /portal/apis/NAME/try
router.include_router(apps_router)  # /portal/apps, /portal/subscriptions
__all__ = ["NAV", "router"]


@router.get("")
def home(request: Request, who: PortalUser) -> Response:
    teams = who.team_roles()
    apps: list[str] = []
    team = ""
    if teams:
        team, _ = working_team(who, None)
        document = declarations_of(request).read(team).document
        apps = sorted(str(c["name"]) for c in document.get("consumers") or [])
    return render(
        request,
        "portal",
        "portal/home.html",
        title="Home",
        who=who,
        nav=NAV,
        teams=teams,
        team=team,
        apps=apps,
    )


@router.get("/signup")
def signup_page(request: Request, who: MaybePortalUser) -> Response:
    if who is not None:
        raise Redirect("/portal")
    return _form_page(request, "portal/signup.html", "Sign up", FormState())


@router.post("/signup")
async def signup(request: Request) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), request.cookies.get(FORM_COOKIE))
    state = FormState.of(fields, "email", "name")
    for check, value in ((normalize_email, "email"), (check_password, "password")):
        try:
            check(fields.get(value, ""))
        except AccountError as exc:
            state.refuse(exc)
    if state.errors:  # every field's error at once, before the slow part
        return _form_page(request, "portal/signup.html", "Sign up", state, status=400)
    try:
        made = await run_in_threadpool(
            sign_up,
            store_of(request),
            fields["email"],
            fields["password"],
            fields.get("name", ""),
        )
    except AccountError as exc:
        return _form_page(request, "portal/signup.html", "Sign up", state.refuse(exc), status=400)
    return await run_in_threadpool(
        start_session, request, "portal", "/portal", user_id=made.user.id
    )


@router.get("/signin")
def signin_page(request: Request, who: MaybePortalUser, next: str = "") -> Response:
    if who is not None:
        raise Redirect(next_path("portal", next))
    state = FormState(values={"next": next})
    if request.query_params.get("signed_out"):
        state.message = "You are signed out."
    return _form_page(request, "portal/signin.html", "Sign in", state, notice=True)


@router.post("/signin")
async def signin(request: Request) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), request.cookies.get(FORM_COOKIE))
    state = FormState.of(fields, "email", "next")
    user = await password_sign_in(request, fields, state)
    if isinstance(user, Refused):
        return _form_page(
            request, "portal/signin.html", "Sign in", state, user.status, user.headers
        )
    then = next_path("portal", fields.get("next"))
    return await run_in_threadpool(start_session, request, "portal", then, user_id=user.id)


@router.post("/signout")
async def signout(request: Request) -> Response:
    return await sign_out(request, "portal")


def _form_page(
    request: Request,
    template: str,
    title: str,
    state: FormState,
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    notice: bool = False,
) -> Response:
    """A sign-in or sign-up page."""
    return anonymous_page(
        request,
        "portal",
        template,
        title=title,
        form=state,
        notice=notice,
        status=status,
        headers=headers,
    )
