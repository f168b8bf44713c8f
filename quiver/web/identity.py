"""Who is signed in to a page, and what they may do in which team.

Page handlers take the signed-in person as a dependency and check a team role with
:func:`require_role`::

    @router.get("/apps")
    def apps(request: Request, who: PortalUser, team: str) -> Response:
        require_role(who, team, "developer")
        ...

``PortalUser`` and ``ConsoleUser`` send a visitor who is not signed in to the
surface's sign-in page (and back here after it); ``signed_in(surface)`` gives the
signed-in person or None, for pages that show to both.

A console session opened with an admin token acts with that token's role: an
``admin`` token scoped to no team is a platform operator, another token has its role
(``admin``, ``editor`` as ``developer``, ``viewer``) in its team, or in every team
when it is scoped to none.  A platform admin user is an operator too; anybody else
has the roles of their memberships.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from quiver.accounts.memberships import TeamRole, allows, memberships_of
from quiver.accounts.sessions import Surface, WebSession, find_session
from quiver.accounts.users import User, user_by_id
from quiver.store import Store
from quiver.store.models import Role
from quiver.store.teams import list_teams, team_exists
from quiver.store.tokens import TokenInfo, token_by_id
from quiver.web.errors import NoAccess, PageNotFound, Redirect
from quiver.web.security import SESSION_COOKIE

#: what an admin token's role is worth as a team role
TOKEN_ROLES: dict[Role, TeamRole] = {"admin": "admin", "editor": "developer", "viewer": "viewer"}


@dataclass(frozen=True)
class SignedIn:
    """A signed-in person (or admin token) and their session."""

    session: WebSession
    session_id: str = field(repr=False)
    user: User | None
    token: TokenInfo | None
    #: the role in each team they belong to
    teams: dict[str, TeamRole]
    #: the role in every team (a platform operator: ``owner``), or None
    everywhere: TeamRole | None
    #: where the teams are (for those who see every team)
    store: Store = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        if self.user is not None:
            return self.user.shown_name
        assert self.token is not None
        return f"token {self.token.name}"

    @property
    def csrf(self) -> str:
        return self.session.csrf

    @property
    def operator(self) -> bool:
        """A platform operator: may do anything in every team."""
        return self.everywhere == "owner"

    def role_in(self, team: str) -> TeamRole | None:
        """Their role in ``team``, or None when they may not see it (or it does not exist)."""
        own = self.teams.get(team)
        if self.everywhere is None:
            return own
        if own is None:
            return self.everywhere if team_exists(self.store, team) else None
        return self.everywhere if allows(self.everywhere, own) else own

    def team_roles(self) -> list[tuple[str, TeamRole]]:
        """Every team they may see, with their role in it, by name."""
        if self.everywhere is None:
            return sorted(self.teams.items())
        everywhere = self.everywhere
        return [
            (name, own if (own := self.teams.get(name)) and allows(own, everywhere) else everywhere)
            for name in list_teams(self.store)
        ]


def require_role(who: SignedIn, team: str, role: TeamRole) -> TeamRole:
    """Their role in ``team`` when it allows what ``role`` may; PageNotFound for a
    team they may not see (told exactly as a team that does not exist, so that team
    names do not leak), NoAccess when their role is lower."""
    has = who.role_in(team)
    if has is None:
        raise PageNotFound(f"There is no team {team!r}.")
    if not allows(has, role):
        raise NoAccess(f"This needs the {role} role in team {team!r}; you are {has}.")
    return has


def signed_in(surface: Surface) -> Callable[[Request], SignedIn | None]:
    """A dependency: who is signed in to ``surface``, or None."""
    return _LOOKUPS[surface]


def current_user(surface: Surface) -> Callable[[Request], SignedIn]:
    """A dependency: who is signed in to ``surface``; sends anybody else to sign in."""
    return _REQUIRED[surface]


def _lookup(surface: Surface) -> Callable[[Request], SignedIn | None]:
    def dependency(request: Request) -> SignedIn | None:
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id or len(session_id) > 128:
            return None
        return identify(request.app.state.store, session_id, surface)

    return dependency


def _required(surface: Surface) -> Callable[[Request], SignedIn]:
    def dependency(request: Request) -> SignedIn:
        who = _LOOKUPS[surface](request)
        if who is None:
            here = request.url.path
            back = "" if here == f"/{surface}" else f"?next={quote(here, safe='/')}"
            raise Redirect(f"/{surface}/signin{back}")
        return who

    return dependency


def identify(store: Store, session_id: str, surface: Surface) -> SignedIn | None:
    """The holder of a live session, or None (ended, or its holder gone or disabled)."""
    session = find_session(store, session_id, surface)
    if session is None:
        return None
    if session.user_id is not None:
        user = user_by_id(store, session.user_id)
        if user is None or user.disabled:
            return None
        teams = memberships_of(store, user.id)
        everywhere: TeamRole | None = "owner" if user.is_admin else None
        return SignedIn(session, session_id, user, None, teams, everywhere, store)
    assert session.token_id is not None
    token = token_by_id(store, session.token_id)
    if token is None:
        return None
    role = TOKEN_ROLES[token.role]
    if token.team is not None:
        return SignedIn(session, session_id, None, token, {token.team: role}, None, store)
    across: TeamRole = "owner" if role == "admin" else role
    return SignedIn(session, session_id, None, token, {}, across, store)


_LOOKUPS: dict[Surface, Callable[[Request], SignedIn | None]] = {
    "portal": _lookup("portal"),
    "console": _lookup("console"),
}
_REQUIRED: dict[Surface, Callable[[Request], SignedIn]] = {
    "portal": _required("portal"),
    "console": _required("console"),
}

MaybePortalUser = Annotated[SignedIn | None, Depends(signed_in("portal"))]
MaybeConsoleUser = Annotated[SignedIn | None, Depends(signed_in("console"))]
PortalUser = Annotated[SignedIn, Depends(current_user("portal"))]
ConsoleUser = Annotated[SignedIn, Depends(current_user("console"))]
