"""``/config``: a team's whole declaration, for ``quiver dump``, ``diff`` and ``apply``.

``GET /config`` answers the document with the team's latest revision number,
also as ``ETag: "rev-N"``.  ``POST /config/apply`` with ``If-Match: "rev-N"``
applies only if the team is still at revision N: the client applies exactly
what it diffed against, or gets 412.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response

from quiver.admin.auth import Editor, Reader
from quiver.admin.issues import Within, invalid_config
from quiver.admin.problems import ApiProblem
from quiver.admin.responses import WRITE, problems
from quiver.admin.schemas import (
    ApplyIn,
    ApplyResult,
    ConfigDoc,
    DiffResult,
    DocumentIn,
    RevisionSummary,
)
from quiver.admin.writes import commit
from quiver.errors import ConfigError
from quiver.store import Current
from quiver.store.diffing import diff, is_empty

api = APIRouter(tags=["config"])
_DOCUMENT = [Within((), "/document")]


def revision_tag(number: int) -> str:
    return f'"rev-{number}"'


@api.get(
    "/config",
    response_model=ConfigDoc,
    responses=problems(),
    summary="The team's whole declaration (secrets hashed)",
)
def get_config(access: Reader) -> Response:
    current = access.declarations.read(access.team)
    body = {"revision": current.revision, "team": access.team, "document": current.document}
    return JSONResponse(body, headers={"ETag": revision_tag(current.revision)})


@api.post(
    "/config/diff",
    response_model=DiffResult,
    responses=problems(),
    summary="What applying a document would change",
)
def diff_config(access: Reader, body: DocumentIn) -> dict[str, Any]:
    try:
        changes = access.declarations.diff(body.document, access.team)
    except ConfigError as exc:
        raise invalid_config(exc, _DOCUMENT) from None
    return {"diff": changes, "equal": is_empty(changes)}


@api.post(
    "/config/apply",
    response_model=ApplyResult,
    responses=problems(*WRITE),
    summary="Make a document the team's declaration (one revision, or none)",
)
def apply_config(
    access: Editor,
    body: ApplyIn,
    if_match: Annotated[
        str | None, Header(description='"rev-N": only if the team is still at revision N.')
    ] = None,
) -> dict[str, Any]:
    expected = None if if_match is None else _revision_number(if_match)

    def mutate(current: Current) -> object:
        if expected is not None and current.revision != expected:
            raise ApiProblem(
                412,
                "precondition-failed",
                f"team {access.team!r} is at revision {current.revision}, not {expected}",
            )
        return body.document

    edit = commit(access, mutate, body.message, _DOCUMENT)
    if edit.revision is None:
        return {"revision": None, "diff": diff(edit.document, edit.document)}
    return {"revision": RevisionSummary.of(edit.revision), "diff": edit.revision.diff}


def _revision_number(tag: str) -> int:
    text = tag.strip().removeprefix('"').removesuffix('"')
    if text.startswith("rev-") and text[4:].isdigit():
        return int(text[4:])
    raise ApiProblem(
        412, "precondition-failed", f'If-Match must be "rev-N" as GET /config gives it, not {tag}'
    )
