"""What the portal's pages share: the navigation, the team a developer works in, and
the admin API's write path acting for a signed-in person.

A developer's apps are consumers of a team they belong to; the pages pick the team
from ``?team=`` (a hidden field on forms), else the first team where they are at
least a ``developer``, else the first they see.  Writes go through
:func:`quiver.admin.writes.commit` (one revision each, like the admin API's), with
an :class:`~quiver.admin.auth.Access` whose author names the person.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request

from quiver.accounts.memberships import TeamRole, allows
from quiver.admin.auth import Access
from quiver.admin.declarations import Declarations
from quiver.store.tokens import TokenInfo
from quiver.web.errors import NoAccess, PageNotFound
from quiver.web.identity import SignedIn, require_role
from quiver.web.pages import NavItem

NAV: tuple[NavItem, ...] = (
    NavItem("Home", "/portal"),
    NavItem("APIs", "/portal/apis"),
    NavItem("Apps", "/portal/apps"),
    NavItem("Subscriptions", "/portal/subscriptions"),
)


def declarations_of(request: Request) -> Declarations:
    declarations: Declarations = request.app.state.declarations
    return declarations


def working_team(who: SignedIn, asked: str | None) -> tuple[str, TeamRole]:
    """The team the page shows (``asked``, or the developer's own) and their role in
    it: the 404 page for a team they may not see."""
    if asked:
        return asked, require_role(who, asked, "viewer")
    roles = who.team_roles()
    for team, role in roles:
        if allows(role, "developer"):
            return team, role
    if roles:
        return roles[0]
    raise PageNotFound("You belong to no team yet: ask a team owner to add you.")


def require_developer(who: SignedIn, team: str) -> None:
    """The 403 page unless they may change the team's apps and subscriptions."""
    require_role(who, team, "developer")


def acting(request: Request, who: SignedIn, team: str) -> Access:
    """The admin API's access for ``who`` writing in ``team`` (checked by the caller)."""
    if who.user is not None:
        author = f"portal:{who.user.email}"
    elif who.token is not None:
        author = who.token.name
    else:  # pragma: no cover - a session is of a user or a token
        raise NoAccess("This session cannot change anything.")
    token = TokenInfo(name=author, role="editor", team=team, created_at=datetime.now(UTC))
    return Access(token, team, declarations_of(request))
