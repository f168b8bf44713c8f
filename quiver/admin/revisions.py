"""``/revisions``: who changed what, newest first, and rolling back to one.

A revision belongs to one team: asked for in another team it is 404, like one
that does not exist.  In file mode there are no revisions (the file is the
history) and a rollback is refused like any write.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from quiver.admin.auth import Access, Editor, Reader
from quiver.admin.declarations import ReadOnly
from quiver.admin.issues import invalid_config
from quiver.admin.pagination import Cursor, Limit, paginate
from quiver.admin.problems import ApiProblem
from quiver.admin.responses import WRITE, problems
from quiver.admin.schemas import (
    RevisionDetail,
    RevisionPage,
    RevisionResult,
    RevisionSummary,
    Rollback,
)
from quiver.errors import ConfigError, StoreError
from quiver.store import Revision

api = APIRouter(tags=["revisions"])
#: revision numbers are 32-bit integers in the store's schema
Number = Annotated[int, Path(ge=1, le=2**31 - 1, description="The revision's number.")]


def _revision(access: Access, number: int) -> Revision:
    store = access.declarations.store
    try:
        revision = None if store is None else store.revision(number)
    except StoreError:
        revision = None
    if revision is None or revision.team != access.team:
        raise ApiProblem(404, "not-found", f"there is no revision {number} in team {access.team!r}")
    return revision


@api.get(
    "/revisions",
    response_model=RevisionPage,
    responses=problems(),
    summary="Revisions, newest first",
)
def list_revisions(access: Reader, limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    store = access.declarations.store
    revisions = [] if store is None else list(reversed(store.revisions(access.team)))
    page = paginate(revisions, lambda revision: str(revision.number), limit, cursor)
    return {"data": [RevisionSummary.of(item) for item in page.items], "next": page.next}


@api.get(
    "/revisions/{number}",
    response_model=RevisionDetail,
    responses=problems(),
    summary="One revision with its diff",
)
def get_revision(access: Reader, number: Number) -> RevisionDetail:
    return RevisionDetail.of(_revision(access, number))


@api.post(
    "/revisions/{number}/rollback",
    response_model=RevisionResult,
    responses=problems(*WRITE),
    summary="Restore the state a revision left its team in, as a new revision",
)
def rollback(
    access: Editor, number: Number, body: Annotated[Rollback | None, Body()] = None
) -> dict[str, Any]:
    store = access.declarations.store
    if store is None:
        error = ReadOnly(getattr(access.declarations, "path", "a file"))
        raise ApiProblem(405, "read-only", str(error), headers={"Allow": "GET"})
    _revision(access, number)
    message = (body.message if body else None) or f"roll back to revision {number}"
    try:
        made = store.rollback(number, access.author, message)
    except ConfigError as exc:
        raise invalid_config(exc) from None
    return {"revision": None if made is None else RevisionSummary.of(made)}
