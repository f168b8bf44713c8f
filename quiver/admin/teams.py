"""``/teams`` and ``/tokens``: managed only by an admin token scoped to no team.

A token is shown once, in the answer that creates it; listings never show a token
or its hash, and nothing here logs either.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from quiver.admin.auth import Superuser, is_name
from quiver.admin.pagination import Cursor, Limit, paginate
from quiver.admin.problems import ApiProblem, ProblemIssue
from quiver.admin.responses import problems
from quiver.admin.schemas import CreatedToken, NewToken, TeamDoc, TeamPage, TokenDoc, TokenPage
from quiver.store import Store, UnknownTeam
from quiver.store.teams import TeamExists, TeamNotEmpty, create_team, delete_team, list_teams
from quiver.store.tokens import TokenExists, create_token, list_tokens, revoke_token

api = APIRouter(tags=["teams and tokens"])


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@api.get("/teams", response_model=TeamPage, responses=problems(), summary="List teams")
def get_teams(
    _: Superuser, request: Request, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    page = paginate(list_teams(_store(request)), str, limit, cursor)
    return {"data": [{"name": name} for name in page.items], "next": page.next}


@api.post(
    "/teams",
    status_code=201,
    response_model=TeamDoc,
    responses=problems(400, 401, 403, 409, 422, 500),
    summary="Create a team",
)
def post_team(_: Superuser, request: Request, body: TeamDoc) -> Response:
    try:
        create_team(_store(request), body.name)
    except TeamExists as exc:
        raise ApiProblem(409, "already-exists", str(exc)) from None
    return JSONResponse({"name": body.name}, 201, headers={"Location": f"/teams/{body.name}"})


@api.delete(
    "/teams/{name}",
    status_code=204,
    response_class=Response,
    responses=problems(400, 401, 403, 404, 409, 422, 500),
    summary="Delete an empty team (with its tokens and revisions)",
)
def remove_team(_: Superuser, request: Request, name: str) -> Response:
    try:
        if not is_name(name):
            raise UnknownTeam(name)
        delete_team(_store(request), name)
    except UnknownTeam:
        raise ApiProblem(404, "team-not-found", f"there is no team {name!r}") from None
    except TeamNotEmpty as exc:
        raise ApiProblem(409, "conflict", str(exc)) from None
    return Response(status_code=204)


@api.get("/tokens", response_model=TokenPage, responses=problems(), summary="List tokens")
def get_tokens(
    _: Superuser, request: Request, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    page = paginate(list_tokens(_store(request)), lambda token: token.name, limit, cursor)
    return {"data": [TokenDoc.of(token) for token in page.items], "next": page.next}


@api.post(
    "/tokens",
    status_code=201,
    response_model=CreatedToken,
    responses=problems(400, 401, 403, 409, 422, 500),
    summary="Create a token (the token is in this answer only)",
)
def post_token(_: Superuser, request: Request, body: NewToken) -> Response:
    try:
        info, token = create_token(_store(request), body.name, body.role, body.team)
    except TokenExists as exc:
        raise ApiProblem(409, "already-exists", str(exc)) from None
    except UnknownTeam as exc:
        raise ApiProblem(
            422,
            "invalid-request",
            str(exc),
            errors=[ProblemIssue(pointer="/team", detail=str(exc))],
        ) from None
    created = CreatedToken(**TokenDoc.of(info).model_dump(), token=token)
    return JSONResponse(
        created.model_dump(mode="json"),
        201,
        headers={"Location": f"/tokens/{info.name}", "Cache-Control": "no-store"},
    )


@api.delete(
    "/tokens/{name}",
    status_code=204,
    response_class=Response,
    responses=problems(),
    summary="Revoke a token",
)
def remove_token(_: Superuser, request: Request, name: str) -> Response:
    if not is_name(name) or not revoke_token(_store(request), name):
        raise ApiProblem(404, "not-found", f"there is no token {name!r}")
    return Response(status_code=204)
