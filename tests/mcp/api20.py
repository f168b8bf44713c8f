"""A small API of exactly 20 operations for the MCP gateway's tests.

``DOCUMENT`` is its OpenAPI 3.1 description (components referenced with ``$ref``,
path, query and header parameters, JSON bodies); :func:`serve_api20` runs it on
127.0.0.1:0 with in-memory notes, tags and users, and yields the running
:class:`Api20` (``url`` is its base URL).  A missing note or user is a 404
``application/problem+json``; ``GET /openapi.json`` answers the document (not one of
the 20).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.upstream import Conn, Request, Upstream

Json = Any


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_NOT_FOUND = {"$ref": "#/components/responses/NotFound"}
_NO_CONTENT = {"204": {"description": "Done"}}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Notes", "version": "1.0.0"},
    "paths": {
        "/notes": {
            "get": {
                "operationId": "listNotes",
                "summary": "List notes",
                "parameters": [
                    {"$ref": "#/components/parameters/Limit"},
                    {
                        "name": "tag",
                        "in": "query",
                        "description": "only notes with all these tags",
                        "schema": {"type": "array", "items": {"type": "string"}},
                    },
                    {"name": "pinned", "in": "query", "schema": {"type": "boolean"}},
                ],
                "responses": {"200": _json(_ref("NoteList"))},
            },
            "post": {
                "operationId": "createNote",
                "summary": "Create a note",
                "parameters": [
                    {"name": "X-Request-Id", "in": "header", "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NoteInput")}},
                },
                "responses": {"201": _json(_ref("Note"), "Created")},
            },
        },
        "/notes/{noteId}": {
            "parameters": [{"$ref": "#/components/parameters/NoteId"}],
            "get": {
                "operationId": "getNote",
                "summary": "Get a note",
                "responses": {"200": _json(_ref("Note")), "404": _NOT_FOUND},
            },
            "put": {
                "operationId": "replaceNote",
                "summary": "Replace a note",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NoteInput")}},
                },
                "responses": {"200": _json(_ref("Note")), "404": _NOT_FOUND},
            },
            "patch": {
                "operationId": "updateNote",
                "summary": "Change some fields of a note",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("NotePatch")}},
                },
                "responses": {"200": _json(_ref("Note")), "404": _NOT_FOUND},
            },
            "delete": {
                "operationId": "deleteNote",
                "summary": "Delete a note",
                "responses": {**_NO_CONTENT, "404": _NOT_FOUND},
            },
        },
        "/notes/{noteId}/tags": {
            "parameters": [{"$ref": "#/components/parameters/NoteId"}],
            "get": {
                "operationId": "listNoteTags",
                "summary": "The tags of a note",
                "responses": {
                    "200": _json({"type": "array", "items": {"type": "string"}}),
                    "404": _NOT_FOUND,
                },
            },
        },
        "/notes/{noteId}/tags/{tag}": {
            "parameters": [
                {"$ref": "#/components/parameters/NoteId"},
                {"name": "tag", "in": "path", "required": True, "schema": {"type": "string"}},
            ],
            "put": {
                "operationId": "tagNote",
                "summary": "Put a tag on a note",
                "responses": {"200": _json(_ref("Note")), "404": _NOT_FOUND},
            },
            "delete": {
                "operationId": "untagNote",
                "summary": "Take a tag off a note",
                "responses": {"200": _json(_ref("Note")), "404": _NOT_FOUND},
            },
        },
        "/search": {
            "get": {
                "operationId": "searchNotes",
                "summary": "Search notes",
                "description": "Notes whose title or text contains the words.",
                "parameters": [
                    {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "filter",
                        "in": "query",
                        "style": "deepObject",
                        "explode": True,
                        "schema": {
                            "type": "object",
                            "properties": {"tag": {"type": "string"}},
                        },
                    },
                    {"$ref": "#/components/parameters/Limit"},
                ],
                "responses": {"200": _json(_ref("NoteList"))},
            },
        },
        "/tags": {
            "get": {
                "operationId": "listTags",
                "summary": "List tags",
                "responses": {"200": _json(_ref("TagList"))},
            },
            "post": {
                "operationId": "createTag",
                "summary": "Create a tag",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("Tag")}},
                },
                "responses": {"201": _json(_ref("Tag"), "Created")},
            },
        },
        "/tags/{name}": {
            "delete": {
                "operationId": "deleteTag",
                "summary": "Delete a tag",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {**_NO_CONTENT, "404": _NOT_FOUND},
            },
        },
        "/users": {
            "get": {
                "operationId": "listUsers",
                "summary": "List users",
                "parameters": [
                    {
                        "name": "role",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["admin", "member"]},
                    },
                    {"$ref": "#/components/parameters/Limit"},
                ],
                "responses": {"200": _json(_ref("UserList"))},
            },
            "post": {
                "operationId": "createUser",
                "summary": "Create a user",
                "requestBody": {"$ref": "#/components/requestBodies/UserInput"},
                "responses": {"201": _json(_ref("User"), "Created")},
            },
        },
        "/users/{userId}": {
            "parameters": [{"$ref": "#/components/parameters/UserId"}],
            "get": {
                "operationId": "getUser",
                "summary": "Get a user",
                "responses": {"200": _json(_ref("User")), "404": _NOT_FOUND},
            },
            "patch": {
                "operationId": "updateUser",
                "summary": "Change a user",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("UserPatch")}},
                },
                "responses": {"200": _json(_ref("User")), "404": _NOT_FOUND},
            },
            "delete": {
                "operationId": "deleteUser",
                "summary": "Delete a user",
                "responses": {**_NO_CONTENT, "404": _NOT_FOUND},
            },
        },
        "/me": {
            "get": {
                "operationId": "whoAmI",
                "summary": "The calling user",
                "parameters": [
                    {
                        "name": "X-User-Id",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
                "responses": {"200": _json(_ref("User")), "404": _NOT_FOUND},
            },
        },
        "/stats": {
            "get": {
                "operationId": "getStats",
                "summary": "Counts of everything",
                "responses": {"200": _json(_ref("Stats"))},
            },
        },
    },
    "components": {
        "parameters": {
            "NoteId": {
                "name": "noteId",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
            "UserId": {
                "name": "userId",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1},
            },
            "Limit": {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
        },
        "requestBodies": {
            "UserInput": {
                "required": True,
                "content": {"application/json": {"schema": _ref("UserInput")}},
            }
        },
        "responses": {
            "NotFound": {
                "description": "No such item",
                "content": {"application/problem+json": {"schema": _ref("Problem")}},
            }
        },
        "schemas": {
            "NoteInput": {
                "type": "object",
                "required": ["title"],
                "properties": {
                    "title": {"type": "string", "minLength": 1},
                    "text": {"type": "string"},
                    "pinned": {"type": "boolean"},
                },
            },
            "NotePatch": {
                "type": "object",
                "properties": {
                    "title": {"type": "string", "minLength": 1},
                    "text": {"type": "string"},
                    "pinned": {"type": "boolean"},
                },
            },
            "Note": {
                "type": "object",
                "required": ["id", "title", "text", "pinned", "tags"],
                "properties": {
                    "id": {"type": "integer"},
                    "title": {"type": "string"},
                    "text": {"type": "string"},
                    "pinned": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
            "NoteList": {
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "items": _ref("Note")}},
            },
            "Tag": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9-]+$"},
                    "color": {"type": ["string", "null"]},
                },
            },
            "TagList": {
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "items": _ref("Tag")}},
            },
            "UserInput": {
                "type": "object",
                "required": ["name", "role"],
                "properties": {
                    "name": {"type": "string"},
                    "role": {"type": "string", "enum": ["admin", "member"]},
                },
            },
            "UserPatch": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "role": {"type": "string", "enum": ["admin", "member"]},
                },
            },
            "User": {
                "type": "object",
                "required": ["id", "name", "role"],
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "role": {"type": "string", "enum": ["admin", "member"]},
                },
            },
            "UserList": {
                "type": "object",
                "required": ["items"],
                "properties": {"items": {"type": "array", "items": _ref("User")}},
            },
            "Stats": {
                "type": "object",
                "required": ["notes", "tags", "users"],
                "properties": {
                    "notes": {"type": "integer"},
                    "tags": {"type": "integer"},
                    "users": {"type": "integer"},
                },
            },
            "Problem": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}


class _Answer(Exception):
    def __init__(self, status: int, document: Json = None) -> None:
        self.status = status
        self.document = document


def _not_found(what: str) -> _Answer:
    return _Answer(
        404, {"type": "about:blank", "title": "Not Found", "status": 404, "detail": what}
    )


@dataclass
class Call:
    """One request as a handler sees it."""

    params: dict[str, str]  # path variables, decoded
    query: dict[str, list[str]]
    request: Request
    body: Json


Handler = Callable[[Call], Json]


class Api20:
    """The API's state and handlers; one per running server."""

    def __init__(self) -> None:
        self.notes: dict[int, dict[str, Any]] = {
            1: {"id": 1, "title": "First", "text": "hello", "pinned": False, "tags": ["misc"]}
        }
        self.tags: dict[str, dict[str, Any]] = {"misc": {"name": "misc", "color": None}}
        self.users: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "Ada", "role": "admin"}}
        self.next_id = 100
        self.url = ""
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/notes", self.list_notes),
            ("POST", "/notes", self.create_note),
            ("GET", "/notes/{noteId}", self.get_note),
            ("PUT", "/notes/{noteId}", self.replace_note),
            ("PATCH", "/notes/{noteId}", self.update_note),
            ("DELETE", "/notes/{noteId}", self.delete_note),
            ("GET", "/notes/{noteId}/tags", self.list_note_tags),
            ("PUT", "/notes/{noteId}/tags/{tag}", self.tag_note),
            ("DELETE", "/notes/{noteId}/tags/{tag}", self.untag_note),
            ("GET", "/search", self.search_notes),
            ("GET", "/tags", self.list_tags),
            ("POST", "/tags", self.create_tag),
            ("DELETE", "/tags/{name}", self.delete_tag),
            ("GET", "/users", self.list_users),
            ("POST", "/users", self.create_user),
            ("GET", "/users/{userId}", self.get_user),
            ("PATCH", "/users/{userId}", self.update_user),
            ("DELETE", "/users/{userId}", self.delete_user),
            ("GET", "/me", self.who_am_i),
            ("GET", "/stats", self.stats),
        ]
        self.routes = [
            (method, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$"), h)
            for method, path, h in routes
        ]

    # -- the connection loop

    def serve(self, conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            status, document = self.answer(request)
            if status == 204:
                conn.respond(204, b"", reason="No Content")
            else:
                kind = "application/problem+json" if status >= 400 else "application/json"
                conn.respond(status, json.dumps(document).encode(), [("Content-Type", kind)])
            if not request.keep_alive:
                conn.close()
                return

    def answer(self, request: Request) -> tuple[int, Json]:
        target = urlsplit(request.path)
        path = target.path
        if path == "/openapi.json" and request.method == "GET":
            return 200, DOCUMENT  # (its own description, as many APIs serve it)
        query = parse_qs(target.query)
        allowed = False
        for method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match is None:
                continue
            allowed = True
            if method != request.method:
                continue
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            try:
                body = json.loads(request.body) if request.body else None
                result = handler(Call(params, query, request, body))
            except _Answer as answer:
                return answer.status, answer.document
            except (ValueError, KeyError, TypeError) as exc:
                problem = {"title": "Bad Request", "status": 400, "detail": str(exc)}
                return 400, problem
            return (201 if method == "POST" else 200, result) if result is not None else (204, None)
        if allowed:
            return 405, {"title": "Method Not Allowed", "status": 405}
        return 404, {"title": "Not Found", "status": 404, "detail": f"no route for {path}"}

    # -- notes

    def _note(self, params: dict[str, str]) -> dict[str, Any]:
        note = self.notes.get(int(params["noteId"]))
        if note is None:
            raise _not_found(f"note {params['noteId']} does not exist")
        return note

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    @staticmethod
    def _limit(query: dict[str, list[str]]) -> int:
        return int(query.get("limit", ["20"])[0])

    def list_notes(self, call: Call) -> Json:
        notes = list(self.notes.values())
        for tag in call.query.get("tag", []):
            notes = [n for n in notes if tag in n["tags"]]
        if "pinned" in call.query:
            notes = [n for n in notes if n["pinned"] == (call.query["pinned"][0] == "true")]
        return {"items": notes[: self._limit(call.query)]}

    def create_note(self, call: Call) -> Json:
        if not isinstance(call.body.get("title"), str) or not call.body["title"]:
            raise ValueError("a note needs a title")
        note = {
            "id": self._new_id(),
            "title": call.body["title"],
            "text": call.body.get("text", ""),
            "pinned": call.body.get("pinned", False),
            "tags": [],
        }
        self.notes[note["id"]] = note
        return note

    def get_note(self, call: Call) -> Json:
        return self._note(call.params)

    def replace_note(self, call: Call) -> Json:
        note = self._note(call.params)
        body = call.body
        note.update(title=body["title"], text=body.get("text", ""))
        note["pinned"] = body.get("pinned", False)
        return note

    def update_note(self, call: Call) -> Json:
        note = self._note(call.params)
        fields = ("title", "text", "pinned")
        note.update({k: v for k, v in (call.body or {}).items() if k in fields})
        return note

    def delete_note(self, call: Call) -> Json:
        self._note(call.params)
        del self.notes[int(call.params["noteId"])]
        return None

    def list_note_tags(self, call: Call) -> Json:
        return self._note(call.params)["tags"]

    def tag_note(self, call: Call) -> Json:
        note = self._note(call.params)
        if call.params["tag"] not in self.tags:
            raise _not_found(f"tag {call.params['tag']} does not exist")
        if call.params["tag"] not in note["tags"]:
            note["tags"].append(call.params["tag"])
        return note

    def untag_note(self, call: Call) -> Json:
        note = self._note(call.params)
        if call.params["tag"] not in note["tags"]:
            raise _not_found(f"note {note['id']} has no tag {call.params['tag']}")
        note["tags"].remove(call.params["tag"])
        return note

    def search_notes(self, call: Call) -> Json:
        words = call.query["q"][0].lower().split()
        found = [
            n
            for n in self.notes.values()
            if all(w in (n["title"] + " " + n["text"]).lower() for w in words)
        ]
        if "filter[tag]" in call.query:
            found = [n for n in found if call.query["filter[tag]"][0] in n["tags"]]
        return {"items": found[: self._limit(call.query)]}

    # -- tags

    def list_tags(self, call: Call) -> Json:
        return {"items": list(self.tags.values())}

    def create_tag(self, call: Call) -> Json:
        if not re.fullmatch(r"[a-z0-9-]+", call.body["name"]):
            raise ValueError("a tag name is lower-case letters, digits and dashes")
        tag = {"name": call.body["name"], "color": call.body.get("color")}
        self.tags[tag["name"]] = tag
        return tag

    def delete_tag(self, call: Call) -> Json:
        if self.tags.pop(call.params["name"], None) is None:
            raise _not_found(f"tag {call.params['name']} does not exist")
        for note in self.notes.values():
            if call.params["name"] in note["tags"]:
                note["tags"].remove(call.params["name"])
        return None

    # -- users

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(int(user_id))
        if user is None:
            raise _not_found(f"user {user_id} does not exist")
        return user

    def list_users(self, call: Call) -> Json:
        users = list(self.users.values())
        if "role" in call.query:
            users = [u for u in users if u["role"] == call.query["role"][0]]
        return {"items": users[: self._limit(call.query)]}

    def create_user(self, call: Call) -> Json:
        if call.body["role"] not in ("admin", "member"):
            raise ValueError("role is admin or member")
        user = {"id": self._new_id(), "name": call.body["name"], "role": call.body["role"]}
        self.users[user["id"]] = user
        return user

    def get_user(self, call: Call) -> Json:
        return self._user(call.params["userId"])

    def update_user(self, call: Call) -> Json:
        user = self._user(call.params["userId"])
        user.update({k: v for k, v in (call.body or {}).items() if k in ("name", "role")})
        return user

    def delete_user(self, call: Call) -> Json:
        self._user(call.params["userId"])
        del self.users[int(call.params["userId"])]
        return None

    def who_am_i(self, call: Call) -> Json:
        user_id = call.request.header("x-user-id")
        if user_id is None:
            raise ValueError("X-User-Id is required")
        return self._user(user_id)

    def stats(self, call: Call) -> Json:
        return {"notes": len(self.notes), "tags": len(self.tags), "users": len(self.users)}


@contextlib.contextmanager
def serve_api20() -> Iterator[Api20]:
    """The API running on 127.0.0.1:0 (``api.url`` is its base URL) with fresh data."""
    api = Api20()
    with Upstream(handler=api.serve) as upstream:
        api.url = upstream.url
        yield api
