"""The admin API's logic acting for a console session.

The admin API's functions take an :class:`~quiver.admin.auth.Access`: a token
working in one team.  A session of an admin token acts as that token; a session of
a user acts as a token named after the user, with the ``admin`` role in the team it
works in (or in no team for a platform operator), once the page has checked their
role there with :func:`~quiver.web.identity.require_role`.  Revisions and decisions
then name the user as their author, as the JSON API names a token.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request

from quiver.admin.auth import Access
from quiver.admin.declarations import Declarations
from quiver.store.tokens import TokenInfo
from quiver.web.identity import SignedIn


def access_for(request: Request, who: SignedIn, team: str) -> Access:
    """``who`` working in ``team`` through the admin API's logic (their role there
    is checked by the caller)."""
    declarations: Declarations = request.app.state.declarations
    if who.token is not None:
        return Access(who.token, team, declarations)
    assert who.user is not None
    scope = None if who.operator else team
    token = TokenInfo(who.user.email, "admin", scope, datetime.now(UTC))
    return Access(token, team, declarations)
