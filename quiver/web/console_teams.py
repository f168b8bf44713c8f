"""The console's teams and members (``/console/teams``, ``/console/teams/TEAM``).

Everybody signed in sees the teams they may see, with their role and how many
members each has; a platform operator also creates teams and deletes empty ones.
A team's page lists its members to anybody with a role there; its owners (and
operators) add members, change their roles and remove them.  The rules are
:mod:`quiver.accounts.memberships`' own, kept in the transaction that changes the
membership: a team always keeps an owner.  A form somebody below owner posts
anyway answers the 403 page; a team they may not see answers the 404 page, as one
that does not exist.

Every form is a POST with the session's CSRF token.  A change done answers a 303
back to the page, whose message is worked out from the state it shows (so a
crafted link can make it say nothing that is not true); a change refused shows
the page again, its error next to the field (400).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quiver.accounts.memberships import (
    TEAM_ROLES,
    LastOwner,
    Member,
    NoAccount,
    TeamRole,
    assign_role,
    member_counts,
    remove_member,
    team_members,
)
from quiver.admin.auth import is_name
from quiver.errors import AccountError
from quiver.store import Store, UnknownTeam
from quiver.store.teams import TeamExists, TeamNotEmpty, create_team, delete_team
from quiver.web.console_nav import NAV
from quiver.web.errors import BadForm, NoAccess, PageNotFound, PageRoute, Redirect
from quiver.web.forms import FormState, read_form
from quiver.web.identity import ConsoleUser, SignedIn, require_role
from quiver.web.pages import render, store_of
from quiver.web.paging import PAGE_SIZE, Page
from quiver.web.security import check_post

#: included in the console's router, under ``/console``
router = APIRouter(route_class=PageRoute, include_in_schema=False)
_NAME_RULE = (
    "Use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit "
    "(up to 64 characters)."
)


@dataclass(frozen=True)
class TeamRow:
    """A team as listed: the signed-in person's role there and its member count."""

    name: str
    role: TeamRole
    members: int


@router.get("/teams")
def teams_page(
    request: Request, who: ConsoleUser, page: int = 1, done: str = "", team: str = ""
) -> Response:
    return _teams(request, who, page, message=_teams_message(who, done, team))


@router.post("/teams")
async def create(request: Request, who: ConsoleUser) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    _require_operator(who)
    form = FormState.of(fields, "name")
    name = form.values["name"].strip()
    if not name:
        form.errors["name"] = "Enter a team name."
    elif not is_name(name):
        form.errors["name"] = _NAME_RULE
    else:
        try:
            await run_in_threadpool(create_team, store_of(request), name)
        except TeamExists:
            form.errors["name"] = f"A team named {name} exists already."
    if form.errors:
        return await run_in_threadpool(_teams, request, who, 1, None, form, {}, 400)
    raise Redirect("/console/teams?" + urlencode({"done": "created", "team": name}))


@router.post("/teams/{team}/delete")
async def delete(request: Request, who: ConsoleUser, team: str) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    await run_in_threadpool(require_role, who, team, "viewer")  # (404 before 403)
    _require_operator(who)
    try:
        await run_in_threadpool(delete_team, store_of(request), team)
    except UnknownTeam:
        raise PageNotFound(f"There is no team {team!r}.") from None
    except TeamNotEmpty as exc:
        errors = {team: _sentence(str(exc))}
        number = _page_of([name for name, _ in who.team_roles()], team)
        return await run_in_threadpool(_teams, request, who, number, None, None, errors, 400)
    raise Redirect("/console/teams?" + urlencode({"done": "deleted", "team": team}))


@router.get("/teams/{team}")
def team_page(
    request: Request, who: ConsoleUser, team: str, page: int = 1, done: str = "", email: str = ""
) -> Response:
    require_role(who, team, "viewer")
    members = team_members(store_of(request), team)
    return _team(request, who, team, members, page, message=_team_message(members, done, email))


@router.post("/teams/{team}/members")
async def add_member(request: Request, who: ConsoleUser, team: str) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    await run_in_threadpool(require_role, who, team, "owner")
    form = FormState.of(fields, "email", "role")
    email = form.values["email"].strip().lower()
    role = _role(form.values["role"])
    store = store_of(request)
    members = await run_in_threadpool(team_members, store, team)
    if not email:
        form.errors["email"] = "Enter the email of the person to add."
    elif any(member.email == email for member in members):
        form.errors["email"] = f"{email} is a member already: change their role in the list."
    else:
        try:
            await run_in_threadpool(assign_role, store, team, email, role, by="owner")
        except AccountError as exc:
            form.refuse(exc)
    if form.errors:
        return await run_in_threadpool(_team, request, who, team, members, 1, None, form, {}, 400)
    raise Redirect(_back(team, "added", email))


@router.post("/teams/{team}/members/role")
async def change_role(request: Request, who: ConsoleUser, team: str) -> Response:
    fields, email = await _owners_form(request, who, team)
    role = _role(fields.get("role", ""))
    try:
        await run_in_threadpool(_change, store_of(request), team, email, role)
    except LastOwner as exc:
        return await run_in_threadpool(_refused_in_row, request, who, team, email, exc)
    raise Redirect(_back(team, "changed", email))


@router.post("/teams/{team}/members/remove")
async def remove(request: Request, who: ConsoleUser, team: str) -> Response:
    _, email = await _owners_form(request, who, team)
    try:
        await run_in_threadpool(_change, store_of(request), team, email, None)
    except LastOwner as exc:
        return await run_in_threadpool(_refused_in_row, request, who, team, email, exc)
    if who.user is not None and who.user.email == email and who.everywhere is None:
        raise Redirect("/console/teams?" + urlencode({"done": "left", "team": team}))
    raise Redirect(_back(team, "removed", email))


async def _owners_form(request: Request, who: SignedIn, team: str) -> tuple[dict[str, str], str]:
    """A member's row form, from an owner of ``team`` (CSRF and role checked): its
    fields, and the member's email."""
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    await run_in_threadpool(require_role, who, team, "owner")
    return fields, fields.get("email", "").strip().lower()


def _refused_in_row(
    request: Request, who: SignedIn, team: str, email: str, error: LastOwner
) -> Response:
    """The team's page at the member's row, the error shown in it (400)."""
    members = team_members(store_of(request), team)
    number = _page_of([member.email for member in members], email)
    return _team(request, who, team, members, number, None, None, {email: str(error)}, 400)


def _change(store: Store, team: str, email: str, role: TeamRole | None) -> None:
    """Change a member's role, or remove them (``role`` None); PageNotFound for
    somebody who is no member (these forms are the list's rows: they never add)."""
    if not any(member.email == email for member in team_members(store, team)):
        raise PageNotFound(f"Team {team} has no member {email!r}.")
    try:
        if role is None:
            remove_member(store, team, email, by="owner")
        else:
            assign_role(store, team, email, role, by="owner")
    except (UnknownTeam, NoAccount):  # (gone meanwhile)
        raise PageNotFound(f"Team {team} has no member {email!r}.") from None


def _require_operator(who: SignedIn) -> None:
    if not who.operator:
        raise NoAccess("Only a platform operator creates and deletes teams.")


def _role(text: str) -> TeamRole:
    if text not in TEAM_ROLES:
        raise BadForm("Choose a role: owner, admin, developer or viewer.")
    return text


def _back(team: str, done: str, email: str) -> str:
    return f"/console/teams/{team}?" + urlencode({"done": done, "email": email})


def _page_of(keys: list[str], key: str) -> int:
    """The page of a table where the row ``key`` is (1 when it is in none)."""
    return keys.index(key) // PAGE_SIZE + 1 if key in keys else 1


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _teams_message(who: SignedIn, done: str, team: str) -> str | None:
    """What the teams page says after a change: only what is true now."""
    seen = who.role_in(team) is not None if team else False
    if done == "created" and seen:
        return f"Created team {team}. Add its first members on its page."
    if done == "deleted" and team and not seen:
        return f"Deleted team {team}, with its memberships, tokens and revisions."
    if done == "left" and team and not seen:
        return f"You are no longer a member of team {team}."
    return None


def _team_message(members: list[Member], done: str, email: str) -> str | None:
    """What a team's page says after a change: only what is true now."""
    found = next((member for member in members if member.email == email), None)
    if done == "added" and found is not None:
        return f"Added {email} as {found.role}."
    if done == "changed" and found is not None:
        return f"{email} is now {found.role}."
    if done == "removed" and email and found is None:
        return f"Removed {email} from the team."
    return None


def _teams(
    request: Request,
    who: SignedIn,
    number: int,
    message: str | None = None,
    form: FormState | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    counts = member_counts(store_of(request))
    rows = [TeamRow(name, role, counts.get(name, 0)) for name, role in who.team_roles()]
    return render(
        request,
        "console",
        "console/teams.html",
        title="Teams",
        who=who,
        nav=NAV,
        teams=Page.of(rows, number),
        form=form or FormState(),
        errors=errors or {},
        message=message,
        status=status,
    )


def _team(
    request: Request,
    who: SignedIn,
    team: str,
    members: list[Member],
    number: int,
    message: str | None = None,
    form: FormState | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    role = require_role(who, team, "viewer")
    return render(
        request,
        "console",
        "console/team.html",
        title=f"Team {team}",
        who=who,
        nav=NAV,
        team=team,
        role=role,
        manages=role == "owner",
        members=Page.of(members, number),
        roles=TEAM_ROLES,
        form=form or FormState(values={"role": "developer"}),
        errors=errors or {},
        message=message,
        status=status,
    )
