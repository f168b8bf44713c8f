"""The 20-operation test API: each operation against its server, then the same
calls made as tools (``tools_from_openapi`` → ``build_request`` → ``tool_result``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from mcp import types

from quiver.mcp.openapi_tools import build_request, tool_result, tools_from_openapi
from tests.mcp.api20 import DOCUMENT, Api20, serve_api20


@pytest.fixture
def api() -> Iterator[Api20]:
    with serve_api20() as api:
        yield api


@pytest.fixture
def client(api: Api20) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=5) as client:
        yield client


def test_the_document_has_twenty_operations() -> None:
    methods = ("get", "put", "post", "delete", "patch")
    count = sum(1 for item in DOCUMENT["paths"].values() for m in methods if m in item)
    assert count == 20


def test_every_operation_answers(client: httpx.Client) -> None:
    # notes
    assert client.get("/notes").json()["items"][0]["title"] == "First"
    created = client.post("/notes", json={"title": "Shopping", "text": "milk and eggs"})
    assert created.status_code == 201
    note_id = created.json()["id"]
    assert client.get(f"/notes/{note_id}").json()["text"] == "milk and eggs"
    replaced = client.put(f"/notes/{note_id}", json={"title": "Groceries", "text": "milk"})
    assert replaced.json()["title"] == "Groceries"
    assert client.patch(f"/notes/{note_id}", json={"pinned": True}).json()["pinned"] is True
    assert client.get("/notes", params={"pinned": "true"}).json()["items"][0]["id"] == note_id
    # tags
    assert client.post("/tags", json={"name": "food"}).status_code == 201
    assert [t["name"] for t in client.get("/tags").json()["items"]] == ["misc", "food"]
    assert client.put(f"/notes/{note_id}/tags/food").json()["tags"] == ["food"]
    assert client.get(f"/notes/{note_id}/tags").json() == ["food"]
    assert client.get("/notes", params={"tag": "food"}).json()["items"][0]["id"] == note_id
    search = client.get("/search", params={"q": "milk", "filter[tag]": "food", "limit": 5})
    assert [n["id"] for n in search.json()["items"]] == [note_id]
    assert client.delete(f"/notes/{note_id}/tags/food").json()["tags"] == []
    assert client.delete("/tags/food").status_code == 204
    # users
    user = client.post("/users", json={"name": "Grace", "role": "member"}).json()
    assert client.get(f"/users/{user['id']}").json()["name"] == "Grace"
    assert client.patch(f"/users/{user['id']}", json={"role": "admin"}).json()["role"] == "admin"
    assert len(client.get("/users", params={"role": "admin"}).json()["items"]) == 2
    assert client.get("/me", headers={"X-User-Id": str(user["id"])}).json()["id"] == user["id"]
    assert client.get("/stats").json() == {"notes": 2, "tags": 1, "users": 2}
    assert client.delete(f"/users/{user['id']}").status_code == 204
    assert client.delete(f"/notes/{note_id}").status_code == 204


def test_a_missing_item_is_a_problem_document(client: httpx.Client) -> None:
    response = client.get("/notes/999")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "note 999 does not exist"


# each tool once, in an order where every call finds what it needs
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("listNotes", {"limit": 10, "tag": ["misc"], "pinned": False}),
    ("createNote", {"title": "Shopping", "text": "milk", "X-Request-Id": "r-1"}),
    ("getNote", {"noteId": 101}),
    ("replaceNote", {"noteId": 101, "title": "Groceries", "text": "milk and eggs"}),
    ("updateNote", {"noteId": 101, "pinned": True}),
    ("createTag", {"name": "food", "color": None}),
    ("tagNote", {"noteId": 101, "tag": "food"}),
    ("listNoteTags", {"noteId": 101}),
    ("searchNotes", {"q": "eggs", "filter": {"tag": "food"}, "limit": 5}),
    ("untagNote", {"noteId": 101, "tag": "food"}),
    ("listTags", {}),
    ("deleteTag", {"name": "food"}),
    ("createUser", {"name": "Grace", "role": "member"}),
    ("getUser", {"userId": 102}),
    ("updateUser", {"userId": 102, "role": "admin"}),
    ("listUsers", {"role": "admin", "limit": 5}),
    ("whoAmI", {"X-User-Id": 102}),
    ("getStats", {}),
    ("deleteUser", {"userId": 102}),
    ("deleteNote", {"noteId": 101}),
]


def test_every_tool_call_succeeds_against_the_api(client: httpx.Client) -> None:
    operations = tools_from_openapi(DOCUMENT)
    assert len(operations) == 20
    assert operations.skipped == []
    by_name = {operation.name: operation for operation in operations}
    assert sorted(by_name) == sorted(name for name, _ in CALLS)
    for operation in operations:
        tool = operation.tool()
        types.Tool.model_validate(tool)
        Draft202012Validator.check_schema(tool["inputSchema"])
        if "outputSchema" in tool:
            Draft202012Validator.check_schema(tool["outputSchema"])

    for name, arguments in CALLS:
        operation = by_name[name]
        request = build_request(operation, arguments)
        headers = list(request.headers)
        if request.content_type:
            headers.append(("Content-Type", request.content_type))
        response = client.request(
            request.method, request.target, headers=headers, content=request.body
        )
        assert response.is_success, (name, response.status_code, response.text)
        result = tool_result(
            operation, response.status_code, response.headers.get("content-type"), response.content
        )
        assert result["isError"] is False, (name, result)
        types.CallToolResult.model_validate(result)
        if operation.output_schema is not None:
            Draft202012Validator(operation.output_schema).validate(result["structuredContent"])

    stats = client.get("/stats").json()
    assert stats == {"notes": 1, "tags": 1, "users": 1}


def test_a_tool_call_for_a_missing_item_is_an_error_result(client: httpx.Client) -> None:
    operation = next(o for o in tools_from_openapi(DOCUMENT) if o.name == "getNote")
    request = build_request(operation, {"noteId": 999})
    response = client.request(request.method, request.target)
    result = tool_result(
        operation, response.status_code, response.headers["content-type"], response.content
    )
    assert result["isError"] is True
    assert result["content"] == [
        {"type": "text", "text": "HTTP 404: Not Found: note 999 does not exist"}
    ]
    assert result["structuredContent"]["status"] == 404
