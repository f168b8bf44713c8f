"""A route's API published as MCP tools, driven by the official MCP SDK over real sockets.

The API is the 20-operation one of ``api20``; the gateway fetches its OpenAPI
document from the target, publishes it at ``/api/mcp``, and sends each tool call
through the route itself: the route's key-auth, rate limit and call log apply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from quiver.config.models import CallLogSettings
from quiver.observe.writer import writer_for
from tests.mcp.api20 import Api20, serve_api20
from tests.mcp.sdk import MODES, tool_names, with_client
from tests.support.nodes import wait_until
from tests.support.proxy import RunningProxy

pytestmark = pytest.mark.timeout(60)

ALICE = {"apikey": "key-alice-0001"}
BOB = {"apikey": "key-bob-00001"}
META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def leaves(error: BaseException) -> list[BaseException]:
    """The errors an exception group holds, however deep; the error itself otherwise."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def config_text(api_url: str) -> str:
    return f"""
listen: 127.0.0.1:0
targets: [{{name: api, url: "{api_url}"}}]
consumers:
  - {{name: alice, credentials: {{key-auth: [{{key: {ALICE["apikey"]}}}]}}}}
  - {{name: bob, credentials: {{key-auth: [{{key: {BOB["apikey"]}}}]}}}}
routes:
  - name: api
    paths: [/api]
    strip_path: true
    target: api
    plugins: {{key-auth: {{}}}}
    mcp: {{}}
  - name: limited
    paths: [/limited]
    strip_path: true
    target: api
    plugins:
      key-auth: {{}}
      rate-limit: {{limit: 3, window: 60, by: consumer}}
    mcp: {{include: [getNote, getStats], instructions: Read-only notes.}}
  - name: public
    paths: [/public]
    strip_path: true
    target: api
    mcp: {{exclude: ["DELETE *", "* /users*", whoAmI]}}
"""


class Gateway:
    def __init__(self, api: Api20, proxy: RunningProxy, calls: Path) -> None:
        self.api = api
        self.proxy = proxy
        self.calls = calls

    def mcp(self, route: str = "api") -> str:
        return f"{self.proxy.url}/{route}/mcp"

    def spooled(self) -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for path in sorted(self.calls.glob("*.jsonl*"))
            for line in path.read_text().splitlines()
            if line
        ]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    calls = tmp_path_factory.mktemp("calls")
    writer = writer_for(None, CallLogSettings(), calls)
    with serve_api20() as api, RunningProxy(config_text(api.url), record_writer=writer) as proxy:
        yield Gateway(api, proxy, calls)


@pytest.mark.parametrize("mode", MODES)
def test_the_sdk_lists_the_twenty_operations_and_calls_them(gateway: Gateway, mode: str) -> None:
    async def work(client: Client) -> None:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert len(tools) == 20
        assert tools["getNote"].input_schema["required"] == ["noteId"]
        assert tools["deleteNote"].annotations is not None
        assert tools["deleteNote"].annotations.destructive_hint is True

        note = await client.call_tool("getNote", {"noteId": 1})
        assert note.is_error is False
        assert note.structured_content is not None
        assert note.structured_content["title"] == "First"

        made = await client.call_tool("createNote", {"title": f"by {mode}", "text": "x"})
        assert made.is_error is False
        assert made.structured_content is not None
        new_id = made.structured_content["id"]
        assert gateway.api.notes[new_id]["title"] == f"by {mode}"

        found = await client.call_tool("searchNotes", {"q": f"by {mode}"})
        assert found.is_error is False
        assert f"by {mode}" in json.dumps(found.structured_content)

        me = await client.call_tool("whoAmI", {"X-User-Id": 1})
        assert me.is_error is False, me.content

        missing = await client.call_tool("getNote", {"noteId": 999_999})
        assert missing.is_error is True
        text = missing.content[0].text  # type: ignore[union-attr]
        assert "404" in text

    with_client(gateway.mcp(), work, mode=mode, headers=ALICE)


@pytest.mark.parametrize("mode", MODES)
def test_without_a_key_the_endpoint_refuses(gateway: Gateway, mode: str) -> None:
    with pytest.raises(BaseException) as caught:
        tool_names(gateway.mcp(), mode=mode)
    # the SDK reports an HTTP error answer as an MCPError, inside its task groups
    assert [type(error) for error in leaves(caught.value)] == [MCPError]
    answer = httpx.post(
        gateway.mcp(),
        headers={"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/list"},
        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}},
    )
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["request_id"] == answer.headers["x-request-id"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_the_route_rate_limit_counts_tool_calls(gateway: Gateway, mode: str) -> None:
    # each mode has a consumer of its own: the limit counts per consumer
    key = ALICE if mode == "auto" else BOB

    async def work(client: Client) -> list[bool]:
        assert sorted(tool.name for tool in (await client.list_tools()).tools) == [
            "getNote",
            "getStats",
        ]
        outcomes = []
        for _ in range(4):
            result = await client.call_tool("getStats", {})
            outcomes.append(result.is_error)
        last = result.content[0].text  # type: ignore[union-attr]
        assert "429" in last
        # listing is not a call of the API: it is never counted
        assert len((await client.list_tools()).tools) == 2
        return outcomes

    assert with_client(gateway.mcp("limited"), work, mode=mode, headers=key) == [
        False,
        False,
        False,
        True,
    ]


def test_tool_calls_are_in_the_call_log_as_calls_of_the_route(gateway: Gateway) -> None:
    async def work(client: Client) -> None:
        await client.call_tool("getUser", {"userId": 1})

    with_client(gateway.mcp(), work, headers=BOB)

    def logged() -> list[dict[str, Any]]:
        return [
            line
            for line in gateway.spooled()
            if line["route"] == "api" and line["path"] == "/api/users/1"
        ]

    wait_until(lambda: logged(), "the tool call's request in the call log", timeout=10)
    call = logged()[0]
    assert call["consumer"] == "bob"
    assert call["status"] == 200
    assert call["method"] == "GET"

    # the MCP message itself: a call of the endpoint's route, with what it was
    def messages() -> list[dict[str, Any]]:
        return [
            line
            for line in gateway.spooled()
            if (line.get("mcp") or {}).get("tool") == "getUser" and line["consumer"] == "bob"
        ]

    wait_until(lambda: messages(), "the tool call's MCP message in the call log", timeout=10)
    [message] = messages()
    assert message["route"] == "mcp-api"
    assert message["mcp"]["method"] == "tools/call"
    assert message["mcp"]["outcome"] == "ok"
    assert message["mcp"]["status"] == 200
    assert message["mcp"]["ms"] > 0


def test_include_and_exclude_choose_the_tools(gateway: Gateway) -> None:
    names = tool_names(gateway.mcp("public"))
    assert "deleteNote" not in names and "getUser" not in names and "whoAmI" not in names
    assert "getNote" in names and "createNote" in names


def _post(url: str, body: dict[str, Any], **fields: str) -> httpx.Response:
    return httpx.post(url, headers={**ALICE, **fields}, json=body)


def test_stateless_requests_whose_fields_disagree_with_the_body_are_refused(
    gateway: Gateway,
) -> None:
    url = gateway.mcp()
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "getNote", "arguments": {"noteId": 1}, "_meta": META},
    }
    good = {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "getNote"}
    assert _post(url, call, **good).json()["result"]["isError"] is False
    for wrong in (
        {**good, "mcp-name": "deleteNote"},
        {**good, "mcp-method": "tools/list"},
        {**good, "mcp-protocol-version": "2025-11-25"},
        {"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call"},
    ):
        answer = _post(url, call, **wrong)
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == -32020
        assert answer.json()["id"] == 7
    future = {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}
    later = {**call, "params": {**call["params"], "_meta": future}}  # type: ignore[dict-item]
    answer = _post(url, later, **{**good, "mcp-protocol-version": "2099-01-01"})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == -32022
    assert "2026-07-28" in error["data"]["supported"]
    assert "2025-11-25" in error["data"]["supported"]


def test_sessions_are_sealed_and_belong_to_their_consumer(gateway: Gateway) -> None:
    url = gateway.mcp()
    opened = _post(
        url,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {}},
        },
    )
    assert opened.status_code == 200
    assert opened.json()["result"]["protocolVersion"] == "2025-11-25"
    session = opened.headers["mcp-session-id"]
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    assert len(_post(url, listing, **{"mcp-session-id": session}).json()["result"]["tools"]) == 20

    # another consumer cannot continue it; a made-up or altered id is no session
    stolen = httpx.post(url, headers={**BOB, "mcp-session-id": session}, json=listing)
    assert stolen.status_code == 404
    altered = session[:-2] + ("AA" if not session.endswith("AA") else "BB")
    assert _post(url, listing, **{"mcp-session-id": altered}).status_code == 404
    assert _post(url, listing, **{"mcp-session-id": "nonsense"}).status_code == 404
    missing = _post(url, listing)
    assert missing.status_code == 400
    assert "initialize" in missing.json()["error"]["message"]

    # an older revision asked for is agreed to; an unknown one gets the newest
    older = _post(
        url,
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "initialize",
            "params": {"protocolVersion": "2025-03-26", "capabilities": {}},
        },
    )
    assert older.json()["result"]["protocolVersion"] == "2025-03-26"


def test_bad_messages_get_json_rpc_errors(gateway: Gateway) -> None:
    url = gateway.mcp()
    answer = httpx.post(url, headers={**ALICE, "content-type": "application/json"}, content=b"{")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == -32700
    batch = _post(url, [{"jsonrpc": "2.0", "id": 1, "method": "ping"}])  # type: ignore[arg-type]
    assert batch.json()["error"]["code"] == -32600
    assert httpx.get(url, headers=ALICE).status_code == 405
    assert httpx.delete(url, headers=ALICE).status_code == 405
    unknown = _post(
        url,
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "tools/call",
            "params": {"name": "no", "_meta": META},
        },
        **{"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "no"},
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == -32602
    bad_arguments = _post(
        url,
        {
            "jsonrpc": "2.0",
            "id": 6,
            "method": "tools/call",
            "params": {"name": "getNote", "arguments": {"noteId": "x"}, "_meta": META},
        },
        **{"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "getNote"},
    )
    # arguments a model got wrong are a result it can read and correct
    assert bad_arguments.json()["result"]["isError"] is True
    assert "noteId" in bad_arguments.json()["result"]["content"][0]["text"]
    notification = _post(
        url,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    )
    assert notification.status_code == 400  # (no session named)
