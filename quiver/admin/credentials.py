"""``/consumers/NAME/credentials``: a consumer's credentials, one by one.

A credential is kept in its consumer's document under the plugin that checks it
(``credentials: {key-auth: [...]}``), secrets hashed by the store.  It has no name,
so its id is derived from what it is: the first 16 hex digits of the SHA-256 of
the plugin's name and the canonical JSON of the stored credential.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from quiver.admin.auth import Access, Editor, Reader
from quiver.admin.entities import JsonObject, Message
from quiver.admin.issues import Within
from quiver.admin.pagination import Cursor, Limit, paginate
from quiver.admin.problems import ApiProblem, ProblemIssue
from quiver.admin.responses import WRITE, json_body, problems
from quiver.admin.schemas import CredentialDoc, CredentialPage
from quiver.admin.writes import canonical, commit, find, message_for, not_found
from quiver.store import Current

api = APIRouter(tags=["consumers"])


def credential_id(plugin: str, document: object) -> str:
    return hashlib.sha256(plugin.encode() + canonical(document)).hexdigest()[:16]


def _listed(consumer: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"id": credential_id(plugin, item), "plugin": plugin, **item}
        for plugin, items in (consumer.get("credentials") or {}).items()
        for item in items
    ]


def _consumer(access: Access, document: dict[str, Any], name: str) -> tuple[int, dict[str, Any]]:
    found = find(document, "consumers", name)
    if found is None:
        raise not_found("consumer", name, access.team)
    return found


@api.get(
    "/consumers/{name}/credentials",
    response_model=CredentialPage,
    responses=problems(),
    summary="List a consumer's credentials",
)
def list_credentials(
    access: Reader, name: str, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    _, consumer = _consumer(access, access.declarations.read(access.team).document, name)
    page = paginate(_listed(consumer), lambda item: str(item["id"]), limit, cursor)
    return {"data": page.items, "next": page.next}


@api.post(
    "/consumers/{name}/credentials",
    status_code=201,
    response_model=CredentialDoc,
    responses=problems(*WRITE),
    openapi_extra=json_body("NewCredential"),
    summary="Add a credential to a consumer",
)
def add_credential(
    access: Editor, name: str, body: JsonObject, message: Message = None
) -> Response:
    plugin = body.get("plugin")
    if not isinstance(plugin, str) or not plugin:
        raise ApiProblem(
            422,
            "invalid-request",
            'name the plugin that checks the credential, e.g. "plugin": "key-auth"',
            errors=[ProblemIssue(pointer="/plugin", detail="a plugin name is required")],
        )
    credential = {key: value for key, value in body.items() if key != "plugin"}
    where: list[tuple[int, int]] = []
    sent: list[Within] = []

    def mutate(current: Current) -> object:
        index, consumer = _consumer(access, current.document, name)
        items = consumer.setdefault("credentials", {}).setdefault(plugin, [])
        if not isinstance(items, list):
            items = consumer["credentials"][plugin] = []
        where.append((index, len(items)))
        sent.append(Within(("consumers", index, "credentials", plugin, len(items))))
        sent.append(Within(("consumers", index, "credentials", plugin), "/plugin"))
        items.append(credential)
        return current.document

    edit = commit(
        access, mutate, message_for(message, "POST", f"/consumers/{name}/credentials"), sent
    )
    _, consumer = _consumer(access, edit.document, name)
    item = consumer["credentials"][plugin][where[0][1]]
    new_id = credential_id(plugin, item)
    return JSONResponse(
        {"id": new_id, "plugin": plugin, **item},
        201,
        headers={"Location": f"/consumers/{name}/credentials/{new_id}"},
    )


@api.get(
    "/consumers/{name}/credentials/{credential}",
    response_model=CredentialDoc,
    responses=problems(),
    summary="Get one credential of a consumer",
)
def get_credential(access: Reader, name: str, credential: str) -> dict[str, Any]:
    _, consumer = _consumer(access, access.declarations.read(access.team).document, name)
    for item in _listed(consumer):
        if item["id"] == credential:
            return item
    raise not_found("credential", credential, access.team)


@api.delete(
    "/consumers/{name}/credentials/{credential}",
    status_code=204,
    response_class=Response,
    responses=problems(*WRITE),
    summary="Remove a credential",
)
def delete_credential(
    access: Editor, name: str, credential: str, message: Message = None
) -> Response:
    def mutate(current: Current) -> object:
        _, consumer = _consumer(access, current.document, name)
        for plugin, items in (consumer.get("credentials") or {}).items():
            for index, item in enumerate(items):
                if credential_id(plugin, item) == credential:
                    del items[index]
                    return current.document
        raise not_found("credential", credential, access.team)

    commit(
        access,
        mutate,
        message_for(message, "DELETE", f"/consumers/{name}/credentials/{credential}"),
        conflict=True,
    )
    return Response(status_code=204)
