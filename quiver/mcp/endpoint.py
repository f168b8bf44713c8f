"""An MCP endpoint: the server side of the protocol, over Streamable HTTP.

One JSON-RPC message per POST, answered with one JSON document.  Both revisions are
spoken (see :mod:`quiver.mcp.protocol`), chosen per request:

- a request whose ``params._meta`` carries a protocol version, or a
  ``server/discover``, is stateless (2026-07-28): its envelope and its
  ``MCP-Protocol-Version``, ``Mcp-Method`` and ``Mcp-Name`` fields must agree with
  the body, or it is refused with ``-32020`` (header mismatch) before anything
  runs;
- anything else belongs to a session opened by ``initialize`` (2025-11-25 and
  before), whose id is sealed (:mod:`quiver.mcp.sessions`): nothing is kept in the
  worker, so any worker of any node answers any request.

The endpoint holds no server-to-client stream: ``GET`` and ``DELETE`` are answered
405, as the protocol allows.  What there is to list and call comes from a
:class:`~quiver.mcp.contract.Provider`.  What each message was and how it ended is
left in ``request.ctx["mcp"]`` for the exchange's record (logs, call log, metrics).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from quiver.errors import HTTPError
from quiver.mcp.contract import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
    Caller,
    McpError,
    Provider,
)
from quiver.mcp.protocol import (
    CLIENT_CAPABILITIES_META,
    HANDSHAKE,
    LATEST_HANDSHAKE,
    METHOD_HEADER,
    MODERN,
    NAME_HEADER,
    NAMED_BY,
    PROTOCOL_VERSION_HEADER,
    PROTOCOL_VERSION_META,
    SERVER_INFO_META,
    SESSION_HEADER,
    read_header_value,
)
from quiver.mcp.sessions import SessionSeal
from quiver.plugins.base import PluginRequest
from quiver.plugins.responder import Response

_JSON = [(b"Content-Type", b"application/json"), (b"Cache-Control", b"no-store")]
_NOT_ALLOWED = [(b"Allow", b"POST"), *_JSON]
_ROUTING_HEADERS = (PROTOCOL_VERSION_HEADER, METHOD_HEADER, NAME_HEADER)

#: the HTTP status of a stateless request's error, by JSON-RPC code (200 otherwise)
_MODERN_STATUS = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}
#: the results a 2026-07-28 client may cache, which say for how long and for whom
_CACHEABLE = frozenset(
    {
        "server/discover",
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "prompts/list",
    }
)
_SUPPORTED = [*reversed(MODERN), *reversed(HANDSHAKE)]


def _answer(status: int, document: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> Response:
    return Response(status, list(headers), orjson.dumps(document))


def _error(message_id: Any, error: McpError, status: int = 200) -> Response:
    return _answer(status, {"jsonrpc": "2.0", "id": message_id, "error": error.error()}, _JSON)


class Endpoint:
    """Answers the MCP messages of one route with what ``provider`` supplies."""

    def __init__(
        self,
        provider: Provider,
        seal: SessionSeal,
        *,
        name: str,
        version: str = "1.0.0",
        instructions: str | None = None,
    ) -> None:
        self.provider = provider
        self.seal = seal
        self.server_info = {"name": name, "version": version}
        self.instructions = instructions

    async def handle(self, request: PluginRequest) -> Response:
        if request.method != b"POST":
            error = McpError(INVALID_REQUEST, "this endpoint takes POST only: it holds no stream")
            return _answer(
                405, {"jsonrpc": "2.0", "id": None, "error": error.error()}, _NOT_ALLOWED
            )
        note: dict[str, Any] = {}
        request.ctx["mcp"] = note
        started = time.perf_counter()
        try:
            return await self._post(request, note)
        finally:
            note["ms"] = round((time.perf_counter() - started) * 1000, 3)

    async def _post(self, request: PluginRequest, note: dict[str, Any]) -> Response:
        try:
            message = orjson.loads(request.body or b"")
        except orjson.JSONDecodeError:
            note["outcome"] = "refused"
            return _error(None, McpError(PARSE_ERROR, "the body is not JSON"), 400)
        if not isinstance(message, dict):
            reason = "batches are not accepted" if isinstance(message, list) else "not an object"
            note["outcome"] = "refused"
            return _error(None, McpError(INVALID_REQUEST, f"a JSON-RPC message: {reason}"), 400)
        method = message.get("method")
        message_id = message.get("id")
        if method is None and ("result" in message or "error" in message):
            return Response(202)  # an answer to a request this server never sends
        if message.get("jsonrpc") != "2.0" or not isinstance(method, str):
            note["outcome"] = "refused"
            error = McpError(
                INVALID_REQUEST, 'a JSON-RPC 2.0 message has "jsonrpc": "2.0" and a method'
            )
            return _error(message_id if _is_id(message_id) else None, error, 400)
        note["method"] = method
        params = message.get("params", {})
        if not isinstance(params, dict):
            note["outcome"] = "refused"
            return _error(message_id, McpError(INVALID_PARAMS, "params must be an object"), 400)
        notification = "id" not in message
        if not notification and not _is_id(message_id):
            note["outcome"] = "refused"
            error = McpError(INVALID_REQUEST, "a request's id is a string or an integer")
            return _error(None, error, 400)
        meta = params.get("_meta")
        modern = method == "server/discover" or (
            isinstance(meta, dict) and PROTOCOL_VERSION_META in meta
        )
        if modern:
            return await self._stateless(request, message_id, method, params, notification, note)
        return await self._in_session(request, message_id, method, params, notification, note)

    async def _stateless(
        self,
        request: PluginRequest,
        message_id: Any,
        method: str,
        params: dict[str, Any],
        notification: bool,
        note: dict[str, Any],
    ) -> Response:
        """A request of a stateless revision: its envelope checked, then answered."""
        try:
            version = _check_envelope(request, method, params)
        except McpError as error:
            note["outcome"] = "refused"
            if notification:
                return Response(202)
            return _error(message_id, error, _MODERN_STATUS.get(error.code, 200))
        if notification:
            return Response(202)
        caller = Caller(request, request.consumer, version, note)
        try:
            result = await self._dispatch(caller, method, params)
        except McpError as error:
            note.setdefault("outcome", "refused")
            return _error(message_id, error, _MODERN_STATUS.get(error.code, 200))
        result["resultType"] = "complete"
        if method in _CACHEABLE:  # (lists differ by consumer: never cached in common)
            result.setdefault("ttlMs", 0)
            result.setdefault("cacheScope", "private")
        return _answer(200, {"jsonrpc": "2.0", "id": message_id, "result": result}, _JSON)

    async def _in_session(
        self,
        request: PluginRequest,
        message_id: Any,
        method: str,
        params: dict[str, Any],
        notification: bool,
        note: dict[str, Any],
    ) -> Response:
        """A message of a handshake revision: ``initialize`` opens a session, every
        other message names one."""
        consumer = request.consumer.name if request.consumer is not None else ""
        if method == "initialize":
            if notification:
                return Response(202)
            requested = params.get("protocolVersion")
            version = (
                requested
                if isinstance(requested, str) and requested in HANDSHAKE
                else (LATEST_HANDSHAKE)
            )
            session_id = self.seal.open(version, consumer)
            opened: dict[str, Any] = {
                "protocolVersion": version,
                "capabilities": self.provider.capabilities(),
                "serverInfo": self.server_info,
            }
            if self.instructions:
                opened["instructions"] = self.instructions
            note["outcome"] = "ok"
            headers = [*_JSON, (b"Mcp-Session-Id", session_id.encode())]
            return _answer(200, {"jsonrpc": "2.0", "id": message_id, "result": opened}, headers)
        session_field = request.get(SESSION_HEADER)
        if session_field is None:
            note["outcome"] = "refused"
            error = McpError(
                INVALID_REQUEST,
                "no Mcp-Session-Id: open a session with initialize first, or send the "
                "protocol version in params._meta (2026-07-28)",
            )
            return _error(message_id, error, 400)
        session = self.seal.read(session_field.decode("latin-1"), consumer)
        if session is None:
            note["outcome"] = "refused"
            error = McpError(INVALID_REQUEST, "session not found: open a new one with initialize")
            return _error(message_id, error, 404)
        version_field = request.get(PROTOCOL_VERSION_HEADER)
        if version_field is not None and version_field.decode("latin-1") not in HANDSHAKE:
            note["outcome"] = "refused"
            error = McpError(INVALID_REQUEST, "unsupported MCP-Protocol-Version for a session")
            return _error(message_id, error, 400)
        if notification:
            return Response(202)
        caller = Caller(request, request.consumer, session.protocol_version, note)
        try:
            if method == "ping":
                result: dict[str, Any] = {}
            elif method == "logging/setLevel":
                result = {}  # (nothing is logged to clients; accepted all the same)
            else:
                result = await self._dispatch(caller, method, params)
        except McpError as error:
            note.setdefault("outcome", "refused")
            return _error(message_id, error)
        return _answer(200, {"jsonrpc": "2.0", "id": message_id, "result": result}, _JSON)

    async def _dispatch(
        self, caller: Caller, method: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        """The result of a request, by method; McpError when it cannot be answered."""
        provider = self.provider
        capabilities = provider.capabilities()
        family = method.partition("/")[0]
        if family in ("tools", "resources", "prompts") and family not in capabilities:
            raise McpError(METHOD_NOT_FOUND, f"this server has no {family}")
        try:
            if method == "server/discover":
                result: dict[str, Any] = {
                    "supportedVersions": _SUPPORTED,
                    "capabilities": capabilities,
                    "_meta": {SERVER_INFO_META: self.server_info},
                }
                if self.instructions:
                    result["instructions"] = self.instructions
            elif method == "tools/list":
                result = {"tools": await provider.list_tools(caller)}
            elif method == "tools/call":
                name = _text(params, "name")
                arguments = params.get("arguments") or {}
                if not isinstance(arguments, dict):
                    raise McpError(INVALID_PARAMS, "arguments must be an object")
                caller.note["tool"] = name
                result = await provider.call_tool(caller, name, arguments)
                caller.note["outcome"] = "error" if result.get("isError") else "ok"
            elif method == "resources/list":
                result = {"resources": await provider.list_resources(caller)}
            elif method == "resources/templates/list":
                result = {"resourceTemplates": await provider.list_resource_templates(caller)}
            elif method == "resources/read":
                uri = _text(params, "uri")
                caller.note["resource"] = uri
                result = await provider.read_resource(caller, uri)
            elif method == "prompts/list":
                result = {"prompts": await provider.list_prompts(caller)}
            elif method == "prompts/get":
                name = _text(params, "name")
                arguments = params.get("arguments") or {}
                if not isinstance(arguments, dict) or not all(
                    isinstance(value, str) for value in arguments.values()
                ):
                    raise McpError(INVALID_PARAMS, "a prompt's arguments are strings")
                caller.note["prompt"] = name
                result = await provider.get_prompt(caller, name, arguments)
            else:
                raise McpError(METHOD_NOT_FOUND, f"method not found: {method}")
        except HTTPError as error:
            caller.note["outcome"] = "failed"
            data = {"status": error.status_code, "title": error.title}
            raise McpError(INTERNAL_ERROR, error.detail or error.title, data) from error
        caller.note.setdefault("outcome", "ok")
        return result


def _is_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _text(params: dict[str, Any], key: str) -> str:
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise McpError(INVALID_PARAMS, f"params.{key} must be a non-empty string")
    return value


def _check_envelope(request: PluginRequest, method: str, params: dict[str, Any]) -> str:
    """The protocol version of a stateless request whose envelope and routing fields
    agree with its body; McpError otherwise (the protocol's order of checks)."""
    meta = params.get("_meta")
    if not isinstance(meta, dict):
        raise McpError(
            INVALID_PARAMS,
            f"params._meta must be an object carrying {PROTOCOL_VERSION_META!r} and "
            f"{CLIENT_CAPABILITIES_META!r}",
        )
    missing = [key for key in (PROTOCOL_VERSION_META, CLIENT_CAPABILITIES_META) if key not in meta]
    if missing:
        raise McpError(INVALID_PARAMS, f"params._meta lacks {', '.join(missing)}")
    version = meta[PROTOCOL_VERSION_META]
    seen: set[bytes] = set()
    for field_name, _ in request.headers:
        lower = field_name.lower()
        if lower in _ROUTING_HEADERS:
            if lower in seen:
                raise McpError(HEADER_MISMATCH, f"{lower.decode()} is sent more than once")
            seen.add(lower)
    version_field = request.get(PROTOCOL_VERSION_HEADER)
    if version_field is None or version_field.decode("latin-1") != version:
        raise McpError(
            HEADER_MISMATCH, "MCP-Protocol-Version does not match params._meta's protocol version"
        )
    method_field = request.get(METHOD_HEADER)
    if method_field is None or method_field.decode("latin-1") != method:
        raise McpError(HEADER_MISMATCH, "Mcp-Method does not match the body's method")
    named = NAMED_BY.get(method)
    if named is not None and params.get(named) is not None:
        name_field = request.get(NAME_HEADER)
        text = read_header_value(name_field.decode("latin-1")) if name_field is not None else None
        if text != params[named]:
            raise McpError(HEADER_MISMATCH, f"Mcp-Name does not match the body's params.{named}")
    if not isinstance(version, str):
        raise McpError(INVALID_PARAMS, "the protocol version in params._meta must be a string")
    if version not in MODERN:
        raise McpError(
            UNSUPPORTED_PROTOCOL_VERSION,
            "unsupported protocol version",
            {"supported": _SUPPORTED, "requested": version},
        )
    return version
