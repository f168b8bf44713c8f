"""``/targets/NAME/nodes``: a target's nodes as a list.

A target written with the ``url:`` shorthand shows it as its one node; putting a
node list replaces ``url`` with ``nodes``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from quiver.admin.auth import Editor, Reader
from quiver.admin.entities import IfMatch, Message
from quiver.admin.issues import Within
from quiver.admin.responses import WRITE, problems
from quiver.admin.schemas import Nodes
from quiver.admin.writes import check_preconditions, commit, etag, find, message_for, not_found
from quiver.store import Current

api = APIRouter(tags=["targets"])


def nodes_of(target: dict[str, Any]) -> list[Any]:
    if target.get("nodes") is not None:
        return list(target["nodes"])
    if target.get("url") is not None:
        return [{"url": target["url"], "weight": 1}]
    return []


@api.get(
    "/targets/{name}/nodes", response_model=Nodes, responses=problems(), summary="A target's nodes"
)
def get_nodes(access: Reader, name: str) -> Response:
    found = find(access.declarations.read(access.team).document, "targets", name)
    if found is None:
        raise not_found("target", name, access.team)
    return JSONResponse({"nodes": nodes_of(found[1])}, headers={"ETag": etag(found[1])})


@api.put(
    "/targets/{name}/nodes",
    response_model=Nodes,
    responses=problems(*WRITE),
    summary="Replace a target's nodes",
)
def put_nodes(
    access: Editor, name: str, body: Nodes, if_match: IfMatch = None, message: Message = None
) -> Response:
    sent: list[Within] = []

    def mutate(current: Current) -> object:
        found = find(current.document, "targets", name)
        if found is None:
            raise not_found("target", name, access.team)
        check_preconditions(found[1], if_match)
        sent.append(Within(("targets", found[0], "nodes"), "/nodes"))
        target = {key: value for key, value in found[1].items() if key != "url"}
        target["nodes"] = body.nodes
        current.document["targets"][found[0]] = target
        return current.document

    edit = commit(
        access,
        mutate,
        message_for(message, "PUT", f"/targets/{name}/nodes"),
        sent,
    )
    target = find(edit.document, "targets", name)
    assert target is not None
    return JSONResponse({"nodes": nodes_of(target[1])}, headers={"ETag": etag(target[1])})
