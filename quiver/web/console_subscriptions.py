"""The console's subscription requests (``/console/subscriptions``): approve or reject.

Everybody signed in sees the requests of the teams they may see (their consumers'
and those to their APIs).  Deciding one takes the ``admin`` role in the API's team
(the team that decides, as through the admin API); the decision runs the admin API's
own logic, so that an approval and the consumer's subscription land in one
transaction, and cross-team requests are decided only by the API's team.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quiver.accounts.memberships import allows
from quiver.admin import subscriptions as admin_subscriptions
from quiver.admin.problems import ApiProblem
from quiver.store import subscriptions as requests
from quiver.store.subscriptions import SubscriptionRequest
from quiver.web.console_access import access_for
from quiver.web.console_nav import NAV
from quiver.web.errors import PageNotFound, PageRoute, Redirect, page_error
from quiver.web.forms import read_form
from quiver.web.identity import ConsoleUser, SignedIn, require_role
from quiver.web.pages import render, store_of
from quiver.web.paging import Page
from quiver.web.security import check_post

#: included in the console's router, under ``/console``
router = APIRouter(route_class=PageRoute, include_in_schema=False)
_DONE = {
    "approved": "Approved: the consumer's key now works with the API.",
    "rejected": "Rejected: whoever asked is told your reason.",
}


@dataclass(frozen=True)
class Shown:
    """A request as listed, and whether the signed-in person may decide it."""

    item: SubscriptionRequest
    decides: bool


@router.get("/subscriptions")
def subscriptions_page(
    request: Request, who: ConsoleUser, page: int = 1, done: str = ""
) -> Response:
    return _page(request, who, page, message=_DONE.get(done))


@router.post("/subscriptions/{number}/approve")
async def approve(request: Request, who: ConsoleUser, number: int) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    await run_in_threadpool(_decide, request, who, number, None)
    raise Redirect("/console/subscriptions?done=approved")


@router.post("/subscriptions/{number}/reject")
async def reject(request: Request, who: ConsoleUser, number: int) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    reason = fields.get("reason", "").strip()
    if not reason:
        await run_in_threadpool(_decidable, request, who, number)  # (403/404 before 400)
        error = "Give a reason: whoever asked is told it."
        return await run_in_threadpool(_page, request, who, 1, None, {number: error}, 400)
    await run_in_threadpool(_decide, request, who, number, reason)
    raise Redirect("/console/subscriptions?done=rejected")


def _decidable(request: Request, who: SignedIn, number: int) -> SubscriptionRequest:
    """The request, when ``who`` may see it (else 404) and decide it (else 403)."""
    found = requests.get(store_of(request), number) if 1 <= number < 2**31 else None
    if found is None or not any(who.role_in(team) for team in (found.team, found.api_team)):
        raise PageNotFound(f"There is no subscription request {number}.")
    require_role(who, found.api_team, "admin")
    return found


def _decide(request: Request, who: SignedIn, number: int, reason: str | None) -> None:
    found = _decidable(request, who, number)
    access = access_for(request, who, found.api_team)
    try:
        if reason is None:
            admin_subscriptions.approve(access, number)
        else:
            rejection = admin_subscriptions.Rejection(reason=reason)
            admin_subscriptions.reject(access, number, rejection)
    except ApiProblem as problem:
        raise page_error(problem) from None


def _page(
    request: Request,
    who: SignedIn,
    number: int,
    message: str | None = None,
    errors: dict[int, str] | None = None,
    status: int = 200,
) -> Response:
    store = store_of(request)
    seen: dict[int, SubscriptionRequest] = {}
    for team, _ in who.team_roles():
        for item in requests.listed(store, team):
            seen[item.id] = item
    pending: list[Shown] = []
    decided: list[SubscriptionRequest] = []
    for item in sorted(seen.values(), key=lambda r: r.id):
        if item.state == "pending":
            role = who.role_in(item.api_team)
            pending.append(Shown(item, role is not None and allows(role, "admin")))
        else:
            decided.append(item)
    decided.reverse()  # (the latest decisions first)
    return render(
        request,
        "console",
        "console/subscriptions.html",
        title="Subscription requests",
        who=who,
        nav=NAV,
        pending=pending,
        decided=Page.of(decided, number),
        errors=errors or {},
        message=message,
        status=status,
    )
