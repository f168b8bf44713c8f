"""The portal's apps (``/portal/apps``) and subscription requests
(``/portal/subscriptions``).

An app is a consumer of the developer's team with one ``key-auth`` key.  Creating it
and rotating or revoking its key are writes of the team's declaration through the admin API's
:func:`quiver.admin.writes.commit` (a revision each); the store keeps only the key's
SHA-256 (``key_hash``), so the key is on the page that answers the form and nowhere
else, ever.  Rotating replaces the key: the old one stops working with the revision.
Viewers see the apps, not the buttons, and a form they post anyway gets the 403 page.
An app's page also shows its usage (quiver.web.portal_usage).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quiver.accounts.memberships import allows
from quiver.admin.auth import is_name
from quiver.admin.problems import ApiProblem
from quiver.admin.writes import commit, find
from quiver.store import Current
from quiver.store import subscriptions as requests
from quiver.web.errors import PageNotFound, PageRoute, Redirect, page_error, refusal
from quiver.web.forms import FormState, read_form
from quiver.web.identity import PortalUser, SignedIn
from quiver.web.pages import render, store_of
from quiver.web.paging import Page
from quiver.web.portal_common import NAV, acting, declarations_of, require_developer, working_team
from quiver.web.portal_usage import usage
from quiver.web.security import check_post
from quiver.web.windows import WINDOWS, Window

router = APIRouter(route_class=PageRoute, include_in_schema=False)  # (under /portal)
_KEY_AUTH = "key-auth"


def new_key() -> str:
    """An API key: 256 random bits, with a prefix that says what it is."""
    return "qk_" + secrets.token_urlsafe(32)


@router.get("/apps")
def apps(request: Request, who: PortalUser, team: str = "", page: int = 1) -> Response:
    working, role = working_team(who, team or None)
    return _apps_page(request, who, working, allows(role, "developer"), FormState(), page)


@router.post("/apps")
async def create_app(request: Request, who: PortalUser) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    team, _ = working_team(who, fields.get("team"))
    require_developer(who, team)
    name = fields.get("name", "").strip()
    state = FormState.of(fields, "name")
    if not is_name(name):
        state.errors["name"] = (
            "Use lowercase letters, digits and '-' (starting with a letter), e.g. my-shop."
        )
        return _apps_page(request, who, team, True, state, 1, status=400)
    key = new_key()

    def mutate(current: Current) -> object:
        if find(current.document, "consumers", name) is not None:
            raise _Taken
        consumers = current.document.setdefault("consumers", [])
        consumers.append({"name": name, "credentials": {_KEY_AUTH: [{"key": key}]}})
        return current.document

    try:
        await run_in_threadpool(
            commit, acting(request, who, team), mutate, f"portal: create app {name}"
        )
    except _Taken:
        state.errors["name"] = f"Team {team} has an app called {name} already."
        return _apps_page(request, who, team, True, state, 1, status=400)
    except ApiProblem as exc:
        state.message = refusal(exc)
        return _apps_page(request, who, team, True, state, 1, status=400)
    return _key_page(request, who, team, name, key, rotated=False)


@router.get("/apps/{name}")
def app_page(
    request: Request, who: PortalUser, name: str, team: str = "", window: Window = "24h"
) -> Response:
    working, role = working_team(who, team or None)
    consumer = _app(request, working, name)
    subscriptions = [
        item
        for item in requests.listed(store_of(request), working, consumer=name)
        if item.team == working
    ]
    return render(
        request,
        "portal",
        "portal/app.html",
        title=name,
        who=who,
        nav=NAV,
        team=working,
        app=consumer,
        keys=len(_keys(consumer)),
        revoked=bool(request.query_params.get("revoked")),
        subscriptions=subscriptions,
        can_change=allows(role, "developer"),
        usage=usage(request, working, name, window),
        windows=WINDOWS,
    )


@router.post("/apps/{name}/rotate")
async def rotate(request: Request, who: PortalUser, name: str) -> Response:
    """A new key for the app (the old one, if any, stops working), shown once."""
    team, app = await _posted_app(request, who, name)
    had_key = bool(_keys(app))
    key = new_key()

    def change(consumers: list[dict[str, Any]], index: int) -> None:
        consumers[index].setdefault("credentials", {})[_KEY_AUTH] = [{"key": key}]

    verb = "rotate" if had_key else "create"
    await _change_app(request, who, team, name, change, f"{verb} the key of app {name}")
    return _key_page(request, who, team, name, key, rotated=True, replaced=had_key)


@router.post("/apps/{name}/revoke")
async def revoke(request: Request, who: PortalUser, name: str) -> Response:
    """Take the app's key away: it stops working with the revision; the app stays,
    with its subscriptions, until a new key is made ("Create key")."""
    team, _ = await _posted_app(request, who, name)

    def change(consumers: list[dict[str, Any]], index: int) -> None:
        credentials = consumers[index].get("credentials") or {}
        credentials.pop(_KEY_AUTH, None)
        if not credentials:
            consumers[index].pop("credentials", None)

    await _change_app(request, who, team, name, change, f"revoke the key of app {name}")
    raise Redirect(f"/portal/apps/{name}?team={team}&revoked=1")


@router.post("/apps/{name}/delete")
async def delete(request: Request, who: PortalUser, name: str) -> Response:
    team, _ = await _posted_app(request, who, name)

    def change(consumers: list[dict[str, Any]], index: int) -> None:
        del consumers[index]

    await _change_app(request, who, team, name, change, f"delete app {name}")
    raise Redirect(f"/portal/apps?team={team}&deleted={name}")


async def _posted_app(request: Request, who: SignedIn, name: str) -> tuple[str, dict[str, Any]]:
    """The team and the app that a developer's form is about (its CSRF token, the
    person's role and the app checked)."""
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    team, _ = working_team(who, fields.get("team"))
    require_developer(who, team)
    return team, _app(request, team, name)


async def _change_app(
    request: Request,
    who: SignedIn,
    team: str,
    name: str,
    change: Callable[[list[dict[str, Any]], int], None],
    what: str,
) -> None:
    """Apply ``change`` to the team's consumers (with the app's index) as one revision
    saying ``what``; PageNotFound when the app went meanwhile."""

    def mutate(current: Current) -> object:
        found = find(current.document, "consumers", name)
        if found is None:
            raise PageNotFound(f"Team {team} has no app {name}.")
        change(current.document["consumers"], found[0])
        return current.document

    try:
        await run_in_threadpool(commit, acting(request, who, team), mutate, f"portal: {what}")
    except ApiProblem as exc:
        raise page_error(exc) from None


@router.get("/subscriptions")
def subscriptions(request: Request, who: PortalUser, team: str = "", page: int = 1) -> Response:
    working, _ = working_team(who, team or None)
    found = [item for item in requests.listed(store_of(request), working) if item.team == working]
    found.sort(key=lambda item: item.id, reverse=True)
    return render(
        request,
        "portal",
        "portal/subscriptions.html",
        title="Subscriptions",
        who=who,
        nav=NAV,
        team=working,
        teams=who.team_roles(),
        page=Page.of(found, page),
        requested=request.query_params.get("requested"),
    )


class _Taken(Exception):
    """The team has an app of that name."""


def _app(request: Request, team: str, name: str) -> dict[str, Any]:
    found = find(declarations_of(request).read(team).document, "consumers", name)
    if found is None:
        raise PageNotFound(f"Team {team} has no app {name}.")
    return found[1]


def _apps_page(
    request: Request,
    who: SignedIn,
    team: str,
    can_change: bool,
    form: FormState,
    page: int,
    status: int = 200,
) -> Response:
    document = declarations_of(request).read(team).document
    consumers = [c for c in document.get("consumers") or [] if isinstance(c, dict)]
    consumers.sort(key=lambda c: str(c.get("name")))
    return render(
        request,
        "portal",
        "portal/apps.html",
        title="Apps",
        who=who,
        nav=NAV,
        team=team,
        teams=who.team_roles(),
        page=Page.of(consumers, page),
        can_change=can_change,
        form=form,
        deleted=request.query_params.get("deleted"),
        status=status,
    )


def _keys(consumer: dict[str, Any]) -> list[Any]:
    """The app's ``key-auth`` keys (as stored: their hashes)."""
    return list((consumer.get("credentials") or {}).get(_KEY_AUTH) or [])


def _key_page(
    request: Request,
    who: SignedIn,
    team: str,
    name: str,
    key: str,
    *,
    rotated: bool,
    replaced: bool = False,
) -> Response:
    return render(
        request,
        "portal",
        "portal/key.html",
        title=f"The key of {name}",
        who=who,
        nav=NAV,
        team=team,
        app=name,
        key=key,
        rotated=rotated,
        replaced=replaced,
        status=200 if rotated else 201,
    )
