"""Several SDK servers as one provider: prefixes, fan-out, failures and access rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from quiver.config.consumers import Consumer
from quiver.config.mcp import McpAccessRule, McpTargetOptions
from quiver.errors import BadGateway
from quiver.mcp.aggregate import Aggregate
from quiver.mcp.contract import INVALID_PARAMS, RESOURCE_NOT_FOUND, Caller, McpError
from quiver.plugins.consumers import ConsumerRuntime
from quiver.proxy.outbound import OutboundClient
from tests.mcp.servers import TOKEN, McpServerThread, run
from tests.support.upstream import Upstream

pytestmark = pytest.mark.timeout(30)

CALLER_SECRET = "caller-secret-never-forwarded"


class StubRequest:
    """What an endpoint hands a provider of the client's request: its fields hold
    the client's own credentials, which must never reach a server."""

    method = b"POST"
    raw_path = b"/mcp"
    query = b""
    content_length = 0
    body = b""
    rid = b"rid-1"
    consumer = None
    credential = None

    def __init__(self) -> None:
        self.headers = [
            (b"Authorization", f"Bearer {CALLER_SECRET}".encode()),
            (b"Cookie", f"session={CALLER_SECRET}".encode()),
            (b"Mcp-Session-Id", CALLER_SECRET.encode()),
        ]

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        for field, value in self.headers:
            if field.lower() == name:
                return value
        return default


def caller(name: str | None = None, groups: list[str] | None = None) -> Caller:
    consumer = None
    if name is not None:
        consumer = ConsumerRuntime(Consumer(name=name, groups=groups or []))
    return Caller(StubRequest(), consumer, "2026-07-28")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def alpha() -> Iterator[McpServerThread]:
    with McpServerThread("modern", "alpha") as server:
        yield server


@pytest.fixture(scope="module")
def beta() -> Iterator[McpServerThread]:
    with McpServerThread("sse", "beta") as server:
        yield server


@pytest.fixture(scope="module")
def gamma() -> Iterator[McpServerThread]:
    with McpServerThread("legacy", "gamma") as server:
        yield server


def server(name: str, url: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "url": url, "headers": {"Authorization": f"Bearer {TOKEN}"}, **options}


def options_for(
    alpha: McpServerThread,
    beta: McpServerThread,
    *,
    access: list[dict[str, Any]] | None = None,
    extra: list[dict[str, Any]] | None = None,
) -> McpTargetOptions:
    servers = [
        server("alpha", alpha.url, prefix="a_"),
        server("beta", beta.url, prefix="b_", transport="sse"),
        *(extra or []),
    ]
    return McpTargetOptions.model_validate({"servers": servers, "access": access or []})


def test_tools_of_every_server_under_their_prefixes(
    alpha: McpServerThread, beta: McpServerThread
) -> None:
    async def main(outbound: OutboundClient) -> dict[str, Any]:
        aggregate = Aggregate.from_options(options_for(alpha, beta), outbound)
        try:
            who = caller()
            got: dict[str, Any] = {"tools": await aggregate.list_tools(who)}
            got["b_echo"] = await aggregate.call_tool(who, "b_echo", {"text": "hi"})
            got["note"] = dict(who.note)
            got["a_forecast"] = await aggregate.call_tool(who, "a_forecast", {"city": "Rome"})
            got["a_fail"] = await aggregate.call_tool(who, "a_fail", {})
            with pytest.raises(McpError) as caught:
                await aggregate.call_tool(who, "echo", {"text": "no prefix"})
            got["unprefixed"] = caught.value
            return got
        finally:
            await aggregate.close()

    got = run(main)
    names = [tool["name"] for tool in got["tools"]]
    assert names[:3] == ["a_hold", "a_big", "a_add"]
    assert {"a_echo", "b_echo", "a_secret_admin", "b_secret_admin"} <= set(names)
    assert len(names) == 2 * len([n for n in names if n.startswith("a_")])
    echo = next(tool for tool in got["tools"] if tool["name"] == "b_echo")
    assert echo["inputSchema"]["properties"]["text"]["type"] == "string"
    assert got["b_echo"]["content"][0]["text"] == "beta: hi"
    assert got["note"] == {"server": "beta"}
    # a result is the server's own
    assert got["a_forecast"]["structuredContent"] == {"city": "Rome", "sky": "clear"}
    assert got["a_fail"]["isError"] is True
    assert (got["unprefixed"].code, got["unprefixed"].message) == (
        INVALID_PARAMS,
        "unknown tool: echo",
    )


def test_a_call_before_any_list_finds_its_server(
    alpha: McpServerThread, beta: McpServerThread
) -> None:
    async def main(outbound: OutboundClient) -> tuple[dict[str, Any], dict[str, Any]]:
        aggregate = Aggregate.from_options(options_for(alpha, beta), outbound)
        try:
            who = caller()
            result = await aggregate.call_tool(who, "a_add", {"a": 20, "b": 22})
            return result, who.note
        finally:
            await aggregate.close()

    result, note = run(main)
    assert result["structuredContent"] == {"result": 42}
    assert note == {"server": "alpha"}


def test_resources_and_prompts_of_every_server(
    alpha: McpServerThread, beta: McpServerThread
) -> None:
    async def main(outbound: OutboundClient) -> dict[str, Any]:
        aggregate = Aggregate.from_options(options_for(alpha, beta), outbound)
        try:
            who = caller()
            got: dict[str, Any] = {}
            # a URI of a template, before anything was listed
            got["item"] = await aggregate.read_resource(who, "item://beta/9")
            got["item_server"] = who.note["server"]
            got["resources"] = await aggregate.list_resources(who)
            got["templates"] = await aggregate.list_resource_templates(who)
            got["readme"] = await aggregate.read_resource(who, "note://alpha/readme")
            got["readme_server"] = who.note["server"]
            got["prompts"] = await aggregate.list_prompts(who)
            got["greet"] = await aggregate.get_prompt(who, "b_greet", {"who": "Ann"})
            with pytest.raises(McpError) as caught:
                await aggregate.read_resource(who, "note://nowhere/x")
            got["unknown"] = caught.value
            with pytest.raises(McpError) as caught:
                await aggregate.get_prompt(who, "greet", {"who": "Ann"})
            got["unknown_prompt"] = caught.value
            return got
        finally:
            await aggregate.close()

    got = run(main)
    assert got["item"]["contents"][0]["text"] == "item 9"
    assert got["item_server"] == "beta"
    assert [r["uri"] for r in got["resources"]] == [
        "note://alpha/readme",
        "note://alpha/private",
        "note://beta/readme",
        "note://beta/private",
    ]
    assert [t["uriTemplate"] for t in got["templates"]] == [
        "item://alpha/{item}",
        "item://beta/{item}",
    ]
    assert got["readme"]["contents"][0]["text"] == "the readme of alpha"
    assert got["readme_server"] == "alpha"
    assert [p["name"] for p in got["prompts"]] == ["a_greet", "b_greet"]
    assert got["greet"]["messages"][0]["content"]["text"] == "Hello Ann from beta"
    assert got["unknown"].code == RESOURCE_NOT_FOUND
    assert got["unknown_prompt"].code == INVALID_PARAMS


def test_capabilities_are_the_union(alpha: McpServerThread, beta: McpServerThread) -> None:
    async def main(outbound: OutboundClient) -> tuple[dict[str, Any], dict[str, Any]]:
        aggregate = Aggregate.from_options(options_for(alpha, beta), outbound)
        before = aggregate.capabilities()
        await aggregate.connect()
        after = aggregate.capabilities()
        await aggregate.close()
        return before, after

    before, after = run(main)
    assert before == after == {"tools": {}, "resources": {}, "prompts": {}}


def test_a_failing_server_is_left_out_of_lists(
    alpha: McpServerThread, beta: McpServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    with Upstream() as node:
        down_port = node.port  # closed again: connections to it are refused
    down = server("down", f"http://127.0.0.1:{down_port}/mcp", prefix="d_")

    async def main(outbound: OutboundClient) -> tuple[list[str], list[str], list[str]]:
        options = options_for(alpha, beta, extra=[down])
        aggregate = Aggregate.from_options(options, outbound)
        try:
            who = caller()
            tools = [tool["name"] for tool in await aggregate.list_tools(who)]
            prompts = [prompt["name"] for prompt in await aggregate.list_prompts(who)]
            resources = [item["uri"] for item in await aggregate.list_resources(who)]
            return tools, prompts, resources
        finally:
            await aggregate.close()

    with caplog.at_level(logging.WARNING, logger="quiver.mcp.aggregate"):
        tools, prompts, resources = run(main)
    assert "a_add" in tools and "b_add" in tools
    assert not any(name.startswith("d_") for name in tools)
    assert prompts == ["a_greet", "b_greet"]
    assert len(resources) == 4
    assert any("'down' left out of tools/list" in record.message for record in caplog.records)
    assert str(down_port) not in caplog.text


def test_a_call_to_a_server_that_failed_fails_with_its_error(
    alpha: McpServerThread, beta: McpServerThread
) -> None:
    dying = McpServerThread("legacy", "gamma").__enter__()

    async def main(outbound: OutboundClient) -> tuple[list[str], BadGateway]:
        extra = [server("gamma", dying.url, prefix="g_")]
        aggregate = Aggregate.from_options(options_for(alpha, beta, extra=extra), outbound)
        try:
            who = caller()
            tools = [tool["name"] for tool in await aggregate.list_tools(who)]
            dying.__exit__(None, None, None)
            with pytest.raises(BadGateway) as caught:
                await aggregate.call_tool(who, "g_add", {"a": 1, "b": 2})
            after = [tool["name"] for tool in await aggregate.list_tools(who)]
            assert "a_add" in after and "g_add" not in after
            return tools, caught.value
        finally:
            await aggregate.close()

    try:
        tools, error = run(main)
    finally:
        dying.__exit__(None, None, None)
    assert "g_add" in tools
    assert "'gamma'" in error.detail


ACCESS = [
    {"groups": ["staff"], "tools": ["*"], "resources": ["*"], "prompts": ["*"]},
    {"consumers": ["bot"], "tools": ["a_*"], "resources": ["note://alpha/readme"]},
    {"tools": ["b_echo"]},
]


def test_access_rules_filter_lists(alpha: McpServerThread, beta: McpServerThread) -> None:
    async def main(outbound: OutboundClient) -> dict[str, Any]:
        aggregate = Aggregate.from_options(options_for(alpha, beta, access=ACCESS), outbound)
        try:
            seen: dict[str, Any] = {}
            for label, who in {
                "staff": caller("carol", ["staff"]),
                "bot": caller("bot"),
                "other": caller("dave", ["guests"]),
                "anonymous": caller(),
            }.items():
                seen[label] = {
                    "tools": {tool["name"] for tool in await aggregate.list_tools(who)},
                    "resources": [r["uri"] for r in await aggregate.list_resources(who)],
                    "templates": len(await aggregate.list_resource_templates(who)),
                    "prompts": [p["name"] for p in await aggregate.list_prompts(who)],
                }
            return seen
        finally:
            await aggregate.close()

    seen = run(main)
    assert {"a_add", "b_add", "a_secret_admin"} <= seen["staff"]["tools"]
    assert len(seen["staff"]["resources"]) == 4
    assert seen["staff"]["templates"] == 2
    assert seen["staff"]["prompts"] == ["a_greet", "b_greet"]
    bot_tools = seen["bot"]["tools"]
    assert "b_echo" in bot_tools and "a_add" in bot_tools and "b_add" not in bot_tools
    assert seen["bot"]["resources"] == ["note://alpha/readme"]
    assert seen["bot"]["templates"] == 0
    assert seen["bot"]["prompts"] == []
    for label in ("other", "anonymous"):
        assert seen[label] == {"tools": {"b_echo"}, "resources": [], "templates": 0, "prompts": []}


def test_what_is_hidden_is_refused_as_unknown(
    alpha: McpServerThread, beta: McpServerThread
) -> None:
    async def main(outbound: OutboundClient) -> dict[str, Any]:
        aggregate = Aggregate.from_options(options_for(alpha, beta, access=ACCESS), outbound)
        staff, bot, anonymous = caller("carol", ["staff"]), caller("bot"), caller()
        errors: dict[str, Any] = {}

        async def refusal(label: str, call: Any) -> None:
            with pytest.raises(McpError) as caught:
                await call
            errors[label] = (caught.value.code, caught.value.message, caught.value.data)

        try:
            await refusal("hidden tool", aggregate.call_tool(anonymous, "a_add", {"a": 1, "b": 1}))
            await refusal("hidden to bot", aggregate.call_tool(bot, "b_add", {"a": 1, "b": 1}))
            await refusal("missing tool", aggregate.call_tool(staff, "b_nothing", {}))
            await refusal("hidden prompt", aggregate.get_prompt(bot, "a_greet", {"who": "x"}))
            await refusal("missing prompt", aggregate.get_prompt(staff, "a_nothing", {}))
            uri = "note://alpha/private"
            await refusal("hidden resource", aggregate.read_resource(bot, uri))
            await refusal("missing resource", aggregate.read_resource(staff, "note://alpha/none"))
            errors["allowed"] = await aggregate.call_tool(bot, "a_add", {"a": 1, "b": 1})
            errors["staff reads"] = await aggregate.read_resource(staff, uri)
            return errors
        finally:
            await aggregate.close()

    errors = run(main)
    assert errors["hidden tool"] == (INVALID_PARAMS, "unknown tool: a_add", None)
    assert errors["hidden to bot"] == (INVALID_PARAMS, "unknown tool: b_add", None)
    assert errors["missing tool"] == (INVALID_PARAMS, "unknown tool: b_nothing", None)
    assert errors["hidden prompt"] == (INVALID_PARAMS, "unknown prompt: a_greet", None)
    assert errors["missing prompt"] == (INVALID_PARAMS, "unknown prompt: a_nothing", None)
    hidden, missing = errors["hidden resource"], errors["missing resource"]
    assert hidden == (
        RESOURCE_NOT_FOUND,
        "unknown resource: note://alpha/private",
        {"uri": "note://alpha/private"},
    )
    assert missing[0] == RESOURCE_NOT_FOUND and missing[1] == "unknown resource: note://alpha/none"
    assert errors["allowed"]["structuredContent"] == {"result": 2}
    assert errors["staff reads"]["contents"][0]["text"] == "private"


def test_with_rules_a_caller_no_rule_is_for_sees_nothing(
    alpha: McpServerThread, beta: McpServerThread
) -> None:
    access = [{"groups": ["staff"], "tools": ["*"], "resources": ["*"], "prompts": ["*"]}]

    async def main(outbound: OutboundClient) -> tuple[int, list[Any], int]:
        aggregate = Aggregate.from_options(options_for(alpha, beta, access=access), outbound)
        try:
            staff = len(await aggregate.list_tools(caller("carol", ["staff"])))
            anonymous = await aggregate.list_tools(caller())
            everyone = Aggregate.from_options(options_for(alpha, beta), outbound)
            unfiltered = len(await everyone.list_tools(caller()))
            await everyone.close()
            return staff, anonymous, unfiltered
        finally:
            await aggregate.close()

    staff, anonymous, unfiltered = run(main)
    assert staff == unfiltered > 0
    assert anonymous == []


def test_the_callers_fields_never_reach_a_server(
    alpha: McpServerThread, beta: McpServerThread, gamma: McpServerThread
) -> None:
    async def main(outbound: OutboundClient) -> None:
        extra = [server("gamma", gamma.url, prefix="g_")]
        aggregate = Aggregate.from_options(options_for(alpha, beta, extra=extra), outbound)
        try:
            who = caller("carol", ["staff"])
            await aggregate.list_tools(who)
            for name in ("a_echo", "b_echo", "g_echo"):
                await aggregate.call_tool(who, name, {"text": "x"})
            await aggregate.list_resources(who)
            await aggregate.read_resource(who, "note://gamma/readme")
            await aggregate.get_prompt(who, "g_greet", {"who": "x"})
        finally:
            await aggregate.close()

    marks = [len(s.requests) for s in (alpha, beta, gamma)]
    run(main)
    for node, mark in zip((alpha, beta, gamma), marks, strict=True):
        requests = node.requests[mark:]
        assert requests
        for _, _, fields in requests:
            assert fields["authorization"] == f"Bearer {TOKEN}"
            assert "cookie" not in fields
            assert not any(CALLER_SECRET in value for value in fields.values())
            assert not any(name.startswith("x-consumer") for name in fields)


def test_many_calls_at_once_through_the_aggregate(
    alpha: McpServerThread, beta: McpServerThread, gamma: McpServerThread
) -> None:
    async def main(outbound: OutboundClient) -> list[str]:
        extra = [server("gamma", gamma.url, prefix="g_")]
        aggregate = Aggregate.from_options(options_for(alpha, beta, extra=extra), outbound)
        try:
            calls = [
                aggregate.call_tool(caller(), f"{prefix}echo", {"text": str(i)})
                for i in range(15)
                for prefix in ("a_", "b_", "g_")
            ]
            results = await asyncio.gather(*calls)
            return [result["content"][0]["text"] for result in results]
        finally:
            await aggregate.close()

    mark = len(gamma.requests)
    texts = run(main)
    expected = [f"{name}: {i}" for i in range(15) for name in ("alpha", "beta", "gamma")]
    assert texts == expected
    sessions = {fields.get("mcp-session-id") for _, _, fields in gamma.requests[mark:]}
    assert len(sessions - {None}) == 1  # one session for every call


# -- options ---------------------------------------------------------------------------

VALID = {"name": "a", "url": "http://127.0.0.1:1/mcp"}


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ([], "at least 1"),
        ([VALID, VALID], "same name"),
        ([{**VALID, "prefix": "x_"}, {**VALID, "name": "b", "prefix": "x_"}], "same prefix"),
        ([{**VALID, "url": "ftp://host/mcp"}], "http"),
        ([{**VALID, "transport": "sse", "protocol": "2026-07-28"}], "2026-07-28"),
        ([{**VALID, "protocol": "2024-11-05"}], "protocol"),
        ([{**VALID, "headers": {"Mcp-Session-Id": "x"}}], "set by the MCP client"),
        ([{**VALID, "headers": {"Bad Name": "x"}}], "not a header field name"),
        ([{**VALID, "headers": {"X-A": "a\r\nb"}}], "line break"),
        ([{**VALID, "prefix": "no spaces"}], "prefix"),
        ([{**VALID, "timeout": 0}], "timeout"),
        ([{**VALID, "unknown": 1}], "unknown"),
    ],
)
def test_invalid_options(servers: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        McpTargetOptions.model_validate({"servers": servers})


def test_valid_options() -> None:
    options = McpTargetOptions.model_validate(
        {
            "servers": [
                {**VALID, "headers": {"Authorization": "Bearer x"}, "prefix": "a_"},
                {"name": "b", "url": "https://h/sse", "transport": "sse", "timeout": "5s"},
                {"name": "c", "url": "https://h/mcp", "protocol": "2025-11-25"},
            ],
            "access": [{"groups": ["staff"], "tools": ["*"]}],
        }
    )
    assert [s.prefix for s in options.servers] == ["a_", "", ""]
    assert options.servers[1].timeout == 5.0
    assert options.access == [McpAccessRule(groups=["staff"], tools=["*"])]
    for model in (McpTargetOptions, McpAccessRule, type(options.servers[0])):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


def test_the_server_listed_first_wins_a_name_two_offer(
    alpha: McpServerThread, gamma: McpServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    options = McpTargetOptions.model_validate(
        {"servers": [server("alpha", alpha.url), server("gamma", gamma.url)]}
    )

    async def main(outbound: OutboundClient) -> tuple[list[str], str, str]:
        aggregate = Aggregate.from_options(options, outbound)
        try:
            who = caller()
            names = [tool["name"] for tool in await aggregate.list_tools(who)]
            result = await aggregate.call_tool(who, "echo", {"text": "x"})
            return names, result["content"][0]["text"], who.note["server"]
        finally:
            await aggregate.close()

    with caplog.at_level(logging.WARNING, logger="quiver.mcp.aggregate"):
        names, text, served_by = run(main)
    assert names.count("echo") == 1
    assert (text, served_by) == ("alpha: x", "alpha")
    assert "'echo' is offered by 'alpha' already" in caplog.text
