"""Real MCP servers made with the official SDK, served by uvicorn on 127.0.0.1:0.

Every server holds the same tools, resources and prompts, lists its tools two at a
time (so a client must follow ``nextCursor``), requires the gateway's bearer token
and records the header fields of every request it gets.  The modes:

- ``modern``: the SDK's default Streamable HTTP app (stateful, answers in event
  streams; also answers ``server/discover`` at 2026-07-28);
- ``legacy``: the same app behind a front that refuses ``server/discover``
  (-32601), as a server of 2025-11-25 only does;
- ``legacy-404``: refuses it with a bare 404 instead;
- ``stateless-json``: stateless, answers in JSON;
- ``sse``: the older HTTP+SSE transport.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
import uvicorn
import uvloop
from mcp.server.mcpserver import MCPServer
from mcp_types import ListToolsResult, PaginatedRequestParams
from pydantic import Field

from quiver.proxy.outbound import OutboundClient
from quiver.proxy.sweeper import Sweeper

Mode = Literal["modern", "legacy", "legacy-404", "stateless-json", "sse"]
MODES: tuple[Mode, ...] = ("modern", "legacy", "legacy-404", "stateless-json", "sse")
TOKEN = "upstream-secret"
ASGI = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]
PAGE = 2


class PagedServer(MCPServer):
    """Lists its tools ``PAGE`` at a time."""

    async def _handle_list_tools(
        self, ctx: Any, params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        tools = await self.list_tools()
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + PAGE
        return ListToolsResult(
            tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None
        )


class Gate:
    """Lets a test hold a tool call at the server: ``entered`` is set when the call
    arrives, and the call answers once ``release`` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()


def make_mcp(name: str, gate: Gate) -> PagedServer:
    mcp = PagedServer(name)

    @mcp.tool()
    async def hold() -> str:
        """Answers when the test lets it."""
        gate.entered.set()
        await anyio.to_thread.run_sync(gate.release.wait)
        return "released"

    @mcp.tool()
    def big(size: int) -> str:
        """A long text."""
        return "x" * size

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Adds two numbers."""
        return a + b

    @mcp.tool()
    def echo(text: str) -> str:
        """Says the text again."""
        return f"{name}: {text}"

    @mcp.tool()
    def forecast(city: str) -> dict[str, Any]:
        """The weather of a city."""
        return {"city": city, "sky": "clear"}

    @mcp.tool()
    def regional(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
    ) -> str:
        """Routed by region: its argument is repeated in a header field."""
        return f"{name}: {region}"

    @mcp.tool()
    def fail() -> str:
        """Always fails."""
        raise ValueError("it failed")

    @mcp.tool()
    def secret_admin() -> str:
        """For administrators."""
        return "done"

    @mcp.resource(f"note://{name}/readme")
    def readme() -> str:
        """The readme."""
        return f"the readme of {name}"

    @mcp.resource(f"note://{name}/private")
    def private() -> str:
        return "private"

    @mcp.resource(f"item://{name}/{{item}}")
    def item(item: str) -> str:
        return f"item {item}"

    @mcp.prompt()
    def greet(who: str) -> str:
        """A greeting."""
        return f"Hello {who} from {name}"

    return mcp


class Recorder:
    """An ASGI front: checks the bearer token, records request fields, and in the
    legacy modes refuses ``server/discover``."""

    def __init__(self, app: ASGI, mode: Mode) -> None:
        self.app = app
        self.mode = mode
        #: (method, path, {field: value}) of every request
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._cut = threading.Event()
        #: (status, content type, body) to answer the next message of a session with
        self.refuse_next: tuple[int, bytes, bytes] | None = None

    def cut_streams(self) -> None:
        """End the open event streams of the HTTP+SSE transport, as a server that
        drops its connections (their sessions go with them)."""
        cut, self._cut = self._cut, threading.Event()
        cut.set()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        fields = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.requests.append((scope["method"], scope["path"], fields))
        if fields.get("authorization") != f"Bearer {TOKEN}":
            await _answer(send, 401, b"text/plain", b"no")
            return
        in_session = "mcp-session-id" in fields or scope["path"].startswith("/messages")
        if self.refuse_next is not None and scope["method"] == "POST" and in_session:
            (status, kind, body), self.refuse_next = self.refuse_next, None
            await _body(receive)
            await _answer(send, status, kind, body)
            return
        version = fields.get("mcp-protocol-version")
        if self.mode in ("legacy", "legacy-404") and version == "2026-07-28":
            body = await _body(receive)
            if self.mode == "legacy-404":
                await _answer(send, 404, b"text/plain", b"Not Found")
                return
            message = json.loads(body)
            error = {"code": -32601, "message": "Method not found"}
            answer = {"jsonrpc": "2.0", "id": message.get("id"), "error": error}
            await _answer(send, 200, b"application/json", json.dumps(answer).encode())
            return
        if self.mode == "sse" and scope["method"] == "GET":
            await self._cuttable(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _cuttable(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        cut = self._cut
        ended = False

        async def guarded_send(message: MutableMapping[str, Any]) -> None:
            if not ended:
                await send(message)

        async with anyio.create_task_group() as group:

            async def serve() -> None:
                await self.app(scope, receive, guarded_send)
                group.cancel_scope.cancel()

            group.start_soon(serve)
            await anyio.to_thread.run_sync(cut.wait, abandon_on_cancel=True)
            ended = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            group.cancel_scope.cancel()


async def _body(receive: Any) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _answer(send: Any, status: int, kind: bytes, body: bytes) -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class McpServerThread:
    """One SDK server in one mode, in a thread of its own."""

    def __init__(self, mode: Mode, name: str = "alpha") -> None:
        self.mode = mode
        self.name = name
        self.gate = Gate()
        self.mcp = make_mcp(name, self.gate)
        if mode == "sse":
            app: Any = self.mcp.sse_app()
            path = "/sse"
        elif mode == "stateless-json":
            app = self.mcp.streamable_http_app(stateless_http=True, json_response=True)
            path = "/mcp"
        else:
            app = self.mcp.streamable_http_app()
            path = "/mcp"
        self.recorder = Recorder(app, mode)
        config = uvicorn.Config(
            self.recorder,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = _Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.path = path
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        return self.recorder.requests

    def forget_sessions(self) -> None:
        """The server forgets its Streamable HTTP sessions (as after a restart)."""
        self.mcp.session_manager._server_instances.clear()

    def __enter__(self) -> McpServerThread:
        self.thread.start()
        if not self.server.ready.wait(10):
            raise RuntimeError("the MCP server did not start")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.gate.release.set()
        self.recorder.cut_streams()
        self.server.should_exit = True
        self.thread.join(10)


T = TypeVar("T")


def run(main: Callable[[OutboundClient], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` on a uvloop with the gateway's real outbound client."""

    async def with_client() -> T:
        loop = asyncio.get_running_loop()
        sweeper = Sweeper(loop, interval=0.05)
        sweeper.start()
        client = OutboundClient(loop, sweeper)
        try:
            return await main(client)
        finally:
            client.close()
            sweeper.stop()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(with_client())
