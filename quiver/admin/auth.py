"""Who is calling and what they may do: bearer tokens, roles and team scope.

Every endpoint but ``/health``, ``/openapi.json`` and ``/docs`` depends on one of
the guards below.  They answer 401 (with ``WWW-Authenticate: Bearer``) for a
missing, unknown or revoked token, then 403 when the token's role is too low, then
404 ``team-not-found`` for a team the token may not see.  A team-scoped token is
told about another team exactly what it is told about a team that does not
exist, so team names do not leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from quiver.admin.declarations import Declarations
from quiver.admin.problems import ApiProblem
from quiver.config.models import NAME_PATTERN
from quiver.store import Store
from quiver.store.models import DEFAULT_TEAM, Role
from quiver.store.tokens import TokenInfo, authenticate

#: what a team or token name can be; anything else is not looked up at all
_NAME = re.compile(NAME_PATTERN)
_RANKS: dict[Role, int] = {"viewer": 0, "editor": 1, "admin": 2}
_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="qv_ token",
    description="An admin token (`qv_...`) made with POST /tokens or QUIVER_ADMIN_TOKEN.",
)


@dataclass(frozen=True)
class Access:
    """An authenticated caller working in one team."""

    token: TokenInfo
    team: str
    declarations: Declarations

    @property
    def author(self) -> str:
        """What revisions name as their author."""
        return self.token.name


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _declarations(request: Request) -> Declarations:
    declarations: Declarations = request.app.state.declarations
    return declarations


def caller(
    store: Annotated[Store, Depends(_store)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenInfo:
    if credentials is None:
        raise _unauthorized("send an admin token as 'Authorization: Bearer <token>'")
    token = authenticate(store, credentials.credentials)
    if token is None:
        raise _unauthorized("the token is unknown or was revoked")
    return token


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def _require(token: TokenInfo, role: Role) -> None:
    if _RANKS[token.role] < _RANKS[role]:
        raise ApiProblem(
            403, "forbidden", f"the token {token.name!r} is a {token.role}; this needs {role}"
        )


TeamQuery = Annotated[
    str | None,
    Query(
        description="The team to work in: `default` unless given (a team-scoped token's "
        "own team unless given)."
    ),
]


def _access(role: Role) -> Callable[..., Access]:
    def guard(
        token: Annotated[TokenInfo, Depends(caller)],
        declarations: Annotated[Declarations, Depends(_declarations)],
        team: TeamQuery = None,
    ) -> Access:
        _require(token, role)
        chosen = team if team is not None else token.team or DEFAULT_TEAM
        if (
            (token.team is not None and chosen != token.team)
            or not _NAME.fullmatch(chosen)
            or not declarations.has_team(chosen)
        ):
            raise ApiProblem(404, "team-not-found", f"there is no team {chosen!r}")
        return Access(token, chosen, declarations)

    return guard


Reader = Annotated[Access, Depends(_access("viewer"))]
Editor = Annotated[Access, Depends(_access("editor"))]


def superuser(token: Annotated[TokenInfo, Depends(caller)]) -> TokenInfo:
    """An admin token scoped to no team: the only kind that manages teams and tokens."""
    _require(token, "admin")
    if token.team is not None:
        raise ApiProblem(
            403,
            "forbidden",
            f"the token {token.name!r} is scoped to a team; this needs an "
            "admin token without a team",
        )
    return token


Superuser = Annotated[TokenInfo, Depends(superuser)]


def is_name(text: str) -> bool:
    """Whether ``text`` can name a team or token (so is worth looking up)."""
    return _NAME.fullmatch(text) is not None


def has_valid_token(request: Request) -> bool:
    """Whether ``request`` carries a valid token (whatever its role)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return False
    return authenticate(_store(request), credentials.strip()) is not None
