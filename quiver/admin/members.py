"""``/teams/{name}/members``: who belongs to a team, as what.

A member is a user account (made at the portal's sign-up, or with
``quiver admin user new``) with a role in the team: ``owner``, ``admin``,
``developer`` or ``viewer``.  Any token that sees the team lists its members.
Changing them takes an ``admin`` token: one scoped to no team manages every team
as an owner would; one scoped to the team manages the members below owner (it
neither grants the owner role nor changes an owner).  A team always keeps an owner:
demoting or removing the last one is 409 ``conflict``.  A team-scoped token is
told about another team exactly what it is told about a team that does not exist.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response

from quiver.accounts.memberships import (
    LastOwner,
    NoAccount,
    OwnerOnly,
    TeamRole,
    assign_role,
    remove_member,
    team_members,
)
from quiver.accounts.users import user_by_email
from quiver.admin.auth import caller, is_name
from quiver.admin.pagination import Cursor, Limit, paginate
from quiver.admin.problems import ApiProblem
from quiver.admin.responses import problems
from quiver.admin.schemas import MemberDoc, MemberPage, MemberRole
from quiver.store import Store, UnknownTeam
from quiver.store.teams import team_exists
from quiver.store.tokens import TokenInfo

api = APIRouter(tags=["teams and tokens"])

TeamName = Annotated[str, Path(description="The team.")]
Email = Annotated[str, Path(description="The member's email (any case).")]
Caller = Annotated[TokenInfo, Depends(caller)]
_CHANGE_PROBLEMS = problems(400, 401, 403, 404, 409, 422, 500)
_CHANGE_PROBLEMS[403] = {
    **_CHANGE_PROBLEMS[403],
    "description": "The token is no admin, or a team's admin token would grant the owner "
    "role or change an owner (forbidden).",
}
_CHANGE_PROBLEMS[404] = {
    **_CHANGE_PROBLEMS[404],
    "description": "No user with that email, or not a member (not-found); no such team "
    "(team-not-found).",
}
_CHANGE_PROBLEMS[409] = {
    **_CHANGE_PROBLEMS[409],
    "description": "The team would be left without an owner (conflict).",
}


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _team(store: Store, token: TokenInfo, name: str) -> str:
    """``name``, when the token may see that team; 404 as for a missing team else."""
    if (token.team is not None and token.team != name) or not is_name(name):
        raise _no_team(name)
    if not team_exists(store, name):
        raise _no_team(name)
    return name


def _manager(token: TokenInfo) -> TeamRole:
    """The team role a token manages members with; 403 below ``admin``."""
    if token.role != "admin":
        raise ApiProblem(
            403,
            "forbidden",
            f"the token {token.name!r} is a {token.role}; managing members needs admin",
        )
    return "owner" if token.team is None else "admin"


def _no_team(name: str) -> ApiProblem:
    return ApiProblem(404, "team-not-found", f"there is no team {name!r}")


@api.get(
    "/teams/{name}/members",
    response_model=MemberPage,
    responses=problems(),
    summary="List a team's members",
)
def get_members(
    token: Caller, request: Request, name: TeamName, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    store = _store(request)
    team = _team(store, token, name)
    page = paginate(team_members(store, team), lambda member: member.email, limit, cursor)
    data = [MemberDoc(email=m.email, name=m.display_name, role=m.role) for m in page.items]
    return {"data": data, "next": page.next}


@api.put(
    "/teams/{name}/members/{email}",
    response_model=MemberDoc,
    responses={
        200: {"description": "The member's role was changed (or was that already)."},
        201: {
            "model": MemberDoc,
            "description": "The user was added to the team.",
            "headers": {
                "Location": {"description": "The member's address.", "schema": {"type": "string"}}
            },
        },
        **_CHANGE_PROBLEMS,
    },
    summary="Add a member or change their role",
)
def put_member(
    token: Caller, request: Request, name: TeamName, email: Email, body: MemberRole
) -> Response:
    manager = _manager(token)
    store = _store(request)
    team = _team(store, token, name)
    try:
        before = assign_role(store, team, email, body.role, by=manager)
    except (NoAccount, OwnerOnly, LastOwner, UnknownTeam) as exc:
        raise _refusal(exc, team, email) from None
    found = user_by_email(store, email)
    if found is None:  # deleted meanwhile
        raise _refusal(NoAccount(email), team, email)
    user = found[0]
    document = MemberDoc(email=user.email, name=user.display_name, role=body.role).model_dump()
    if before is None:
        location = f"/teams/{team}/members/{quote(user.email, safe='@')}"
        return JSONResponse(document, 201, headers={"Location": location})
    return JSONResponse(document, 200)


@api.delete(
    "/teams/{name}/members/{email}",
    status_code=204,
    response_class=Response,
    responses=_CHANGE_PROBLEMS,
    summary="Remove a member from a team",
)
def delete_member(token: Caller, request: Request, name: TeamName, email: Email) -> Response:
    manager = _manager(token)
    store = _store(request)
    team = _team(store, token, name)
    try:
        removed = remove_member(store, team, email, by=manager)
    except (NoAccount, OwnerOnly, LastOwner, UnknownTeam) as exc:
        raise _refusal(exc, team, email) from None
    if removed is None:
        raise ApiProblem(404, "not-found", f"{email!r} is not a member of team {team!r}")
    return Response(status_code=204)


def _refusal(error: Exception, team: str, email: str) -> ApiProblem:
    """The problem telling why a change of members was refused."""
    if isinstance(error, UnknownTeam):  # deleted meanwhile
        return _no_team(team)
    if isinstance(error, NoAccount):
        return ApiProblem(404, "not-found", f"there is no user with the email {email!r}")
    if isinstance(error, OwnerOnly):
        return ApiProblem(
            403,
            "forbidden",
            "only an owner (an admin token without a team) grants the owner role or "
            "changes an owner's membership",
        )
    return ApiProblem(409, "conflict", f"team {team!r} must keep at least one owner")
