"""``/plugins``: the team's global plugins, by name (only the default team has any)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from quiver.admin.auth import Editor, Reader
from quiver.admin.entities import IfMatch, JsonObject, Message, NameFilter
from quiver.admin.issues import Within
from quiver.admin.pagination import Cursor, Limit, paginate
from quiver.admin.responses import WRITE, problems, with_etag
from quiver.admin.schemas import PluginDoc, PluginPage
from quiver.admin.writes import check_preconditions, commit, etag, message_for, not_found
from quiver.store import Current

api = APIRouter(tags=["plugins"])


def _doc(name: str, config: Any) -> dict[str, Any]:
    return {"name": name, "config": config}


def _answer(name: str, config: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(_doc(name, config), status, headers={"ETag": etag(config)})


@api.get("/plugins", response_model=PluginPage, responses=problems(), summary="List global plugins")
def list_plugins(
    access: Reader, limit: Limit = 100, cursor: Cursor = None, name: NameFilter = None
) -> dict[str, Any]:
    plugins = access.declarations.read(access.team).document.get("plugins") or {}
    items = [_doc(key, value) for key, value in plugins.items() if not name or name in key]
    page = paginate(items, lambda item: str(item["name"]), limit, cursor)
    return {"data": page.items, "next": page.next}


@api.get(
    "/plugins/{name}",
    response_model=PluginDoc,
    responses={200: with_etag("The plugin's config."), **problems()},
    summary="Get a global plugin",
)
def get_plugin(access: Reader, name: str) -> Response:
    plugins = access.declarations.read(access.team).document.get("plugins") or {}
    if name not in plugins:
        raise not_found("global plugin", name, access.team)
    return _answer(name, plugins[name])


@api.put(
    "/plugins/{name}",
    response_model=PluginDoc,
    responses={
        200: with_etag("The config was replaced."),
        201: with_etag("The plugin was added."),
        **problems(*WRITE),
    },
    summary="Add or replace a global plugin (body: its config)",
)
def put_plugin(
    access: Editor, name: str, body: JsonObject, if_match: IfMatch = None, message: Message = None
) -> Response:
    created: list[bool] = []

    def mutate(current: Current) -> object:
        plugins = current.document.setdefault("plugins", {})
        check_preconditions(plugins.get(name), if_match)
        created.append(name not in plugins)
        plugins[name] = body
        return current.document

    edit = commit(
        access, mutate, message_for(message, "PUT", f"/plugins/{name}"), [Within(("plugins", name))]
    )
    return _answer(name, edit.document["plugins"][name], 201 if created[0] else 200)


@api.delete(
    "/plugins/{name}",
    status_code=204,
    response_class=Response,
    responses=problems(*WRITE),
    summary="Remove a global plugin",
)
def delete_plugin(
    access: Editor, name: str, if_match: IfMatch = None, message: Message = None
) -> Response:
    def mutate(current: Current) -> object:
        plugins = current.document.get("plugins") or {}
        if name not in plugins:
            raise not_found("global plugin", name, access.team)
        check_preconditions(plugins[name], if_match)
        del plugins[name]
        return current.document

    commit(access, mutate, message_for(message, "DELETE", f"/plugins/{name}"), conflict=True)
    return Response(status_code=204)
