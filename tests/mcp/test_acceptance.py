"""Acceptance of the MCP gateway as a user meets it, from docs/mcp.md alone.

One ``quiver serve`` of two workers (with its admin API, call log and metrics) fronts
the 20-operation API of ``api20`` in many ways (key-auth and a rate limit, quota,
acl, request-validator, basic-auth, introspection, jwt with an audience, file,
inline, OpenAPI 3.0 and ``$ref``-heavy documents, include and exclude, the
gateway's own resources and a prompt API), and two SDK-built MCP servers (one of
Streamable HTTP, one of the older HTTP+SSE transport) aggregated behind an
``mcp`` target with per-consumer access rules.  Everything is driven through
sockets: the official SDK client, ``httpx`` for the wire and raw connections whose
worker is known.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import httpx2
import jwt as pyjwt
import pytest
from jsonschema import Draft202012Validator
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from tests.mcp.api20 import DOCUMENT, Api20, serve_api20
from tests.mcp.servers import TOKEN, McpServerThread
from tests.support.catalog import load_config_text
from tests.support.problems import assert_problem
from tests.support.process import QuiverProcess
from tests.support.proxy import Client as RawClient
from tests.support.proxy import Response, RunningProxy
from tests.support.spread import serving_workers
from tests.support.upstream import Conn, Upstream

T = TypeVar("T")

ADMIN_TOKEN = "qv_" + "A" * 43
JWT_SECRET = "a-secret-of-at-least-thirty-two-bytes!!"
RESOURCE = "http://gateway.test/secure/mcp"
RESOURCE2 = "http://gateway.test/secure2/mcp"
MODERN = "2026-07-28"
LEGACY = "2025-11-25"
KEYS = {
    name: f"{name}-key-0123456789"
    for name in ("alice", "bob", "carol", "erin", "frank", "dave", "gina", "hank")
}

# -- documents


DOC30: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Tags 3.0", "version": "1"},
    "paths": {
        "/tags": {
            "post": {
                "operationId": "createTag30",
                "summary": "Create a tag",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string", "example": "red"},
                                    "color": {"type": "string", "nullable": True},
                                    "weight": {
                                        "type": "number",
                                        "minimum": 0,
                                        "exclusiveMinimum": True,
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "Created",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "name": {"type": "string"},
                                        "color": {"type": "string", "nullable": True},
                                    },
                                }
                            }
                        },
                    }
                },
            }
        }
    },
}

REFS: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Refs", "version": "1"},
    "paths": {
        "/notes": {
            "post": {
                "operationId": "createNoteRef",
                "summary": "Create a note, every part a $ref",
                "requestBody": {"$ref": "#/components/requestBodies/NoteBody"},
                "responses": {"201": {"$ref": "#/components/responses/NoteOk"}},
            }
        },
        "/notes/{noteId}": {
            "parameters": [{"$ref": "#/components/parameters/NoteId"}],
            "get": {
                "operationId": "getNoteRef",
                "summary": "Get a note",
                "responses": {"200": {"$ref": "#/components/responses/NoteOk"}},
            },
            "put": {
                "operationId": "replaceNoteTree",
                "summary": "Replace a note with a tree of related notes",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Tree"}}
                    }
                },
                "responses": {"200": {"$ref": "#/components/responses/NoteOk"}},
            },
        },
    },
    "components": {
        "parameters": {
            "NoteId": {
                "name": "noteId",
                "in": "path",
                "required": True,
                "schema": {"$ref": "#/components/schemas/Id"},
            }
        },
        "requestBodies": {
            "NoteBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/In"}}},
            }
        },
        "responses": {
            "NoteOk": {
                "description": "A note",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Note"}}},
            }
        },
        "schemas": {
            "Id": {"type": "integer", "minimum": 1},
            "Title": {"type": "string", "minLength": 1},
            "In": {
                "type": "object",
                "required": ["title"],
                "properties": {"title": {"$ref": "#/components/schemas/Title"}},
            },
            "Note": {
                "type": "object",
                "properties": {
                    "id": {"$ref": "#/components/schemas/Id"},
                    "title": {"$ref": "#/components/schemas/Title"},
                },
            },
            "Tree": {
                "type": "object",
                "properties": {
                    "title": {"$ref": "#/components/schemas/Title"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Tree"}},
                },
            },
        },
    },
}

OPERATIONS = [
    (op["operationId"], method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method, op in item.items()
    if method != "parameters"
]


# -- servers


def _introspection(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        form = dict(p.split("=", 1) for p in request.body.decode().split("&") if "=" in p)
        if form.get("token") == "good-token":
            answer = {"active": True, "username": "alice", "exp": int(time.time()) + 3600}
        else:
            answer = {"active": False}
        conn.respond(200, json.dumps(answer).encode(), [("Content-Type", "application/json")])


def _model(conn: Conn) -> None:
    while conn.read_request() is not None:
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "m1",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "a short summary"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
        conn.respond(200, json.dumps(answer).encode(), [("Content-Type", "application/json")])


class Gateway:
    def __init__(self, proc: QuiverProcess, admin: str, api: Api20) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{proc.port}"
        self.port = proc.port
        self.admin = admin
        self.api = api

    def admin_get(self, path: str) -> httpx.Response:
        return httpx.get(
            self.admin + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )


@pytest.fixture(scope="module")
def api() -> Iterator[Api20]:
    with serve_api20() as running:
        yield running


@pytest.fixture(scope="module")
def alpha() -> Iterator[McpServerThread]:
    with McpServerThread("modern", "alpha") as server:
        yield server


@pytest.fixture(scope="module")
def beta() -> Iterator[McpServerThread]:
    with McpServerThread("sse", "beta") as server:
        yield server


def _config(
    directory: Path, api: Api20, alpha: str, beta: str, introspect: str, model: str
) -> dict[str, Any]:
    def published(name: str, path: str, plugins: dict[str, Any], **mcp: Any) -> dict[str, Any]:
        return {
            "name": name,
            "paths": [path],
            "strip_path": True,
            "target": "api",
            "plugins": plugins,
            "mcp": mcp,
        }

    key: dict[str, Any] = {"key-auth": {}}
    inline = {"document": DOCUMENT}
    consumers: list[dict[str, Any]] = [
        {"name": name, "credentials": {"key-auth": [{"key": k}]}} for name, k in KEYS.items()
    ]
    alice = consumers[0]
    alice["groups"] = ["staff"]
    alice["credentials"]["basic-auth"] = [{"username": "alice", "password": "alice-pw"}]
    alice["credentials"]["jwt"] = [{"key": "issuer-1", "secret": JWT_SECRET}]
    (directory / "api20.json").write_text(json.dumps(DOCUMENT))
    return {
        "listen": "127.0.0.1:0",
        "workers": 2,
        "run_dir": str(directory / "run"),
        "admin_listen": "127.0.0.1:0",
        "metrics": {"requests": True},
        "resources_db": str(directory / "resources.db"),
        "resources": [
            {
                "name": "memos",
                "fields": {"title": {"type": "string", "minLength": 1}},
                "required": ["title"],
            }
        ],
        "ai": {
            "providers": [
                {"name": "fake", "type": "openai", "api_key": "k", "base_url": model + "/v1"}
            ],
            "models": [{"name": "m1", "deployments": [{"provider": "fake", "model": "m1"}]}],
        },
        "consumers": consumers,
        "targets": [
            {"name": "api", "url": api.url},
            {
                "name": "remote",
                "type": "mcp",
                "options": {
                    "servers": [
                        {
                            "name": "alpha",
                            "url": alpha,
                            "prefix": "alpha_",
                            "headers": {"Authorization": f"Bearer {TOKEN}"},
                        },
                        {
                            "name": "beta",
                            "url": beta,
                            "transport": "sse",
                            "prefix": "beta_",
                            "headers": {"Authorization": f"Bearer {TOKEN}"},
                        },
                    ],
                    "access": [
                        {"groups": ["staff"], "tools": ["*"], "resources": ["*"], "prompts": ["*"]},
                        {
                            "consumers": ["bob"],
                            "tools": ["alpha_echo", "beta_add"],
                            "resources": ["note://alpha/readme"],
                            "prompts": ["alpha_greet"],
                        },
                    ],
                },
            },
        ],
        "routes": [
            published("api20", "/api", key),
            published(
                "limited",
                "/limited",
                {**key, "rate-limit": {"limit": 3, "window": 3600, "by": ["consumer"]}},
                openapi={"file": "api20.json"},
            ),
            published(
                "quota",
                "/quota",
                {**key, "quota": {"limit": 2, "period": "day"}},
                openapi=inline,
                include=["getStats", "GET /notes/{noteId}"],
            ),
            published(
                "acl",
                "/acl",
                {**key, "acl": {"allow": ["staff"]}},
                openapi=inline,
                include=["getStats"],
            ),
            published(
                "validated",
                "/validated",
                {
                    **key,
                    "request-validator": {
                        "body": {
                            "type": "object",
                            "properties": {"title": {"type": "string", "maxLength": 5}},
                        },
                        "body_required": False,
                    },
                },
                openapi=inline,
                include=["createNote", "getStats"],
            ),
            published(
                "excl", "/excl", {}, openapi=inline, exclude=["DELETE *", "* /users*", "whoAmI"]
            ),
            published("v30", "/v30", {}, openapi={"document": DOC30}),
            published("refs", "/refs", {}, openapi={"document": REFS}),
            published("basic", "/basic", {"basic-auth": {}}, openapi=inline, include=["getStats"]),
            published(
                "introspect",
                "/introspect",
                {
                    "oauth2-introspection": {
                        "introspection_url": introspect,
                        "client_auth": "none",
                        "consumer_claim": "username",
                    }
                },
                openapi=inline,
                include=["getStats"],
            ),
            published(
                "secure",
                "/secure",
                {"jwt": {"algorithms": ["HS256"], "audiences": [RESOURCE]}},
                openapi=inline,
                include=["getStats"],
                oauth={
                    "resource": RESOURCE,
                    "authorization_servers": ["https://login.example.com"],
                    "scopes_supported": ["notes.read"],
                },
            ),
            published(
                "secure2",
                "/secure2",
                {"jwt": {"algorithms": ["HS256"], "audiences": [RESOURCE2]}},
                openapi=inline,
                include=["getStats"],
                oauth={
                    "resource": RESOURCE2,
                    "authorization_servers": ["https://login.example.com"],
                },
            ),
            {
                "name": "tools",
                "paths": ["/tools"],
                "mcp": {"openapi": {"path": "/openapi/resources.json"}},
            },
            {
                "name": "summarize",
                "paths": ["/summarize"],
                "ai": {"prompt": {"model": "m1", "template": 'Summarise: "{{text}}"'}},
            },
            {
                "name": "ptools",
                "paths": ["/ptools"],
                "mcp": {"openapi": {"path": "/summarize/openapi.json"}},
            },
            {"name": "remote", "paths": ["/remote"], "target": "remote", "plugins": key},
        ],
    }


@pytest.fixture(scope="module")
def gateway(
    api: Api20,
    alpha: McpServerThread,
    beta: McpServerThread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("acceptance")
    with Upstream(handler=_introspection) as introspect, Upstream(handler=_model) as model:
        config = _config(directory, api, alpha.url, beta.url, introspect.url, model.url)
        path = directory / "quiver.yaml"
        path.write_text(json.dumps(config, indent=1))
        env: dict[str, str | None] = {"QUIVER_ADMIN_TOKEN": ADMIN_TOKEN}
        with QuiverProcess(["serve", "-c", str(path)], cwd=directory, env=env) as proc:
            proc.wait_listening()
            [match] = proc.wait_for(r"admin API listening on (http://[\d.]+:\d+)")
            yield Gateway(proc, match.group(1), api)


# -- clients


def _with_client(
    url: str,
    work: Callable[[Client], Awaitable[T]],
    *,
    mode: str = "auto",
    headers: dict[str, str] | None = None,
    fresh: bool = False,
) -> T:
    """``work(client)`` on an SDK client of ``url``; ``fresh`` opens a connection per
    request (no keep-alive), so successive requests meet any worker."""

    async def run() -> T:
        limits = httpx2.Limits(max_keepalive_connections=0) if fresh else httpx2.Limits()
        async with (
            httpx2.AsyncClient(headers=headers or {}, timeout=20, limits=limits) as http,
            Client(streamable_http_client(url, http_client=http), mode=mode) as client,
        ):
            return await work(client)

    return asyncio.run(run())


async def _all_tools(client: Client) -> list[Any]:
    tools: list[Any] = []
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools


def _key(name: str) -> dict[str, str]:
    return {"apikey": KEYS[name]}


def _meta(version: str = MODERN) -> dict[str, Any]:
    return {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
    }


def modern_post(
    url: str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    fields: dict[str, str] | None = None,
    version: str = MODERN,
) -> httpx.Response:
    """One 2026-07-28 request on a fresh connection; ``fields`` replace the header
    fields derived from the body (a value of "" leaves the field out)."""
    body_params = {**(params or {}), "_meta": _meta(version)}
    derived = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": version,
        "Mcp-Method": method,
    }
    name = (params or {}).get("name") or (params or {}).get("uri")
    if name is not None:
        derived["Mcp-Name"] = name
    derived.update(fields or {})
    sent = {k: v for k, v in {**derived, **(headers or {})}.items() if v != ""}
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": body_params}
    return httpx.post(url, json=message, headers=sent, timeout=20)


def raw_rpc(
    client: RawClient,
    path: str,
    message: dict[str, Any],
    headers: dict[str, str],
) -> Response:
    fields = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        **headers,
    }
    return client.request("POST", path, fields, json.dumps(message).encode())


def initialize_message(version: str = LEGACY) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "acceptance", "version": "1"},
        },
    }


def legacy_session(url: str, headers: dict[str, str], version: str = LEGACY) -> httpx.Response:
    return httpx.post(
        url,
        json=initialize_message(version),
        headers={"Accept": "application/json, text/event-stream", **headers},
        timeout=20,
    )


def legacy_post(
    url: str, session: str, method: str, params: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    fields = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": LEGACY,
        "Mcp-Session-Id": session,
        **headers,
    }
    message = {"jsonrpc": "2.0", "id": 2, "method": method, "params": params}
    return httpx.post(url, json=message, headers=fields, timeout=20)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    as_raw = Response(
        response.status_code,
        response.reason_phrase,
        list(response.headers.items()),
        response.content,
        complete=True,
    )
    return assert_problem(as_raw, status)


def _poll(fetch: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = fetch()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        time.sleep(0.2)


# -- 1. OpenAPI as tools: the Done-when lines


def _twenty_calls(client: Client) -> Awaitable[dict[str, Any]]:
    async def run() -> dict[str, Any]:
        results: dict[str, Any] = {}

        async def call(name: str, args: dict[str, Any]) -> Any:
            result = await client.call_tool(name, args)
            assert not result.is_error, (name, result)
            results[name] = result
            return result.structured_content

        note = await call("createNote", {"title": "t1", "text": "some words"})
        nid = note["id"]
        await call("listNotes", {"limit": 5})
        await call("getNote", {"noteId": nid})
        await call("replaceNote", {"noteId": nid, "title": "t2", "text": "other words"})
        await call("updateNote", {"noteId": nid, "pinned": True})
        await call("tagNote", {"noteId": nid, "tag": "misc"})
        await call("listNoteTags", {"noteId": nid})
        await call("untagNote", {"noteId": nid, "tag": "misc"})
        await call("searchNotes", {"q": "other"})
        await call("createTag", {"name": "blue"})
        await call("listTags", {})
        await call("deleteTag", {"name": "blue"})
        user = await call("createUser", {"name": "Bo", "role": "member"})
        await call("listUsers", {"role": "member"})
        await call("getUser", {"userId": user["id"]})
        await call("updateUser", {"userId": user["id"], "name": "Bob"})
        await call("whoAmI", {"X-User-Id": 1})
        await call("getStats", {})
        await call("deleteUser", {"userId": user["id"]})
        await call("deleteNote", {"noteId": nid})
        return results

    return run()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_consumer_lists_the_twenty_operations_and_calls_each(gateway: Gateway, mode: str) -> None:
    async def work(client: Client) -> tuple[list[Any], dict[str, Any]]:
        return await _all_tools(client), await _twenty_calls(client)

    tools, results = _with_client(f"{gateway.url}/api/mcp", work, mode=mode, headers=_key("alice"))
    assert sorted(t.name for t in tools) == sorted(op for op, _, _ in OPERATIONS)
    by_name = {t.name: t for t in tools}
    assert by_name["getNote"].description.startswith("Get a note")
    assert by_name["searchNotes"].description.startswith("Search notes")
    assert "Notes whose title" in by_name["searchNotes"].description
    assert by_name["getNote"].input_schema["required"] == ["noteId"]
    assert by_name["getNote"].output_schema["properties"]["tags"]["type"] == "array"
    assert by_name["getNote"].annotations.read_only_hint is True
    assert by_name["deleteNote"].annotations.destructive_hint is True
    assert set(by_name["createNote"].input_schema["properties"]) >= {"title", "text", "pinned"}
    assert "X-User-Id" in by_name["whoAmI"].input_schema["properties"]
    assert len(results) == 20
    stats = results["getStats"]
    assert set(stats.structured_content) == {"notes", "tags", "users"}
    assert json.loads(stats.content[0].text) == stats.structured_content


def test_a_missing_note_is_an_error_result_with_the_problem(gateway: Gateway) -> None:
    async def work(client: Client) -> Any:
        return await client.call_tool("getNote", {"noteId": 9999})

    result = _with_client(f"{gateway.url}/api/mcp", work, headers=_key("alice"))
    assert result.is_error
    assert result.content[0].text.startswith("HTTP 404")
    assert result.structured_content["status"] == 404
    assert "9999" in result.structured_content["detail"]


def test_an_argument_breaking_the_input_schema_is_a_result_the_model_can_correct(
    gateway: Gateway,
) -> None:
    # (input validation errors are tool execution errors, not protocol errors, since
    # MCP 2025-11-25: the model reads them and tries again)
    async def work(client: Client) -> Any:
        return (
            await client.call_tool("getNote", {}),
            await client.call_tool("getNote", {"noteId": "one"}),
        )

    missing, wrong = _with_client(f"{gateway.url}/api/mcp", work, headers=_key("alice"))
    for result in (missing, wrong):
        assert result.is_error is True
        assert "noteId" in result.content[0].text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_without_a_key_nothing_is_listed(gateway: Gateway, mode: str) -> None:
    async def work(client: Client) -> Any:
        return await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the SDK's own error for a 401
        _with_client(f"{gateway.url}/api/mcp", work, mode=mode)
    with pytest.raises(Exception):  # noqa: B017
        _with_client(f"{gateway.url}/api/mcp", work, mode=mode, headers={"apikey": "wrong"})


def test_without_a_key_the_endpoint_answers_401_problem_with_request_id(gateway: Gateway) -> None:
    refused = modern_post(
        f"{gateway.url}/api/mcp", "tools/call", {"name": "getStats", "arguments": {}}
    )
    problem = _problem(refused, 401)
    assert refused.headers["X-Request-ID"] == problem["request_id"]
    legacy = legacy_session(f"{gateway.url}/api/mcp", {})
    _problem(legacy, 401)


@pytest.mark.parametrize(("mode", "consumer"), [("auto", "carol"), ("legacy", "erin")])
def test_the_rate_limit_counts_tool_calls_not_messages(
    gateway: Gateway, mode: str, consumer: str
) -> None:
    async def work(client: Client) -> list[Any]:
        for _ in range(4):
            await client.list_tools()
        return [await client.call_tool("getStats", {}) for _ in range(4)]

    results = _with_client(f"{gateway.url}/limited/mcp", work, mode=mode, headers=_key(consumer))
    assert [r.is_error for r in results] == [False, False, False, True]
    refused = results[3]
    assert refused.content[0].text.startswith("HTTP 429")
    assert refused.structured_content["status"] == 429
    assert refused.structured_content.get("request_id")


def test_tools_of_a_file_document(gateway: Gateway) -> None:
    names = _with_client(f"{gateway.url}/limited/mcp", _all_tools, headers=_key("alice"))
    assert len(names) == 20


def test_the_quota_counts_tool_calls_and_include_chooses_operations(gateway: Gateway) -> None:
    async def work(client: Client) -> tuple[list[Any], list[Any]]:
        tools = await _all_tools(client)
        calls = [await client.call_tool("getStats", {}) for _ in range(2)]
        calls.append(await client.call_tool("getNote", {"noteId": 1}))
        return tools, calls

    tools, calls = _with_client(f"{gateway.url}/quota/mcp", work, headers=_key("frank"))
    assert sorted(t.name for t in tools) == ["getNote", "getStats"]
    assert [c.is_error for c in calls] == [False, False, True]
    assert calls[2].content[0].text.startswith("HTTP 429")


def test_acl_refuses_a_consumer_outside_the_group(gateway: Gateway) -> None:
    url = f"{gateway.url}/acl/mcp"

    async def call(client: Client) -> Any:
        return await client.call_tool("getStats", {})

    assert not _with_client(url, call, headers=_key("alice")).is_error
    with pytest.raises(Exception):  # noqa: B017 - refused at the endpoint
        _with_client(url, call, headers=_key("bob"))
    refused = modern_post(
        url, "tools/call", {"name": "getStats", "arguments": {}}, headers=_key("bob")
    )
    _problem(refused, 403)


def test_request_validator_turns_a_bad_body_into_an_error_result(gateway: Gateway) -> None:
    async def work(client: Client) -> tuple[Any, Any]:
        bad = await client.call_tool("createNote", {"title": "far too long a title"})
        good = await client.call_tool("createNote", {"title": "short"})
        return bad, good

    bad, good = _with_client(f"{gateway.url}/validated/mcp", work, headers=_key("alice"))
    assert bad.is_error
    assert bad.content[0].text.startswith("HTTP 400")
    assert bad.structured_content["status"] == 400
    assert bad.structured_content["violations"][0]["pointer"] == "/title"
    assert not good.is_error and good.structured_content["title"] == "short"


def test_exclude_leaves_operations_out(gateway: Gateway) -> None:
    tools = _with_client(f"{gateway.url}/excl/mcp", _all_tools)
    expected = [
        op
        for op, method, path in OPERATIONS
        if method != "DELETE" and not path.startswith("/users") and op != "whoAmI"
    ]
    assert sorted(t.name for t in tools) == sorted(expected)


def test_openapi_30_nullable_example_and_exclusive_minimum(gateway: Gateway) -> None:
    async def work(client: Client) -> tuple[list[Any], Any]:
        tools = await _all_tools(client)
        result = await client.call_tool("createTag30", {"name": "nulled", "color": None})
        return tools, result

    [tool], result = _with_client(f"{gateway.url}/v30/mcp", work)
    schema = tool.input_schema
    checker = Draft202012Validator(schema)
    assert checker.is_valid({"name": "x", "color": None})
    assert not checker.is_valid({"name": "x", "weight": 0})
    assert checker.is_valid({"name": "x", "weight": 0.5})
    assert "nullable" not in json.dumps(schema)
    assert schema["properties"]["name"].get("examples") == ["red"]
    assert "example" not in schema["properties"]["name"]
    assert not result.is_error, result
    assert result.structured_content == {"name": "nulled", "color": None}


def test_a_ref_heavy_document_is_resolved(gateway: Gateway) -> None:
    async def work(client: Client) -> tuple[list[Any], Any, Any]:
        tools = await _all_tools(client)
        made = await client.call_tool("createNoteRef", {"title": "via refs"})
        got = await client.call_tool("getNoteRef", {"noteId": made.structured_content["id"]})
        return tools, made, got

    tools, made, got = _with_client(f"{gateway.url}/refs/mcp", work)
    by_name = {t.name: t for t in tools}
    assert set(by_name) == {"createNoteRef", "getNoteRef", "replaceNoteTree"}
    for tool in (by_name["createNoteRef"], by_name["getNoteRef"]):
        assert "#/components" not in json.dumps(tool.input_schema)
    assert by_name["getNoteRef"].input_schema["properties"]["noteId"]["type"] == "integer"
    assert by_name["createNoteRef"].input_schema["properties"]["title"]["minLength"] == 1
    assert by_name["getNoteRef"].output_schema["properties"]["id"]["type"] == "integer"
    tree = by_name["replaceNoteTree"].input_schema
    assert "#/components" not in json.dumps(tree)
    assert "$defs" in tree
    Draft202012Validator.check_schema(tree)
    nested = {"noteId": 1, "title": "a", "children": [{"title": "b", "children": [{"title": "c"}]}]}
    assert Draft202012Validator(tree).is_valid(nested)
    assert not made.is_error and got.structured_content["title"] == "via refs"


def test_the_gateways_own_resources_as_tools(gateway: Gateway) -> None:
    async def work(client: Client) -> tuple[list[Any], Any]:
        tools = await _all_tools(client)
        # the collection takes an item or an array of them: the body is one argument
        made = await client.call_tool("create-memos", {"body": {"title": "remember"}})
        return tools, made

    tools, made = _with_client(f"{gateway.url}/tools/mcp", work)
    names = {t.name for t in tools}
    assert {"list-memos", "create-memos", "get-memos"} <= names
    assert not made.is_error, made
    assert made.structured_content["title"] == "remember"
    listed = httpx.get(f"{gateway.url}/memos", timeout=10).json()
    assert "remember" in json.dumps(listed)


def test_a_prompt_api_as_a_tool(gateway: Gateway) -> None:
    async def work(client: Client) -> tuple[list[Any], Any]:
        tools = await _all_tools(client)
        result = await client.call_tool(tools[0].name, {"text": "a long text"})
        return tools, result

    tools, result = _with_client(f"{gateway.url}/ptools/mcp", work)
    assert len(tools) == 1
    assert "text" in tools[0].input_schema["properties"]
    assert not result.is_error, result
    assert result.structured_content == {"output": "a short summary"}


# -- 4. authentication plugins on MCP endpoints


def test_basic_auth_on_an_mcp_endpoint(gateway: Gateway) -> None:
    url = f"{gateway.url}/basic/mcp"
    good = "Basic " + base64.b64encode(b"alice:alice-pw").decode()
    bad = "Basic " + base64.b64encode(b"alice:nope").decode()

    async def call(client: Client) -> Any:
        return await client.call_tool("getStats", {})

    assert not _with_client(url, call, headers={"Authorization": good}).is_error
    _problem(modern_post(url, "tools/list", headers={"Authorization": bad}), 401)
    _problem(modern_post(url, "tools/list"), 401)


def test_oauth2_introspection_on_an_mcp_endpoint(gateway: Gateway) -> None:
    url = f"{gateway.url}/introspect/mcp"

    async def call(client: Client) -> Any:
        return await client.call_tool("getStats", {})

    ok = _with_client(url, call, headers={"Authorization": "Bearer good-token"})
    assert not ok.is_error
    _problem(modern_post(url, "tools/list", headers={"Authorization": "Bearer bad-token"}), 401)


def _token(audience: str | None) -> str:
    claims: dict[str, Any] = {"iss": "issuer-1", "exp": int(time.time()) + 600}
    if audience is not None:
        claims["aud"] = audience
    return pyjwt.encode(claims, JWT_SECRET, algorithm="HS256")


def test_protected_resource_metadata_and_the_challenge(gateway: Gateway) -> None:
    metadata = httpx.get(
        f"{gateway.url}/.well-known/oauth-protected-resource/secure/mcp", timeout=10
    )
    assert metadata.status_code == 200
    document = metadata.json()
    assert document["resource"] == RESOURCE
    assert document["authorization_servers"] == ["https://login.example.com"]
    assert document["scopes_supported"] == ["notes.read"]
    assert "header" in document["bearer_methods_supported"]
    refused = modern_post(f"{gateway.url}/secure/mcp", "tools/list")
    _problem(refused, 401)
    challenge = refused.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    expected = "http://gateway.test/.well-known/oauth-protected-resource/secure/mcp"
    assert f'resource_metadata="{expected}"' in challenge


def test_jwt_tokens_must_name_the_resource_as_audience(gateway: Gateway) -> None:
    url = f"{gateway.url}/secure/mcp"

    async def call(client: Client) -> Any:
        return await client.call_tool("getStats", {})

    right = {"Authorization": f"Bearer {_token(RESOURCE)}"}
    assert not _with_client(url, call, headers=right).is_error
    for audience in ("https://other.example.com/mcp", None):
        wrong = {"Authorization": f"Bearer {_token(audience)}"}
        refused = modern_post(url, "tools/list", headers=wrong)
        _problem(refused, 401)


# -- 3. protocol revisions on the wire


def test_server_discover_and_list_caching_fields(gateway: Gateway) -> None:
    url = f"{gateway.url}/api/mcp"
    discover = modern_post(url, "server/discover", headers=_key("alice"))
    assert discover.status_code == 200
    result = discover.json()["result"]
    assert MODERN in json.dumps(result)
    assert "tools" in json.dumps(result)
    listed = modern_post(url, "tools/list", headers=_key("alice"))
    body = listed.json()["result"]
    assert body["ttlMs"] == 0 and body["cacheScope"] == "private"
    assert listed.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("fields", "params"),
    [
        ({"Mcp-Method": "tools/list"}, {"name": "createNote", "arguments": {"title": "no"}}),
        ({"Mcp-Name": "getStats"}, {"name": "createNote", "arguments": {"title": "no"}}),
        ({"Mcp-Method": ""}, {"name": "createNote", "arguments": {"title": "no"}}),
        ({"Mcp-Name": ""}, {"name": "createNote", "arguments": {"title": "no"}}),
        ({"MCP-Protocol-Version": LEGACY}, {"name": "createNote", "arguments": {"title": "no"}}),
    ],
    ids=["method-differs", "name-differs", "method-missing", "name-missing", "version-differs"],
)
def test_header_fields_disagreeing_with_the_body_are_refused(
    gateway: Gateway, fields: dict[str, str], params: dict[str, Any]
) -> None:
    before = len(gateway.api.notes)
    refused = modern_post(
        f"{gateway.url}/api/mcp", "tools/call", params, headers=_key("alice"), fields=fields
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == -32020
    assert len(gateway.api.notes) == before


def test_a_header_field_sent_twice_is_refused(gateway: Gateway) -> None:
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "getStats", "arguments": {}, "_meta": _meta()},
    }
    body = json.dumps(message).encode()
    head = (
        "POST /api/mcp HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\n"
        f"MCP-Protocol-Version: {MODERN}\r\nMcp-Method: tools/call\r\n"
        "Mcp-Name: getStats\r\nMcp-Name: getStats\r\n"
        f"apikey: {KEYS['alice']}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with RawClient(gateway.port) as client:
        client.send(head.encode() + body)
        answer = client.read_response()
    assert answer.status == 400
    assert answer.json()["error"]["code"] == -32020


def test_an_unknown_version_names_the_supported_ones(gateway: Gateway) -> None:
    refused = modern_post(
        f"{gateway.url}/api/mcp", "tools/list", headers=_key("alice"), version="2099-01-01"
    )
    error = refused.json()["error"]
    assert error["code"] == -32022
    assert MODERN in error["data"]["supported"]


def test_initialize_with_an_unknown_version_agrees_on_2025_11_25(gateway: Gateway) -> None:
    opened = legacy_session(f"{gateway.url}/api/mcp", _key("alice"), version="1999-01-01")
    assert opened.status_code == 200
    assert opened.json()["result"]["protocolVersion"] == LEGACY
    assert opened.headers["Mcp-Session-Id"]


def test_get_and_delete_are_405_and_batches_are_refused(gateway: Gateway) -> None:
    url = f"{gateway.url}/api/mcp"
    assert httpx.get(url, headers=_key("alice"), timeout=10).status_code == 405
    assert httpx.delete(url, headers=_key("alice"), timeout=10).status_code == 405
    batch = [initialize_message(), initialize_message()]
    answer = httpx.post(
        url,
        json=batch,
        headers={"Accept": "application/json, text/event-stream", **_key("alice")},
        timeout=10,
    )
    text = answer.text
    assert "-32600" in text


def test_a_session_of_one_consumer_is_404_for_another(gateway: Gateway) -> None:
    url = f"{gateway.url}/api/mcp"
    session = legacy_session(url, _key("alice")).headers["Mcp-Session-Id"]
    own = legacy_post(url, session, "tools/list", {}, _key("alice"))
    assert own.status_code == 200 and own.json()["result"]["tools"]
    replayed = legacy_post(url, session, "tools/list", {}, _key("bob"))
    assert replayed.status_code == 404
    forged = legacy_post(
        url,
        session[:-2] + ("AA" if session[-2:] != "AA" else "BB"),
        "tools/list",
        {},
        _key("alice"),
    )
    assert forged.status_code == 404


def _two_workers(gateway: Gateway) -> tuple[RawClient, RawClient, list[RawClient]]:
    """Two raw connections held by two different workers (and all those opened)."""
    opened: list[RawClient] = []
    owners: dict[int, RawClient] = {}
    deadline = time.monotonic() + 20
    while len(owners) < 2:
        assert time.monotonic() < deadline, "the connections all went to one worker"
        client = RawClient(gateway.port)
        opened.append(client)
        client.request("GET", "/.well-known/oauth-protected-resource/secure/mcp")
        [owner] = serving_workers([client], gateway.port, gateway.proc.pid)
        owners.setdefault(owner, client)
    first, second = owners.values()
    return first, second, opened


@pytest.mark.parametrize("path", ["/api/mcp", "/remote/mcp"])
def test_a_session_opened_on_one_worker_is_served_by_another(gateway: Gateway, path: str) -> None:
    first, second, opened = _two_workers(gateway)
    try:
        fields = _key("alice")
        opened_on_first = raw_rpc(first, path, initialize_message(), fields)
        assert opened_on_first.status == 200
        session = opened_on_first.header("Mcp-Session-Id")
        assert session
        in_session = {**fields, "Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY}
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        assert raw_rpc(second, path, note, in_session).status == 202
        listed = raw_rpc(
            second, path, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, in_session
        )
        assert listed.status == 200, listed.body
        assert listed.json()["result"]["tools"]
        name, args = ("getStats", {}) if path == "/api/mcp" else ("alpha_add", {"a": 2, "b": 3})
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": name, "arguments": args},
        }
        called = raw_rpc(first, path, call, in_session)
        assert called.status == 200, called.body
        assert called.json()["result"].get("isError") is not True
    finally:
        for client in opened:
            client.close()


# -- 2. MCP servers behind the gateway


def _remote_view(
    gateway: Gateway, consumer: str, **options: Any
) -> tuple[set[str], set[str], set[str]]:
    async def work(client: Client) -> tuple[set[str], set[str], set[str]]:
        tools = {t.name for t in await _all_tools(client)}
        resources = {str(r.uri) for r in (await client.list_resources()).resources}
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        return tools, resources, prompts

    return _with_client(f"{gateway.url}/remote/mcp", work, headers=_key(consumer), **options)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_aggregated_servers_under_their_prefixes_for_staff(gateway: Gateway, mode: str) -> None:
    tools, resources, prompts = _remote_view(gateway, "alice", mode=mode, fresh=True)
    for prefix in ("alpha_", "beta_"):
        assert {f"{prefix}add", f"{prefix}echo", f"{prefix}secret_admin"} <= tools
        assert f"{prefix}greet" in prompts
    assert {"note://alpha/readme", "note://alpha/private", "note://beta/readme"} <= resources


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_consumer_sees_only_what_its_rule_allows(gateway: Gateway, mode: str) -> None:
    tools, resources, prompts = _remote_view(gateway, "bob", mode=mode, fresh=True)
    assert tools == {"alpha_echo", "beta_add"}
    assert resources == {"note://alpha/readme"}
    assert prompts == {"alpha_greet"}


def test_a_consumer_no_rule_is_for_sees_nothing(gateway: Gateway) -> None:
    tools, resources, prompts = _remote_view(gateway, "dave")
    assert tools == resources == prompts == set()


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_calls_reach_both_servers_and_filtering_holds_on_calls(gateway: Gateway, mode: str) -> None:
    async def work(client: Client) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["echo"] = await client.call_tool("alpha_echo", {"text": "hi"})
        out["add"] = await client.call_tool("beta_add", {"a": 2, "b": 40})
        for name in ("alpha_secret_admin", "alpha_nope"):
            try:
                out[name] = await client.call_tool(name, {})
            except MCPError as exc:
                out[name] = exc
        for uri in ("note://alpha/private", "note://alpha/nope"):
            try:
                out[uri] = await client.read_resource(uri)
            except MCPError as exc:
                out[uri] = exc
        out["readme"] = await client.read_resource("note://alpha/readme")
        out["greet"] = await client.get_prompt("alpha_greet", {"who": "Bob"})
        try:
            out["beta_greet"] = await client.get_prompt("beta_greet", {"who": "Bob"})
        except MCPError as exc:
            out["beta_greet"] = exc
        return out

    out = _with_client(
        f"{gateway.url}/remote/mcp", work, mode=mode, headers=_key("bob"), fresh=True
    )
    assert out["echo"].content[0].text == "alpha: hi"
    assert "42" in out["add"].content[0].text
    hidden, missing = out["alpha_secret_admin"], out["alpha_nope"]

    def shape(answer: Any, name: str) -> Any:
        if isinstance(answer, MCPError):
            return ("error", answer.error.code, answer.error.message.replace(name, "NAME"))
        return ("result", answer.is_error, answer.content[0].text.replace(name, "NAME"))

    assert shape(hidden, "alpha_secret_admin") == shape(missing, "alpha_nope")
    assert "unknown tool: NAME" in str(shape(missing, "alpha_nope"))
    assert isinstance(out["note://alpha/private"], MCPError)
    assert shape(out["note://alpha/private"], "note://alpha/private") == shape(
        out["note://alpha/nope"], "note://alpha/nope"
    )
    assert "the readme of alpha" in out["readme"].contents[0].text
    assert "Hello Bob from alpha" in out["greet"].messages[0].content.text
    assert isinstance(out["beta_greet"], MCPError)


def test_a_tool_error_upstream_comes_back_as_is_error(gateway: Gateway) -> None:
    async def work(client: Client) -> Any:
        return await client.call_tool("alpha_fail", {})

    result = _with_client(f"{gateway.url}/remote/mcp", work, headers=_key("alice"))
    assert result.is_error
    assert "fail" in result.content[0].text


def test_the_servers_never_see_the_clients_key(
    gateway: Gateway, alpha: McpServerThread, beta: McpServerThread
) -> None:
    async def work(client: Client) -> None:
        await client.call_tool("alpha_add", {"a": 1, "b": 1})
        await client.call_tool("beta_add", {"a": 1, "b": 1})

    _with_client(
        f"{gateway.url}/remote/mcp",
        work,
        headers={**_key("alice"), "Authorization": "Bearer client-token"},
    )
    for server in (alpha, beta):
        assert server.requests
        for _, _, fields in server.requests:
            assert KEYS["alice"] not in json.dumps(fields)
            assert "client-token" not in json.dumps(fields)
            assert fields.get("authorization") == f"Bearer {TOKEN}"


def test_the_remote_endpoint_refuses_without_a_key(gateway: Gateway) -> None:
    _problem(modern_post(f"{gateway.url}/remote/mcp", "tools/list"), 401)


# -- 5. logs and metrics


def test_tool_calls_are_in_the_call_log(gateway: Gateway) -> None:
    async def work(client: Client) -> None:
        await client.call_tool("getStats", {})
        await client.call_tool("getNote", {"noteId": 4242})
        with pytest.raises(MCPError):
            await client.call_tool("noSuchTool", {})

    _with_client(f"{gateway.url}/api/mcp", work, headers=_key("gina"))

    def calls(query: str) -> list[dict[str, Any]] | None:
        answer = gateway.admin_get(f"/calls?{query}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items = body["data"] if isinstance(body, dict) else body
        return items or None

    ok = _poll(
        lambda: calls("consumer=gina&mcp_tool=getStats&mcp_method=tools/call"), "getStats call"
    )
    assert ok[0]["mcp_outcome"] == "ok"
    err = _poll(lambda: calls("consumer=gina&mcp_outcome=error"), "an error outcome")
    assert err[0]["mcp_tool"] == "getNote"
    refused = _poll(lambda: calls("consumer=gina&mcp_outcome=refused"), "a refused outcome")
    assert refused[0]["mcp_method"] == "tools/call"
    rest = _poll(lambda: calls("consumer=gina&route=api20&status=404"), "the inner REST call")
    assert any("/notes/4242" in c["path"] for c in rest)
    inner = [c for c in rest if "/notes/4242" in c["path"]]
    assert inner[0]["consumer"] == "gina" and inner[0]["mcp_method"] is None


def test_tool_calls_are_counted_in_metrics(gateway: Gateway) -> None:
    async def work(client: Client) -> None:
        for _ in range(3):
            await client.call_tool("getStats", {})

    _with_client(f"{gateway.url}/api/mcp", work, headers=_key("hank"))

    def series() -> str | None:
        text = gateway.admin_get("/metrics").text
        pattern = re.compile(r"^quiver_mcp_tool_calls_total\{([^}]*)\} (\S+)$", re.M)
        for labels, value in pattern.findall(text):
            parsed = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            del parsed["route"]  # (what it is named is the business of the next test)
            wanted = {"tool": "getStats", "consumer": "hank", "outcome": "ok"}
            if parsed == wanted and float(value) >= 3:
                return text
        return None

    text = _poll(series, "quiver_mcp_tool_calls_total for hank")
    assert re.search(r'^quiver_mcp_messages_total\{[^}]*method="tools/call"', text, re.M)
    assert re.search(
        r'^quiver_mcp_tool_call_duration_seconds_bucket\{[^}]*tool="getStats"', text, re.M
    )


def test_mcp_messages_are_recorded_under_the_endpoints_route(gateway: Gateway) -> None:
    # (the endpoint of route `api20`'s `mcp` key is the route `mcp-api20`, docs/mcp.md)
    async def work(client: Client) -> None:
        await client.call_tool("getStats", {})

    _with_client(f"{gateway.url}/api/mcp", work, headers=_key("gina"))

    def calls() -> list[dict[str, Any]] | None:
        answer = gateway.admin_get("/calls?consumer=gina&mcp_tool=getStats")
        return answer.json()["data"] or None

    found = _poll(calls, "the MCP message")
    assert found[0]["route"] == "mcp-api20"
    text = gateway.admin_get("/metrics").text
    assert 'quiver_mcp_tool_calls_total{consumer="gina",outcome="ok",route="mcp-api20"' in text


def test_jwt_audiences_given_on_the_route_take_tokens_for_the_resource(gateway: Gateway) -> None:
    url = f"{gateway.url}/secure2/mcp"

    async def call(client: Client) -> Any:
        return await client.call_tool("getStats", {})

    right = {"Authorization": f"Bearer {_token(RESOURCE2)}"}
    assert not _with_client(url, call, headers=right).is_error
    wrong = {"Authorization": f"Bearer {_token(RESOURCE)}"}
    _problem(modern_post(url, "tools/list", headers=wrong), 401)


def _route_config(mcp: dict[str, Any]) -> str:
    config = {
        "listen": "127.0.0.1:0",
        "targets": [{"name": "api", "url": "http://127.0.0.1:9"}],
        "routes": [{"name": "r", "paths": ["/r"], "target": "api", "mcp": mcp}],
    }
    return json.dumps(config)


def test_an_include_entry_matching_nothing_stops_the_config() -> None:
    with pytest.raises(Exception, match="getNoet"):
        load_config_text(_route_config({"openapi": {"document": DOCUMENT}, "include": ["getNoet"]}))
    with pytest.raises(Exception, match="DELET"):
        load_config_text(_route_config({"openapi": {"document": DOCUMENT}, "exclude": ["DELET *"]}))


def test_two_operations_of_one_name_stop_the_config_naming_both() -> None:
    document = json.loads(json.dumps(DOCUMENT))
    document["paths"]["/stats"]["get"]["operationId"] = "listTags"
    with pytest.raises(Exception) as refused:
        load_config_text(_route_config({"openapi": {"document": document}}))
    assert "/stats" in str(refused.value) and "/tags" in str(refused.value)


def test_a_document_that_cannot_be_fetched_is_a_json_rpc_error() -> None:
    config = _route_config({"openapi": {"url": "http://127.0.0.1:9/openapi.json"}})
    with RunningProxy(load_config_text(config)) as proxy:
        answer = modern_post(f"{proxy.url}/r/mcp", "tools/list")
        error = answer.json()["error"]
        assert isinstance(error["code"], int) and error["message"]
