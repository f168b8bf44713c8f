"""The gateway as the client of one MCP server: SDK servers of every transport, real sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from mcp.shared.inbound import decode_header_value

from quiver.errors import BadGateway, GatewayTimeout
from quiver.mcp.contract import McpError
from quiver.mcp.protocol import header_value
from quiver.mcp.upstream import UpstreamServer
from quiver.proxy.outbound import OutboundClient
from tests.mcp.servers import MODES, TOKEN, McpServerThread, Mode, run
from tests.support.upstream import Conn, Upstream

pytestmark = pytest.mark.timeout(30)

AUTH = {"Authorization": f"Bearer {TOKEN}"}

# (server mode, protocol asked, revision expected)
CASES = [
    ("modern", "auto", "2026-07-28"),
    ("modern", "2025-11-25", "2025-11-25"),
    ("legacy", "auto", "2025-11-25"),
    ("legacy-404", "auto", "2025-11-25"),
    ("stateless-json", "auto", "2026-07-28"),
    ("stateless-json", "2025-11-25", "2025-11-25"),
    ("sse", "auto", "2025-11-25"),
]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[Mode, McpServerThread]]:
    started: dict[Mode, McpServerThread] = {}
    try:
        for mode in MODES:
            started[mode] = McpServerThread(mode).__enter__()
        yield started
    finally:
        for server in started.values():
            server.__exit__(None, None, None)


def client_of(
    outbound: OutboundClient, server: McpServerThread, protocol: Any = "auto", **options: Any
) -> UpstreamServer:
    transport: Literal["sse", "streamable-http"] = (
        "sse" if server.mode == "sse" else "streamable-http"
    )
    options.setdefault("headers", AUTH)
    options.setdefault("timeout", 10)
    return UpstreamServer(
        outbound, server.url, name="alpha", transport=transport, protocol=protocol, **options
    )


@pytest.mark.parametrize(("mode", "protocol", "revision"), CASES)
def test_tools_resources_and_prompts_in_every_mode(
    servers: dict[Mode, McpServerThread], mode: Mode, protocol: str, revision: str
) -> None:
    async def main(outbound: OutboundClient) -> dict[str, Any]:
        upstream = client_of(outbound, servers[mode], protocol)
        try:
            session = await upstream.connect()
            got: dict[str, Any] = {"revision": session.version, "caps": session.capabilities}
            got["tools"] = await upstream.list_all("tools/list", "tools")
            got["add"] = await upstream.request(
                "tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}}
            )
            got["forecast"] = await upstream.request(
                "tools/call", {"name": "forecast", "arguments": {"city": "Oslo"}}
            )
            got["fail"] = await upstream.request("tools/call", {"name": "fail", "arguments": {}})
            got["resources"] = await upstream.list_all("resources/list", "resources")
            got["templates"] = await upstream.list_all(
                "resources/templates/list", "resourceTemplates"
            )
            got["readme"] = await upstream.request("resources/read", {"uri": "note://alpha/readme"})
            got["item"] = await upstream.request("resources/read", {"uri": "item://alpha/7"})
            got["prompts"] = await upstream.list_all("prompts/list", "prompts")
            got["greet"] = await upstream.request(
                "prompts/get", {"name": "greet", "arguments": {"who": "Ann"}}
            )
            return got
        finally:
            await upstream.close()

    got = run(main)
    assert got["revision"] == revision
    assert {"tools", "resources", "prompts"} <= set(got["caps"])
    # five tools and more, two to a page: the cursor was followed
    names = [tool["name"] for tool in got["tools"]]
    assert names[:5] == ["hold", "big", "add", "echo", "forecast"]
    assert {"fail", "secret_admin"} <= set(names)
    assert got["add"]["structuredContent"] == {"result": 5}
    assert got["add"]["content"] == [{"type": "text", "text": "5"}]
    assert got["forecast"]["structuredContent"] == {"city": "Oslo", "sky": "clear"}
    assert got["fail"]["isError"] is True
    uris = [resource["uri"] for resource in got["resources"]]
    assert uris == ["note://alpha/readme", "note://alpha/private"]
    assert [t["uriTemplate"] for t in got["templates"]] == ["item://alpha/{item}"]
    assert got["readme"]["contents"][0]["text"] == "the readme of alpha"
    assert got["item"]["contents"][0]["text"] == "item 7"
    assert [prompt["name"] for prompt in got["prompts"]] == ["greet"]
    assert got["greet"]["messages"][0]["content"]["text"] == "Hello Ann from alpha"


@pytest.mark.parametrize("mode", ["modern", "legacy", "stateless-json", "sse"])
def test_a_json_rpc_error_keeps_its_code_and_message(
    servers: dict[Mode, McpServerThread], mode: Mode
) -> None:
    async def main(outbound: OutboundClient) -> McpError:
        upstream = client_of(outbound, servers[mode])
        try:
            with pytest.raises(McpError) as caught:
                await upstream.request("no/such/method", {})
            return caught.value
        finally:
            await upstream.close()

    error = run(main)
    assert error.code == -32601
    assert error.message


def test_the_routing_fields_of_2026_07_28(servers: dict[Mode, McpServerThread]) -> None:
    server = servers["modern"]

    async def main(outbound: OutboundClient) -> None:
        upstream = client_of(outbound, server, "2026-07-28")
        await upstream.request("tools/call", {"name": "echo", "arguments": {"text": "x"}})
        await upstream.request("resources/read", {"uri": "note://alpha/readme"})
        await upstream.close()

    before = len(server.requests)
    run(main)
    fields = [request[2] for request in server.requests[before:]]
    assert [f["mcp-method"] for f in fields] == ["server/discover", "tools/call", "resources/read"]
    assert [f.get("mcp-name") for f in fields] == [None, "echo", "note://alpha/readme"]
    assert all(f["mcp-protocol-version"] == "2026-07-28" for f in fields)
    assert all("mcp-session-id" not in f for f in fields)


def test_arguments_marked_for_a_header_are_repeated_in_one(
    servers: dict[Mode, McpServerThread],
) -> None:
    server = servers["modern"]

    async def main(outbound: OutboundClient) -> tuple[McpError, dict[str, Any]]:
        upstream = client_of(outbound, server, "2026-07-28")
        try:
            # before the tool was listed its schema is unknown: the server refuses
            with pytest.raises(McpError) as caught:
                await upstream.request(
                    "tools/call", {"name": "regional", "arguments": {"region": "x"}}
                )
            await upstream.list_all("tools/list", "tools")
            params = {"name": "regional", "arguments": {"region": "nörd"}}
            return caught.value, await upstream.request("tools/call", params)
        finally:
            await upstream.close()

    before = len(server.requests)
    refused, result = run(main)
    assert refused.code == -32020  # header mismatch
    assert result["content"][0]["text"] == "alpha: nörd"
    fields = server.requests[before:][-1][2]
    assert decode_header_value(fields["mcp-param-region"]) == "nörd"


def test_a_2025_session_is_opened_once_and_repeated(servers: dict[Mode, McpServerThread]) -> None:
    server = servers["legacy"]

    async def main(outbound: OutboundClient) -> str | None:
        upstream = client_of(outbound, server, "2025-11-25")
        await upstream.list_all("prompts/list", "prompts")
        await upstream.request("tools/call", {"name": "echo", "arguments": {"text": "x"}})
        session = upstream.session
        await upstream.close()
        return session.id if session else None

    before = len(server.requests)
    session_id = run(main)
    requests = server.requests[before:]
    assert session_id
    # initialize, notifications/initialized, two requests, DELETE
    assert [method for method, _, _ in requests] == ["POST"] * 4 + ["DELETE"]
    assert "mcp-session-id" not in requests[0][2]
    assert all(fields["mcp-session-id"] == session_id for _, _, fields in requests[1:])
    assert all(fields["mcp-protocol-version"] == "2025-11-25" for _, _, fields in requests[1:])


@pytest.mark.parametrize("mode", ["modern", "legacy", "stateless-json", "sse"])
def test_the_gateway_credentials_reach_the_server(
    servers: dict[Mode, McpServerThread], mode: Mode
) -> None:
    server = servers[mode]

    async def main(outbound: OutboundClient) -> BadGateway:
        good = client_of(outbound, server)
        await good.list_all("tools/list", "tools")
        await good.close()
        bad = client_of(outbound, server, headers={"Authorization": "Bearer wrong"})
        with pytest.raises(BadGateway) as caught:
            await bad.list_all("tools/list", "tools")
        await bad.close()
        return caught.value

    before = len(server.requests)
    error = run(main)
    assert "'alpha'" in error.detail
    assert "127.0.0.1" not in error.detail
    seen = [fields.get("authorization") for _, _, fields in server.requests[before:]]
    assert f"Bearer {TOKEN}" in seen and "Bearer wrong" in seen


def test_a_forgotten_session_is_opened_again(servers: dict[Mode, McpServerThread]) -> None:
    server = servers["legacy"]

    async def main(outbound: OutboundClient) -> tuple[str | None, str | None, dict[str, Any]]:
        upstream = client_of(outbound, server)
        await upstream.connect()
        first = upstream.session.id if upstream.session else None
        server.forget_sessions()
        result = await upstream.request(
            "tools/call", {"name": "add", "arguments": {"a": 1, "b": 1}}
        )
        second = upstream.session.id if upstream.session else None
        await upstream.close()
        return first, second, result

    first, second, result = run(main)
    assert first and second and first != second
    assert result["structuredContent"] == {"result": 2}


GONE = {
    "legacy": (
        400,
        b"application/json",
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": None,
                "error": {"code": -32600, "message": "Bad Request: No valid session ID provided"},
            }
        ).encode(),
    ),
    "sse": (404, b"text/plain", b"Could not find session"),
}


@pytest.mark.parametrize("mode", list(GONE))
def test_a_server_saying_the_session_is_gone_gets_a_new_one(
    servers: dict[Mode, McpServerThread], mode: Mode
) -> None:
    server = servers[mode]

    async def main(outbound: OutboundClient) -> dict[str, Any]:
        upstream = client_of(outbound, server)
        try:
            await upstream.connect()
            server.recorder.refuse_next = GONE[mode]
            return await upstream.request(
                "tools/call", {"name": "add", "arguments": {"a": 2, "b": 2}}
            )
        finally:
            await upstream.close()

    before = len(server.requests)
    result = run(main)
    assert result["structuredContent"] == {"result": 4}
    requests = server.requests[before:]
    if mode == "sse":  # a new event stream, with a new endpoint
        assert [method for method, _, _ in requests].count("GET") == 2
    else:  # initialize, the one request without a revision field, was sent again
        assert sum("mcp-protocol-version" not in fields for _, _, fields in requests) == 2


def test_many_calls_at_once_share_one_session(servers: dict[Mode, McpServerThread]) -> None:
    server = servers["legacy"]

    async def main(outbound: OutboundClient) -> list[dict[str, Any]]:
        upstream = client_of(outbound, server)
        try:
            return await asyncio.gather(
                *(
                    upstream.request("tools/call", {"name": "add", "arguments": {"a": i, "b": 1}})
                    for i in range(40)
                )
            )
        finally:
            await upstream.close()

    before = len(server.requests)
    results = run(main)
    assert [r["structuredContent"]["result"] for r in results] == [i + 1 for i in range(40)]
    requests = server.requests[before:]
    opening = [fields for _, _, fields in requests if "mcp-session-id" not in fields]
    assert len(opening) == 2  # the discover probe and the one initialize
    assert len({fields.get("mcp-session-id") for _, _, fields in requests[2:]}) == 1


def test_many_calls_at_once_over_sse(servers: dict[Mode, McpServerThread]) -> None:
    server = servers["sse"]

    async def main(outbound: OutboundClient) -> list[dict[str, Any]]:
        upstream = client_of(outbound, server)
        try:
            return await asyncio.gather(
                *(
                    upstream.request("tools/call", {"name": "echo", "arguments": {"text": str(i)}})
                    for i in range(30)
                )
            )
        finally:
            await upstream.close()

    before = len(server.requests)
    results = run(main)
    assert [r["content"][0]["text"] for r in results] == [f"alpha: {i}" for i in range(30)]
    assert [method for method, _, _ in server.requests[before:]].count("GET") == 1


def test_a_dead_event_stream_fails_its_waiting_calls_and_is_reopened(
    servers: dict[Mode, McpServerThread],
) -> None:
    server = servers["sse"]
    server.gate.release.clear()
    server.gate.entered.clear()

    async def main(outbound: OutboundClient) -> tuple[BaseException | None, str]:
        upstream = client_of(outbound, server)
        try:
            held = asyncio.ensure_future(
                upstream.request("tools/call", {"name": "hold", "arguments": {}})
            )
            await asyncio.get_running_loop().run_in_executor(None, server.gate.entered.wait)
            server.recorder.cut_streams()  # the stream ends under the waiting call
            error = (await asyncio.gather(held, return_exceptions=True))[0]
            server.gate.release.set()
            result = await upstream.request(
                "tools/call", {"name": "echo", "arguments": {"text": "again"}}
            )
            return error if isinstance(error, BaseException) else None, result["content"][0]["text"]
        finally:
            server.gate.release.set()
            await upstream.close()

    before = len(server.requests)
    error, text = run(main)
    assert isinstance(error, BadGateway)
    assert text == "alpha: again"
    assert [method for method, _, _ in server.requests[before:]].count("GET") == 2


def test_a_slow_answer_is_a_gateway_timeout(servers: dict[Mode, McpServerThread]) -> None:
    server = servers["modern"]
    server.gate.release.clear()

    async def main(outbound: OutboundClient) -> None:
        upstream = client_of(outbound, server, timeout=0.5)
        try:
            await upstream.connect()
            with pytest.raises(GatewayTimeout):
                await upstream.request("tools/call", {"name": "hold", "arguments": {}})
        finally:
            server.gate.release.set()
            await upstream.close()

    run(main)


@pytest.mark.parametrize("mode", ["modern", "stateless-json", "sse"])
def test_an_answer_past_the_limit_is_refused(
    servers: dict[Mode, McpServerThread], mode: Mode
) -> None:
    async def main(outbound: OutboundClient) -> None:
        upstream = client_of(outbound, servers[mode], max_body=4096)
        try:
            small = await upstream.request("tools/call", {"name": "big", "arguments": {"size": 10}})
            assert small["content"][0]["text"] == "x" * 10
            with pytest.raises(BadGateway):
                await upstream.request("tools/call", {"name": "big", "arguments": {"size": 10000}})
        finally:
            await upstream.close()

    run(main)


def test_list_all_stops_at_its_page_limit(servers: dict[Mode, McpServerThread]) -> None:
    async def main(outbound: OutboundClient) -> list[dict[str, Any]]:
        upstream = client_of(outbound, servers["modern"], max_pages=2)
        try:
            return await upstream.list_all("tools/list", "tools")
        finally:
            await upstream.close()

    assert len(run(main)) == 4


def test_non_ascii_names_are_base64_wrapped_as_the_sdk_reads_them() -> None:
    for value in ("forecast", "météo", " edge ", "=?base64?abc?=", "tab\there"):
        encoded = header_value(value)
        assert encoded.isascii()
        assert decode_header_value(encoded) == value
    assert header_value("forecast") == "forecast"
    assert header_value("météo").startswith("=?base64?")


# -- servers that answer wrongly -------------------------------------------------------


def scripted(answer: Any) -> Any:
    """A server of 2026-07-28 that answers discover properly and every other request
    with ``answer(conn, message)``."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            message = json.loads(request.body)
            if message["method"] == "server/discover":
                result = {
                    "supportedVersions": ["2026-07-28"],
                    "capabilities": {"tools": {}},
                    "cacheScope": "public",
                }
                body = json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result})
                conn.respond(200, body.encode(), [("Content-Type", "application/json")])
            else:
                answer(conn, message)

    return handler


def json_answer(body: Any, status: int = 200) -> Any:
    def answer(conn: Conn, message: dict[str, Any]) -> None:
        data = body(message) if callable(body) else body
        conn.respond(status, json.dumps(data).encode(), [("Content-Type", "application/json")])

    return answer


def raw_answer(status: int, body: bytes, kind: str) -> Any:
    def answer(conn: Conn, message: dict[str, Any]) -> None:
        conn.respond(status, body, [("Content-Type", kind)])

    return answer


WRONG = {
    "another id": json_answer(lambda m: {"jsonrpc": "2.0", "id": m["id"] + 1, "result": {}}),
    "not json": raw_answer(200, b"{nope", "application/json"),
    "no jsonrpc": json_answer(lambda m: {"id": m["id"], "result": {}}),
    "result not an object": json_answer(lambda m: {"jsonrpc": "2.0", "id": m["id"], "result": 3}),
    "malformed error": json_answer(lambda m: {"jsonrpc": "2.0", "id": m["id"], "error": "bad"}),
    "accepted": raw_answer(202, b"", "application/json"),
    "server error": raw_answer(500, b"oops", "text/plain"),
    "html": raw_answer(200, b"<html></html>", "text/html"),
    "stream without answer": raw_answer(
        200,
        b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/x"}\n\n',
        "text/event-stream",
    ),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_malformed_answer_is_a_bad_gateway(case: str) -> None:
    async def main(outbound: OutboundClient) -> BadGateway:
        upstream = UpstreamServer(outbound, f"{node.url}/mcp", name="odd", timeout=5)
        with pytest.raises(BadGateway) as caught:
            await upstream.request("tools/list", None)
        return caught.value

    with Upstream(scripted(WRONG[case])) as node:
        error = run(main)
    assert "'odd'" in error.detail


def test_an_answer_in_an_event_stream_after_notifications() -> None:
    def answer(conn: Conn, message: dict[str, Any]) -> None:
        note = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}
        request = {"jsonrpc": "2.0", "id": 99, "method": "ping"}
        reply = {"jsonrpc": "2.0", "id": message["id"], "result": {"tools": []}}
        events = b"".join(
            b": keep-alive\r\nevent: message\r\ndata: " + json.dumps(m).encode() + b"\r\n\r\n"
            for m in (note, request, reply)
        )
        conn.respond(200, events, [("Content-Type", "text/event-stream")])

    async def main(outbound: OutboundClient) -> dict[str, Any]:
        upstream = UpstreamServer(outbound, f"{node.url}/mcp", name="odd", timeout=5)
        return await upstream.request("tools/list", None)

    with Upstream(scripted(answer)) as node:
        assert run(main) == {"tools": []}


def test_an_error_with_a_status_keeps_its_json_rpc_error() -> None:
    error = {"code": -32602, "message": "bad arguments", "data": {"field": "a"}}
    answer = json_answer(lambda m: {"jsonrpc": "2.0", "id": None, "error": error}, status=400)

    async def main(outbound: OutboundClient) -> McpError:
        upstream = UpstreamServer(outbound, f"{node.url}/mcp", name="odd", timeout=5)
        with pytest.raises(McpError) as caught:
            await upstream.request("tools/call", {"name": "x", "arguments": {}})
        return caught.value

    with Upstream(scripted(answer)) as node:
        caught = run(main)
    assert (caught.code, caught.message, caught.data) == (-32602, "bad arguments", {"field": "a"})


def test_an_unreachable_server_is_a_bad_gateway() -> None:
    async def main(outbound: OutboundClient) -> None:
        upstream = UpstreamServer(outbound, f"http://127.0.0.1:{port}/mcp", name="gone", timeout=5)
        with pytest.raises(BadGateway):
            await upstream.request("tools/list", None)

    with Upstream() as node:
        port = node.port
    run(main)


def test_fixed_headers_may_not_name_the_client_fields() -> None:
    with pytest.raises(ValueError, match="Mcp-Session-Id"):
        UpstreamServer(None, "http://x/mcp", headers={"Mcp-Session-Id": "x"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2026-07-28"):
        UpstreamServer(None, "http://x/sse", transport="sse", protocol="2026-07-28")  # type: ignore[arg-type]
