"""The console's config revisions (``/console/revisions``): who changed what, the
diff of each against the one before it, and rolling back to one.

A revision belongs to one team: another team's is "not found", like one that does
not exist.  Rolling back takes the ``admin`` role in the revision's team, is asked
for on a page of its own (the button on the revision's page only opens it), and
runs the admin API's rollback, so it is a new revision like any other.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from quiver.accounts.memberships import allows
from quiver.admin import revisions as admin_revisions
from quiver.admin.problems import ApiProblem
from quiver.errors import StoreError
from quiver.store import Revision, Store
from quiver.store.diffing import Change
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


@dataclass(frozen=True)
class DiffLine:
    """One line of a change: ``+`` added, ``-`` removed, `` `` kept."""

    sign: str
    text: str


@dataclass(frozen=True)
class ShownChange:
    kind: str
    name: str
    verb: str  # added, changed, removed
    lines: list[DiffLine]


@router.get("/revisions")
def revisions_page(request: Request, who: ConsoleUser, page: int = 1) -> Response:
    store = store_of(request)
    found: list[Revision] = []
    for team, _ in who.team_roles():
        found.extend(store.revisions(team))
    found.sort(key=lambda revision: revision.number, reverse=True)
    return render(
        request,
        "console",
        "console/revisions.html",
        title="Revisions",
        who=who,
        nav=NAV,
        revisions=Page.of(found, page),
        summary=summary,
    )


@router.get("/revisions/{number}")
def revision_page(request: Request, who: ConsoleUser, number: int, done: str = "") -> Response:
    revision = _visible(store_of(request), who, number)
    role = who.role_in(revision.team)
    return render(
        request,
        "console",
        "console/revision.html",
        title=f"Revision {number}",
        who=who,
        nav=NAV,
        revision=revision,
        changes=shown_changes(revision),
        may_roll_back=role is not None and allows(role, "admin"),
        rolled_back=bool(done),
    )


@router.get("/revisions/{number}/rollback")
def rollback_page(request: Request, who: ConsoleUser, number: int) -> Response:
    revision = _visible(store_of(request), who, number)
    require_role(who, revision.team, "admin")
    return render(
        request,
        "console",
        "console/rollback.html",
        title=f"Roll back to revision {number}",
        who=who,
        nav=NAV,
        revision=revision,
    )


@router.post("/revisions/{number}/rollback")
async def rollback(request: Request, who: ConsoleUser, number: int) -> Response:
    fields = await read_form(request)
    check_post(request, fields.get("csrf", ""), who.csrf)
    made = await run_in_threadpool(_roll_back, request, who, number)
    raise Redirect(f"/console/revisions/{made or number}?done=1")


def _roll_back(request: Request, who: SignedIn, number: int) -> int | None:
    """The new revision's number (None when the team is as it was already)."""
    revision = _visible(store_of(request), who, number)
    require_role(who, revision.team, "admin")
    access = access_for(request, who, revision.team)
    try:
        result = admin_revisions.rollback(access, number, None)
    except ApiProblem as problem:
        raise page_error(problem) from None
    made = result["revision"]
    return None if made is None else int(made.number)


def _visible(store: Store, who: SignedIn, number: int) -> Revision:
    try:
        revision = store.revision(number) if 1 <= number < 2**31 else None
    except StoreError:
        revision = None
    if revision is None or who.role_in(revision.team) is None:
        raise PageNotFound(f"There is no revision {number}.")
    return revision


def summary(revision: Revision) -> str:
    """``2 added, 1 changed``: what a revision did, in a few words."""
    counts = [(len(revision.diff[verb]), verb) for verb in ("added", "changed", "removed")]
    said = ", ".join(f"{count} {verb}" for count, verb in counts if count)
    return said or "no change"


def shown_changes(revision: Revision) -> list[ShownChange]:
    """The revision's diff (against the one before it) as +/- lines per entity."""
    shown: list[ShownChange] = []
    for verb in ("added", "changed", "removed"):
        for change in revision.diff[verb]:
            shown.append(ShownChange(change["kind"], change["name"], verb, _lines(change)))
    return shown


def _lines(change: Change) -> list[DiffLine]:
    before = _text(change["before"]) if "before" in change else []
    after = _text(change["after"]) if "after" in change else []
    lines: list[DiffLine] = []
    for line in difflib.ndiff(before, after):
        sign = line[:1]
        if sign in "+- ":
            lines.append(DiffLine(sign, line[2:]))
    return lines


def _text(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()
