"""The options of MCP in the config.

A target of ``type: mcp`` fronts remote MCP servers: the gateway lists what they
offer as one server of its own and sends each call to the server it belongs to::

    targets:
      - name: tools
        type: mcp
        options:
          servers:
            - {name: weather, url: "https://weather.example/mcp", prefix: weather_,
               headers: {Authorization: "Bearer ${WEATHER_TOKEN}"}}
            - {name: docs, url: "https://docs.example/sse", transport: sse}
          access:
            - {groups: [staff], tools: ["*"], resources: ["*"], prompts: ["*"]}
            - {consumers: [bot], tools: ["weather_*"]}
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, Strict
from quiver.config.upstream import check_target_url

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
#: fields the MCP client sets itself, which a server's ``headers`` may not name
MCP_CLIENT_HEADERS = frozenset(
    {
        "accept",
        "connection",
        "content-length",
        "content-type",
        "host",
        "last-event-id",
        "mcp-method",
        "mcp-name",
        "mcp-protocol-version",
        "mcp-session-id",
        "transfer-encoding",
    }
)


class McpServerOptions(Strict):
    """One remote MCP server behind an ``mcp`` target."""

    name: str = Field(
        pattern=_NAME_PATTERN,
        description="Unique name of the server in the target, in logs and errors.",
    )
    url: str = Field(
        description="Its endpoint: the Streamable HTTP URL (e.g. https://host/mcp), or for "
        "`transport: sse` the URL of its event stream (e.g. https://host/sse)."
    )
    transport: Literal["streamable-http", "sse"] = Field(
        "streamable-http",
        description="`streamable-http`, or `sse` for the older HTTP+SSE transport "
        "(protocol revision 2024-11-05).",
    )
    protocol: Literal["auto", "2026-07-28", "2025-11-25"] = Field(
        "auto",
        description="The protocol revision to speak: `auto` asks `server/discover` at "
        "2026-07-28 and falls back to the initialize handshake of 2025-11-25.",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Fields sent with every request to the server, e.g. `Authorization: "
        "\"Bearer ${MCP_TOKEN}\"`: the gateway's own credentials for it; a client's "
        "credentials are never forwarded.",
    )
    prefix: str = Field(
        "",
        pattern=r"^[A-Za-z0-9._-]{0,32}$",
        description="Put before the names of its tools and prompts as clients see them "
        "(e.g. `weather_`), so that servers with the same names can sit side by side.",
    )
    timeout: Duration = Field(
        30.0, gt=0, description="Longest wait for one answer of the server, in seconds."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        check_target_url(value)
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, field_value in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a header field name")
            if name.lower() in MCP_CLIENT_HEADERS:
                raise ValueError(f"header {name!r} is set by the MCP client itself")
            if any(ch in field_value for ch in "\r\n\0"):
                raise ValueError(f"the value of header {name!r} holds a line break")
        return value

    @model_validator(mode="after")
    def _transport_speaks_protocol(self) -> McpServerOptions:
        if self.transport == "sse" and self.protocol == "2026-07-28":
            raise ValueError("the sse transport has no 2026-07-28 revision")
        return self


class McpAccessRule(Strict):
    """What some callers may see and use of an ``mcp`` target."""

    consumers: list[str] = Field(
        default_factory=list,
        description="Consumers the rule is for, by name; with `groups` empty too, the "
        "rule is for every caller (anonymous ones included).",
    )
    groups: list[str] = Field(
        default_factory=list, description="Groups of consumers the rule is for."
    )
    tools: list[str] = Field(
        default_factory=list,
        description="Tools they may list and call: glob patterns on the names clients see "
        '(prefix included), e.g. `["weather_*"]`; none when empty.',
    )
    resources: list[str] = Field(
        default_factory=list,
        description="Resources they may list and read: glob patterns on the URI (and on "
        'the URI templates listed), e.g. `["docs://public/*"]`; none when empty.',
    )
    prompts: list[str] = Field(
        default_factory=list,
        description="Prompts they may list and get: glob patterns on the names clients "
        "see; none when empty.",
    )


class McpTargetOptions(Strict):
    """The options of a target of ``type: mcp``."""

    servers: list[McpServerOptions] = Field(
        min_length=1, description="The MCP servers the target fronts, listed in this order."
    )
    access: list[McpAccessRule] = Field(
        default_factory=list,
        description="Who sees what: a caller sees what the rules for it allow, together; "
        "without rules every caller sees everything, with rules a caller no rule is for "
        "sees nothing. What a caller may not see it cannot use either, and is told it "
        "does not exist.",
    )

    @model_validator(mode="after")
    def _unique(self) -> McpTargetOptions:
        names = [server.name for server in self.servers]
        if len(set(names)) != len(names):
            raise ValueError("two servers have the same name")
        prefixes = [server.prefix for server in self.servers if server.prefix]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("two servers have the same prefix")
        return self
