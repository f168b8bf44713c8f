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
from quiver.admin.problems import ApiProblem
from quiver.store.tokens import TokenInfo
from quiver.web.errors import NoAccess, PageError, PageNotFound
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


class Conflict(PageError):
    status = 409
    title = "This was changed meanwhile"


#: why a page cannot change what a config file declares
READ_ONLY = (
    "This gateway's config comes from a file ({detail}), so pages cannot change it. "
    "Apps, keys, subscriptions and rollbacks are made in these pages when Quiver runs "
    "in store mode (quiver serve without a config file); with a file, they are "
    "written in the file."
)


def refusal(problem: ApiProblem) -> str:
    """What the admin API's logic refused, as a sentence for a page."""
    if problem.slug == "read-only":
        return READ_ONLY.format(detail=problem.detail)
    detail = problem.detail
    return detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")


def page_error(problem: ApiProblem) -> PageError:
    """The page that tells what the admin API's logic refused."""
    message = refusal(problem)
    if problem.status == 404:
        return PageNotFound(message)
    if problem.status == 403:
        return NoAccess(message)
    if problem.status == 409:
        return Conflict(message)
    error = PageError(message)
    error.status = problem.status if 400 <= problem.status < 600 else 500
    error.title = "This could not be done"
    return error
