"""Remote MCP servers behind a target of ``type: mcp``, driven by the official SDK.

Two SDK servers (Streamable HTTP, and the older HTTP+SSE transport) sit behind one
endpoint with tool-name prefixes; access rules show each consumer its own part, and
hide the rest both ways: not listed, and not callable.  The gateway holds the
servers' token; the caller's key never reaches them.  Through two workers, every
request on a connection of its own, sessions need no particular worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.mcp.sdk import MODES, tool_names, with_client
from tests.mcp.servers import TOKEN, McpServerThread
from tests.support.process import serving, write_config
from tests.support.proxy import RunningProxy

pytestmark = pytest.mark.timeout(90)

ALICE = {"apikey": "key-alice-0001"}
BOB = {"apikey": "key-bob-00001"}
CAROL = {"apikey": "key-carol-001"}


def config_text(alpha: str, beta: str, workers: int = 1) -> str:
    return f"""
listen: 127.0.0.1:0
workers: {workers}
consumers:
  - {{name: alice, groups: [staff], credentials: {{key-auth: [{{key: {ALICE["apikey"]}}}]}}}}
  - {{name: bob, credentials: {{key-auth: [{{key: {BOB["apikey"]}}}]}}}}
  - {{name: carol, credentials: {{key-auth: [{{key: {CAROL["apikey"]}}}]}}}}
targets:
  - name: tools
    type: mcp
    options:
      servers:
        - name: alpha
          url: {alpha}
          prefix: a_
          headers: {{Authorization: "Bearer {TOKEN}"}}
        - name: beta
          url: {beta}
          transport: sse
          prefix: b_
          headers: {{Authorization: "Bearer {TOKEN}"}}
      oauth:
        resource: https://tools.example.com/tools
        authorization_servers: [https://login.example.com]
      access:
        - {{groups: [staff], tools: ["a_*", b_echo], resources: ["*"], prompts: ["*"]}}
        - {{consumers: [bob], tools: ["b_*"]}}
routes:
  - name: tools
    paths: [/tools]
    target: tools
    plugins: {{key-auth: {{}}}}
"""


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[McpServerThread, McpServerThread]]:
    with McpServerThread("modern", "alpha") as alpha, McpServerThread("sse", "beta") as beta:
        yield alpha, beta


@pytest.fixture(scope="module")
def url(servers: tuple[McpServerThread, McpServerThread]) -> Iterator[str]:
    alpha, beta = servers
    with RunningProxy(config_text(alpha.url, beta.url)) as proxy:
        yield f"{proxy.url}/tools"


def refused(error: BaseException) -> list[str]:
    """The messages of the MCP errors an exception (group) holds."""
    if isinstance(error, BaseExceptionGroup):
        return [message for inner in error.exceptions for message in refused(inner)]
    return [str(error)] if isinstance(error, MCPError) else []


@pytest.mark.parametrize("mode", MODES)
def test_a_consumer_sees_and_calls_what_its_rules_allow(url: str, mode: str) -> None:
    async def work(client: Client) -> None:
        names = sorted(tool.name for tool in (await client.list_tools()).tools)
        assert "a_add" in names and "b_echo" in names
        assert all(name.startswith("a_") or name == "b_echo" for name in names)
        added = await client.call_tool("a_add", {"a": 2, "b": 3})
        assert added.is_error is False
        assert added.structured_content == {"result": 5}
        echoed = await client.call_tool("b_echo", {"text": "héllo"})
        assert echoed.content[0].text == "beta: héllo"  # type: ignore[union-attr]
        resources = [str(resource.uri) for resource in (await client.list_resources()).resources]
        assert resources
        read = await client.read_resource(resources[0])
        assert read.contents
        prompts = [prompt.name for prompt in (await client.list_prompts()).prompts]
        assert "a_greet" in prompts
        got = await client.get_prompt("a_greet", {"who": "Ada"})
        assert "Ada" in str(got.messages[0].content)
        # hidden from alice: not listed above, and refused as if it did not exist
        with pytest.raises(BaseException) as caught:
            await client.call_tool("b_forecast", {"city": "Paris"})
        assert any("unknown tool: b_forecast" in message for message in refused(caught.value))

    with_client(url, work, mode=mode, headers=ALICE)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_another_consumer_sees_the_other_part(url: str, mode: str) -> None:
    async def work(client: Client) -> None:
        names = sorted(tool.name for tool in (await client.list_tools()).tools)
        assert names and all(name.startswith("b_") for name in names)
        forecast = await client.call_tool("b_forecast", {"city": "Paris"})
        assert forecast.is_error is False
        with pytest.raises(BaseException) as caught:
            await client.call_tool("a_add", {"a": 1, "b": 1})
        assert any("unknown tool: a_add" in message for message in refused(caught.value))
        assert (await client.list_prompts()).prompts == []

    with_client(url, work, mode=mode, headers=BOB)


def test_a_consumer_no_rule_is_for_sees_nothing(url: str) -> None:
    assert tool_names(url, headers=CAROL) == []


def test_without_a_key_nothing_is_listed_and_the_metadata_is_named(url: str) -> None:
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    where = "https://tools.example.com/.well-known/oauth-protected-resource/tools"
    assert f'Bearer resource_metadata="{where}"' in answer.headers.get_list("www-authenticate")
    base = url.removesuffix("/tools")
    metadata = httpx.get(f"{base}/.well-known/oauth-protected-resource/tools").json()
    assert metadata["resource"] == "https://tools.example.com/tools"
    assert metadata["authorization_servers"] == ["https://login.example.com"]


def test_the_servers_get_the_gateway_token_never_the_callers_key(
    url: str, servers: tuple[McpServerThread, McpServerThread]
) -> None:
    tool_names(url, headers=ALICE)
    for server in servers:
        assert server.requests
        for _, _, fields in server.requests:
            assert fields.get("authorization") == f"Bearer {TOKEN}"
            assert "apikey" not in fields
            assert ALICE["apikey"] not in str(fields)


def _workers_answering(url: str, mode: str, headers: dict[str, str]) -> set[str]:
    """Calls on a fresh connection each (so the kernel spreads them over the workers);
    the workers that answered, by the prefix of their request ids."""
    seen: set[str] = set()

    async def note(response: httpx2.Response) -> None:
        seen.add(response.headers.get("x-request-id", "")[:20])

    async def run() -> None:
        limits = httpx2.Limits(max_keepalive_connections=0)
        hooks: dict[str, Any] = {"response": [note]}
        async with (
            httpx2.AsyncClient(
                headers=headers, timeout=20, limits=limits, event_hooks=hooks
            ) as http,
            Client(streamable_http_client(url, http_client=http), mode=mode) as client,
        ):
            for number in range(24):
                result = await client.call_tool("a_add", {"a": number, "b": 1})
                assert result.structured_content == {"result": number + 1}
                names = [tool.name for tool in (await client.list_tools()).tools]
                assert "b_forecast" not in names

    asyncio.run(run())
    return seen - {""}


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_two_workers_serve_one_session_without_sticking_to_either(
    tmp_path: Path, servers: tuple[McpServerThread, McpServerThread], mode: str
) -> None:
    alpha, beta = servers
    config = write_config(tmp_path, config_text(alpha.url, beta.url, workers=2))
    with serving(config, cwd=tmp_path) as node:
        url = f"http://127.0.0.1:{node.port}/tools"
        assert len(_workers_answering(url, mode, ALICE)) == 2
        # the filtering holds in every worker, both ways
        assert all(name.startswith("b_") for name in tool_names(url, headers=BOB))
        assert tool_names(url, headers=CAROL) == []
