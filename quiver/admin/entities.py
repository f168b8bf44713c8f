"""``/targets``, ``/routes``, ``/consumers`` and ``/apis``: one router per collection.

An entity's document is the same as in quiver.yaml; a write changes the team's
document and validates the whole of it (quiver.config.validate, through the
store), so every message is the one a config file would get.  Order is the
position in the declaration; a new entity goes last.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse, Response

from quiver.admin.auth import Access, Editor, Reader
from quiver.admin.issues import Within
from quiver.admin.merge_patch import merge_patch
from quiver.admin.pagination import Cursor, Limit, paginate
from quiver.admin.problems import ApiProblem, ProblemIssue
from quiver.admin.responses import WRITE, json_body, problems, with_etag
from quiver.admin.schemas import EntityDoc, EntityPage
from quiver.admin.writes import check_preconditions, commit, etag, find, message_for, not_found
from quiver.store import Current
from quiver.store.models import DEFAULT_TEAM

IfMatch = Annotated[str | None, Header(description="Only if the entity's ETag is one of these.")]
IfNoneMatch = Annotated[str | None, Header(description='"*": only if the entity does not exist.')]
Message = Annotated[
    str | None,
    Query(max_length=4096, description="The revision's message (default: method and path)."),
]
NameFilter = Annotated[str | None, Query(description="Only entities whose name contains this.")]
TargetFilter = Annotated[str | None, Query(description="Only routes to this target.")]
JsonObject = Annotated[dict[str, Any], Body()]

_KINDS = {
    "targets": ("target", "Target"),
    "routes": ("route", "Route"),
    "consumers": ("consumer", "Consumer"),
    "apis": ("api", "Api"),
}


def location(key: str, name: str, team: str) -> str:
    suffix = "" if team == DEFAULT_TEAM else f"?team={team}"
    return f"/{key}/{name}{suffix}"


def entity_response(item: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(item, status, headers={"ETag": etag(item), **headers})


def stored(document: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    found = find(document, key, name)
    assert found is not None  # the edit just wrote it
    return found[1]


def router(key: str) -> APIRouter:
    """The collection ``key`` (``targets``, ``routes`` or ``consumers``)."""
    kind, model = _KINDS[key]
    api = APIRouter(tags=[key])

    def read_one(access: Access, name: str) -> dict[str, Any]:
        found = find(access.declarations.read(access.team).document, key, name)
        if found is None:
            raise not_found(kind, name, access.team)
        return found[1]

    @api.get(f"/{key}", response_model=EntityPage, responses=problems(), summary=f"List {key}")
    def list_entities(
        access: Reader,
        limit: Limit = 100,
        cursor: Cursor = None,
        name: NameFilter = None,
        target: TargetFilter = None,
    ) -> dict[str, Any]:
        items = access.declarations.read(access.team).document.get(key) or []
        if name:
            items = [item for item in items if name in item["name"]]
        if target and key == "routes":
            items = [item for item in items if item.get("target") == target]
        page = paginate(items, lambda item: str(item["name"]), limit, cursor)
        return {"data": page.items, "next": page.next}

    @api.post(
        f"/{key}",
        status_code=201,
        response_model=EntityDoc,
        responses={201: with_etag(f"The {kind} as stored."), **problems(*WRITE)},
        openapi_extra=json_body(model),
        summary=f"Create a {kind}",
    )
    def create(access: Editor, body: JsonObject, message: Message = None) -> Response:
        name = body.get("name")
        sent: list[Within] = []

        def mutate(current: Current) -> object:
            if isinstance(name, str) and find(current.document, key, name) is not None:
                raise ApiProblem(409, "already-exists", f"a {kind} named {name!r} exists already")
            items = current.document.setdefault(key, [])
            sent.append(Within((key, len(items))))
            items.append(body)
            return current.document

        edit = commit(
            access,
            mutate,
            message_for(message, "POST", f"/{key}"),
            sent,
        )
        item = stored(edit.document, key, str(name))
        return entity_response(item, 201, Location=location(key, str(name), access.team))

    @api.get(
        f"/{key}/{{name}}",
        response_model=EntityDoc,
        responses={200: with_etag(f"The {kind}."), **problems()},
        summary=f"Get a {kind}",
    )
    def get_one(access: Reader, name: str) -> Response:
        return entity_response(read_one(access, name))

    @api.put(
        f"/{key}/{{name}}",
        response_model=EntityDoc,
        responses={
            200: with_etag(f"The {kind} was replaced."),
            201: with_etag(f"The {kind} was created."),
            **problems(*WRITE),
        },
        openapi_extra=json_body(model),
        summary=f"Create or replace a {kind}",
    )
    def put(
        access: Editor,
        name: str,
        body: JsonObject,
        if_match: IfMatch = None,
        if_none_match: IfNoneMatch = None,
        message: Message = None,
    ) -> Response:
        same_name(body, name, f"the body names {body.get('name')!r}, the path {name!r}")
        document = {"name": name, **body}
        created: list[bool] = []
        sent: list[Within] = []

        def mutate(current: Current) -> object:
            items = current.document.setdefault(key, [])
            found = find(current.document, key, name)
            check_preconditions(None if found is None else found[1], if_match, if_none_match)
            if found is None:
                created.append(True)
                sent.append(Within((key, len(items))))
                items.append(document)
            else:
                sent.append(Within((key, found[0])))
                items[found[0]] = document
            return current.document

        edit = commit(
            access,
            mutate,
            message_for(message, "PUT", f"/{key}/{name}"),
            sent,
        )
        item = stored(edit.document, key, name)
        if created:
            return entity_response(item, 201, Location=location(key, name, access.team))
        return entity_response(item)

    @api.patch(
        f"/{key}/{{name}}",
        response_model=EntityDoc,
        responses={200: with_etag(f"The {kind} after the patch."), **problems(*WRITE)},
        openapi_extra=json_body("MergePatch", "application/merge-patch+json"),
        summary=f"Change a {kind} (JSON merge patch, RFC 7396)",
    )
    def patch(
        access: Editor,
        name: str,
        body: JsonObject,
        if_match: IfMatch = None,
        message: Message = None,
    ) -> Response:
        same_name(body, name, f"a patch cannot rename the {kind}")
        sent: list[Within] = []

        def mutate(current: Current) -> object:
            found = find(current.document, key, name)
            if found is None:
                raise not_found(kind, name, access.team)
            check_preconditions(found[1], if_match)
            sent.append(Within((key, found[0])))
            current.document[key][found[0]] = merge_patch(found[1], body)
            return current.document

        edit = commit(
            access,
            mutate,
            message_for(message, "PATCH", f"/{key}/{name}"),
            sent,
        )
        return entity_response(stored(edit.document, key, name))

    @api.delete(
        f"/{key}/{{name}}",
        status_code=204,
        response_class=Response,
        responses=problems(*WRITE),
        summary=f"Delete a {kind}",
    )
    def remove(
        access: Editor, name: str, if_match: IfMatch = None, message: Message = None
    ) -> Response:
        def mutate(current: Current) -> object:
            found = find(current.document, key, name)
            if found is None:
                raise not_found(kind, name, access.team)
            check_preconditions(found[1], if_match)
            del current.document[key][found[0]]
            return current.document

        commit(access, mutate, message_for(message, "DELETE", f"/{key}/{name}"), conflict=True)
        return Response(status_code=204)

    return api


def same_name(body: dict[str, object], name: str, detail: str) -> None:
    """422 ``invalid-request`` when ``body`` names another entity than the path."""
    if "name" in body and body["name"] != name:
        issue = ProblemIssue(pointer="/name", detail="must be absent or equal the path's name")
        raise ApiProblem(422, "invalid-request", detail, errors=[issue])
