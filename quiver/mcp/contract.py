"""What an MCP endpoint asks of the thing that supplies its tools, resources and prompts.

An endpoint speaks the protocol to clients (both revisions, sessions sealed into
their ids); a :class:`Provider` knows what there is to list and call: the operations
of an OpenAPI document, or the servers behind an ``mcp`` target.  Every method gets
the :class:`Caller`, so a provider can filter by consumer and forward credentials.

Lists and results are the protocol's JSON objects as dicts (``Tool``,
``CallToolResult``, ``Resource``, ...), written in the protocol's own camelCase.  A
provider refuses with :class:`McpError` (a JSON-RPC error the endpoint sends as it
is); any :class:`~quiver.errors.HTTPError` it raises becomes a JSON-RPC error too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from quiver.plugins.base import PluginRequest
from quiver.plugins.consumers import ConsumerRuntime

# JSON-RPC error codes (JSON-RPC 2.0 and the MCP specification)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HEADER_MISMATCH = -32020
UNSUPPORTED_PROTOCOL_VERSION = -32022
RESOURCE_NOT_FOUND = -32002


class McpError(Exception):
    """A JSON-RPC error to answer: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def error(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` member."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


@dataclass(slots=True)
class Caller:
    """Who calls, and the request that carried the call."""

    request: PluginRequest
    #: the consumer an authentication plugin identified (None: anonymous)
    consumer: ConsumerRuntime | None
    #: the protocol revision of the call ("2026-07-28", "2025-11-25", ...)
    protocol_version: str
    #: what the endpoint records of the call for logs and metrics (tool name,
    #: outcome...); a provider may add to it
    note: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    """Supplies an endpoint's tools, resources and prompts."""

    def capabilities(self) -> dict[str, Any]:
        """The server capabilities to announce, e.g. ``{"tools": {}}``; a provider
        without resources or prompts leaves their keys out."""
        ...

    async def list_tools(self, caller: Caller) -> list[dict[str, Any]]:
        """The tools ``caller`` may see."""
        ...

    async def call_tool(
        self, caller: Caller, name: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        """A ``CallToolResult``; McpError(INVALID_PARAMS) for a tool ``caller`` may
        not see or that does not exist."""
        ...

    async def list_resources(self, caller: Caller) -> list[dict[str, Any]]: ...

    async def list_resource_templates(self, caller: Caller) -> list[dict[str, Any]]: ...

    async def read_resource(self, caller: Caller, uri: str) -> dict[str, Any]:
        """A ``ReadResourceResult``; McpError(RESOURCE_NOT_FOUND) when unknown."""
        ...

    async def list_prompts(self, caller: Caller) -> list[dict[str, Any]]: ...

    async def get_prompt(
        self, caller: Caller, name: str, arguments: dict[str, str]
    ) -> dict[str, Any]:
        """A ``GetPromptResult``; McpError(INVALID_PARAMS) when unknown."""
        ...
