"""JSON-RPC 2.0 messages as the gateway reads them from an MCP server.

What a server answers is checked before anything of it is used: a response is a
JSON object with ``jsonrpc: "2.0"``, the id of the request it answers, and either
a ``result`` object or an ``error`` with an integer ``code`` and a string
``message``.  An error becomes :class:`~quiver.mcp.contract.McpError` with its
code, message and data kept; anything malformed is a
:class:`~quiver.errors.BadGateway` naming the server, never its address.
"""

from __future__ import annotations

import json
from typing import Any

from quiver.errors import BadGateway
from quiver.mcp.contract import McpError

#: an id the gateway gives its requests
RequestId = int


def request(request_id: RequestId, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """A request object (``params`` left out when None)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


def decode(data: bytes | str, who: str) -> dict[str, Any]:
    """One JSON-RPC message; BadGateway for anything else (a batch included: servers
    of the current revisions never send one)."""
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        raise BadGateway(f"{who} answered something that is not JSON") from None
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        raise BadGateway(f"{who} answered something that is not a JSON-RPC message")
    return message


def is_response(message: dict[str, Any]) -> bool:
    """A response (result or error) rather than a request or a notification."""
    return "method" not in message and ("result" in message or "error" in message)


def result_of(message: dict[str, Any], request_id: RequestId, who: str) -> dict[str, Any]:
    """The result of a response to ``request_id``; McpError when it is an error."""
    answered = message.get("id")
    error = message.get("error")
    if error is not None:
        # a server that could not read the request answers its error with a null id
        if answered is not None and not _same_id(answered, request_id):
            raise BadGateway(f"{who} answered a request it was not sent")
        if (
            not isinstance(error, dict)
            or not isinstance(error.get("code"), int)
            or isinstance(error.get("code"), bool)
            or not isinstance(error.get("message"), str)
        ):
            raise BadGateway(f"{who} answered a malformed JSON-RPC error")
        raise McpError(error["code"], error["message"], error.get("data"))
    if not _same_id(answered, request_id):
        raise BadGateway(f"{who} answered a request it was not sent")
    result = message.get("result")
    if not isinstance(result, dict):
        raise BadGateway(f"{who} answered a result that is not an object")
    return result


def _same_id(answered: Any, request_id: RequestId) -> bool:
    return isinstance(answered, int) and not isinstance(answered, bool) and answered == request_id
