"""One remote MCP server, as the client one gateway worker is of it.

An :class:`UpstreamServer` sends JSON-RPC requests to a server over the outbound
client of the plugin contract and returns their results::

    server = UpstreamServer(outbound, "https://mcp.example/mcp", name="weather",
                            headers={"Authorization": "Bearer ..."})
    tools = await server.list_all("tools/list", "tools")
    result = await server.request("tools/call", {"name": "forecast", "arguments": {}})
    await server.close()

It speaks either revision of Streamable HTTP, or the older HTTP+SSE transport:

- **2026-07-28** is stateless: every POST carries the envelope in
  ``params._meta`` (protocol version, client capabilities and info) and the
  routing fields ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name``;
  ``server/discover`` tells the server's versions and capabilities.  A tool
  whose input schema marks an argument with ``x-mcp-header`` gets it repeated
  in an ``Mcp-Param-NAME`` field (known from the last ``tools/list``).
- **2025-11-25** opens a session: ``initialize``, whose answer carries the
  ``Mcp-Session-Id`` every later request repeats, then
  ``notifications/initialized``.  A 404 to a request carrying the id means the
  server forgot the session: it is opened again, once, and the request resent.
- **auto** (the default) probes ``server/discover`` at 2026-07-28 and falls back
  to the handshake on anything but positive evidence of that revision (any
  JSON-RPC error but an unsupported-version one naming only newer revisions,
  any 4xx without one, a result without the revision), as the SDK's clients do.
- **HTTP+SSE** (``transport="sse"``): see :mod:`quiver.mcp.sse_transport`.

The session (or the discovered capabilities) is made lazily under a lock, once
per worker, and shared by every caller.  The server only ever sees the fixed
``headers`` given here (the gateway's own credentials for it): nothing of a
client's request reaches it, since no method takes a client's headers.

Failures: a JSON-RPC error the server answered is :class:`McpError` (its code,
message and data kept); a transport failure, a malformed answer, an answer to
another id or one past ``max_body`` bytes is :class:`~quiver.errors.BadGateway`
(:class:`~quiver.errors.GatewayTimeout` past ``timeout``), naming the server by
its name, never its address.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from quiver import __version__
from quiver.config.mcp import MCP_CLIENT_HEADERS
from quiver.errors import BadGateway, GatewayError, HTTPError
from quiver.mcp import jsonrpc
from quiver.mcp.contract import UNSUPPORTED_PROTOCOL_VERSION, McpError
from quiver.mcp.events import EventDecoder, EventTooLarge
from quiver.mcp.fields import argument_value, param_headers
from quiver.mcp.protocol import (
    CLIENT_CAPABILITIES_META,
    CLIENT_INFO_META,
    HANDSHAKE,
    LATEST_HANDSHAKE,
    LATEST_MODERN,
    NAMED_BY,
    PROTOCOL_VERSION_META,
    header_value,
)
from quiver.mcp.sse_transport import ChannelGone, SseChannel, named
from quiver.plugins.outbound import Outbound, OutboundResponse

log = logging.getLogger(__name__)

Transport = Literal["streamable-http", "sse"]
ProtocolChoice = Literal["auto", "2026-07-28", "2025-11-25"]

#: the largest answer read from a server
MAX_BODY = 8 << 20
#: the pages ``list_all`` follows at most
MAX_PAGES = 100

CLIENT_INFO = {"name": "quiver", "version": __version__}


@dataclass(slots=True)
class Session:
    """What the gateway settled with a server: the revision and the server's
    capabilities; for a 2025-11-25 session its id, for HTTP+SSE its channel."""

    version: str
    capabilities: dict[str, Any]
    server_info: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    channel: SseChannel | None = None

    @property
    def modern(self) -> bool:
        return self.version == LATEST_MODERN

    @property
    def usable(self) -> bool:
        return self.channel is None or not self.channel.dead


class _SessionGone(Exception):
    """The server forgot the session the request carried."""


class _NotModern(Exception):
    """The discover probe found no evidence of revision 2026-07-28."""


class _Refused(BadGateway):
    """The server refused a request at the HTTP level, without a JSON-RPC error."""


class UpstreamServer:
    """One remote MCP server, shared by every caller in one worker."""

    def __init__(
        self,
        outbound: Outbound,
        url: str,
        *,
        name: str = "mcp",
        transport: Transport = "streamable-http",
        protocol: ProtocolChoice = "auto",
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        max_body: int = MAX_BODY,
        max_pages: int = MAX_PAGES,
    ) -> None:
        if transport == "sse" and protocol == LATEST_MODERN:
            raise ValueError("the HTTP+SSE transport has no 2026-07-28 revision")
        for header in headers or {}:
            if header.lower() in MCP_CLIENT_HEADERS:
                raise ValueError(f"header {header!r} is set by the MCP client itself")
        self.outbound = outbound
        self.url = url
        self.name = name
        self.transport = transport
        self.protocol = protocol
        #: the gateway's own fields for this server (its credentials)
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.max_body = max_body
        self.max_pages = max_pages
        self.who = f"the MCP server {name!r}"
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._session: Session | None = None
        #: tool -> (argument path, header token) its schema marks with x-mcp-header
        self._param_headers: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {}

    @property
    def session(self) -> Session | None:
        """What is settled with the server, if anything yet."""
        return self._session

    async def connect(self) -> Session:
        """The session (discovered or initialized once, then shared)."""
        session = self._session
        if session is not None and session.usable:
            return session
        async with self._lock:
            session = self._session
            if session is None or not session.usable:
                if session is not None:
                    self._discard(session)
                self._session = session = await self._open()
            return session

    async def request(
        self, method: str, params: dict[str, Any] | None = None, *, name: str | None = None
    ) -> dict[str, Any]:
        """Send ``method`` and return its result.  ``name`` is what ``Mcp-Name``
        says (by default the params' ``name`` or ``uri`` as the method has it)."""
        if name is None and method in NAMED_BY and params is not None:
            value = params.get(NAMED_BY[method])
            name = value if isinstance(value, str) else None
        session = await self.connect()
        try:
            return await self._request(session, method, params, name)
        except _SessionGone:
            session = await self._renew(session)
        try:
            return await self._request(session, method, params, name)
        except _SessionGone:
            raise BadGateway(f"{self.who} forgot a session it had just opened") from None

    async def list_all(
        self, method: str, key: str, params: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a paginated list (``tools/list`` → ``tools``, ...), following
        ``nextCursor`` for at most ``max_pages`` pages."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(self.max_pages):
            page_params = dict(params or {})
            if cursor is not None:
                page_params["cursor"] = cursor
            result = await self.request(method, page_params or None)
            page = result.get(key)
            if not isinstance(page, list):
                raise BadGateway(f"{self.who} answered {method} without a list of {key}")
            items.extend(item for item in page if isinstance(item, dict))
            if method == "tools/list":
                self._note_param_headers(page)
            cursor = result.get("nextCursor")
            if cursor is None or cursor == "":
                return items
            if not isinstance(cursor, str):
                raise BadGateway(f"{self.who} answered {method} with a cursor that is not a string")
            if cursor in seen:
                log.warning(
                    "%s: %s named a cursor it named before; the list ends", self.who, method
                )
                return items
            seen.add(cursor)
        log.warning(
            "%s: %s has more than %d pages; the rest is left out", self.who, method, self.max_pages
        )
        return items

    async def close(self) -> None:
        """End the session: DELETE it (best effort) or close its event stream."""
        await self.end(self.release())

    def release(self) -> Session | None:
        """Forget the session at once (an event stream is closed now); the session,
        for :meth:`end` to end at the server."""
        session, self._session = self._session, None
        if session is not None:
            self._discard(session)
        return session

    async def end(self, session: Session | None) -> None:
        """DELETE a released session at the server (best effort)."""
        if session is not None and session.id is not None:
            headers = self._headers(session, None, None)
            try:
                response = await self.outbound.request(
                    "DELETE", self.url, headers=headers, timeout=min(self.timeout, 5.0)
                )
                response.close()
            except (HTTPError, ValueError) as exc:
                log.debug("%s: ending the session failed: %s", self.who, exc)

    # -- sessions -------------------------------------------------------------------

    async def _open(self) -> Session:
        if self.transport == "sse":
            channel = await SseChannel.open(
                self.outbound,
                self.url,
                headers=self.headers,
                who=self.who,
                timeout=self.timeout,
                max_body=self.max_body,
            )
            try:
                return await self._initialize(channel)
            except BaseException:
                channel.close()
                raise
        if self.protocol == LATEST_HANDSHAKE:
            return await self._initialize(None)
        try:
            return await self._discover()
        except _NotModern:
            if self.protocol == LATEST_MODERN:
                raise BadGateway(f"{self.who} does not speak revision {LATEST_MODERN}") from None
        return await self._initialize(None)

    async def _renew(self, stale: Session) -> Session:
        async with self._lock:
            if self._session is stale:
                self._discard(stale)
                self._session = None
                log.info("%s: the session is gone; opening a new one", self.who)
                self._session = await self._open()
            session = self._session
            assert session is not None
            return session

    def _discard(self, session: Session) -> None:
        if session.channel is not None:
            session.channel.close()

    async def _discover(self) -> Session:
        probe = Session(LATEST_MODERN, {})
        try:
            result = await self._request(probe, "server/discover", None, None)
        except McpError as exc:
            if exc.code == UNSUPPORTED_PROTOCOL_VERSION:
                supported = exc.data.get("supported") if isinstance(exc.data, dict) else None
                if isinstance(supported, list) and not any(
                    version in HANDSHAKE for version in supported
                ):
                    raise BadGateway(f"{self.who} speaks no revision the gateway does") from None
            raise _NotModern from None
        except _Refused:
            raise _NotModern from None
        versions = result.get("supportedVersions")
        if not isinstance(versions, list) or LATEST_MODERN not in versions:
            raise _NotModern
        return Session(
            LATEST_MODERN,
            _object(result.get("capabilities")),
            _object(_object(result.get("_meta")).get("io.modelcontextprotocol/serverInfo")),
        )

    async def _initialize(self, channel: SseChannel | None) -> Session:
        params = {
            "protocolVersion": LATEST_HANDSHAKE,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        }
        message = jsonrpc.request(next(self._ids), "initialize", params)
        if channel is not None:
            result = await channel.call(message)
            session_id = None
        else:
            opening = Session(LATEST_HANDSHAKE, {})
            result, session_id = await self._post(opening, message, None)
        version = result.get("protocolVersion")
        if version not in HANDSHAKE:
            raise BadGateway(f"{self.who} settled on a revision the gateway does not speak")
        assert isinstance(version, str)
        session = Session(
            version,
            _object(result.get("capabilities")),
            _object(result.get("serverInfo")),
            id=session_id,
            channel=channel,
        )
        initialized = jsonrpc.notification("notifications/initialized")
        if channel is not None:
            await channel.notify(initialized)
        else:
            await self._post(session, initialized, None)
        return session

    # -- one request ----------------------------------------------------------------

    async def _request(
        self, session: Session, method: str, params: dict[str, Any] | None, name: str | None
    ) -> dict[str, Any]:
        if session.modern:
            params = dict(params or {})
            meta = params.get("_meta")
            params["_meta"] = {
                **(meta if isinstance(meta, dict) else {}),
                PROTOCOL_VERSION_META: LATEST_MODERN,
                CLIENT_CAPABILITIES_META: {},
                CLIENT_INFO_META: CLIENT_INFO,
            }
        message = jsonrpc.request(next(self._ids), method, params)
        if session.channel is not None:
            try:
                return await session.channel.call(message)
            except ChannelGone:
                raise _SessionGone from None
        result, _ = await self._post(session, message, name)
        return result

    def _note_param_headers(self, tools: list[Any]) -> None:
        for tool in tools:
            if isinstance(tool, dict) and isinstance(tool.get("name"), str):
                marked = tuple(param_headers(tool.get("inputSchema")))
                if marked:
                    self._param_headers[tool["name"]] = marked
                else:
                    self._param_headers.pop(tool["name"], None)

    async def _post(
        self, session: Session, message: dict[str, Any], name: str | None
    ) -> tuple[dict[str, Any], str | None]:
        """POST one message; for a request, its result and the ``Mcp-Session-Id`` of
        the answer."""
        try:
            return await self._post_once(session, message, name)
        except GatewayError as exc:
            raise named(exc, self.who) from exc

    async def _post_once(
        self, session: Session, message: dict[str, Any], name: str | None
    ) -> tuple[dict[str, Any], str | None]:
        method = message["method"]
        headers = self._headers(session, method, name)
        if session.modern and method == "tools/call" and name in self._param_headers:
            arguments = message["params"].get("arguments")
            if isinstance(arguments, dict):
                for path, token in self._param_headers[name]:
                    value = argument_value(arguments, path)
                    if value is not None:
                        headers[f"Mcp-Param-{token}"] = header_value(value)
        response = await self.outbound.request(
            "POST",
            self.url,
            headers=headers,
            body=jsonrpc.encode(message),
            timeout=self.timeout,
            idempotent=method != "tools/call",
        )
        async with response:
            status = response.status
            kind = (response.header("content-type") or "").partition(";")[0].strip().lower()
            if status == 404 and session.id is not None:
                raise _SessionGone
            if status >= 300:
                await self._refusal(response, status, kind, session)
            if "id" not in message:
                await response.read(limit=self.max_body)
                return {}, None
            if status == 202:
                raise BadGateway(f"{self.who} accepted a request without answering it")
            request_id = message["id"]
            if kind == "application/json":
                answer = jsonrpc.decode(await response.read(limit=self.max_body), self.who)
            elif kind == "text/event-stream":
                answer = await self._answer_in_stream(response, request_id)
            else:
                raise BadGateway(f"{self.who} answered with an unexpected content type")
            return jsonrpc.result_of(answer, request_id, self.who), response.header(
                "mcp-session-id"
            )

    async def _refusal(
        self, response: OutboundResponse, status: int, kind: str, session: Session
    ) -> None:
        """Raise what a non-2xx answer means: its JSON-RPC error if it has one."""
        error: dict[str, Any] | None = None
        if kind == "application/json":
            body = await response.read(limit=self.max_body)
            try:
                answer = jsonrpc.decode(body, self.who)
            except BadGateway:
                answer = {}
            error = answer.get("error") if isinstance(answer.get("error"), dict) else None
        if error is not None:
            text = error.get("message")
            if session.id is not None and isinstance(text, str) and "session" in text.lower():
                raise _SessionGone
            if isinstance(error.get("code"), int) and isinstance(text, str):
                raise McpError(error["code"], text, error.get("data"))
        if status in (401, 403):
            raise _Refused(f"{self.who} refused the gateway's credentials ({status})")
        raise _Refused(f"{self.who} answered {status}")

    async def _answer_in_stream(
        self, response: OutboundResponse, request_id: jsonrpc.RequestId
    ) -> dict[str, Any]:
        """The response to ``request_id`` among the messages of an event stream
        (notifications and requests of the server may come first)."""
        decoder = EventDecoder(self.max_body)
        size = 0
        async for chunk in response.stream():
            size += len(chunk)
            if size > self.max_body:
                raise BadGateway(f"{self.who} answered more than {self.max_body} bytes")
            try:
                events = decoder.feed(chunk)
            except EventTooLarge:
                raise BadGateway(f"{self.who} answered more than {self.max_body} bytes") from None
            for event in events:
                if event.name != "message" or not event.data:
                    continue
                message = jsonrpc.decode(event.data, self.who)
                if jsonrpc.is_response(message):
                    return message
        raise BadGateway(f"{self.who} ended its event stream without answering")

    def _headers(self, session: Session, method: str | None, name: str | None) -> dict[str, str]:
        headers = dict(self.headers)
        headers["Accept"] = "application/json, text/event-stream"
        headers["Content-Type"] = "application/json"
        if method != "initialize":
            headers["MCP-Protocol-Version"] = session.version
        if session.id is not None:
            headers["Mcp-Session-Id"] = session.id
        if session.modern and method is not None:
            headers["Mcp-Method"] = method
            if name is not None:
                headers["Mcp-Name"] = header_value(name)
        return headers


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
