"""The ``mcp`` target type: remote MCP servers behind the gateway, as one endpoint.

A route to a target of ``type: mcp`` is an MCP endpoint (both protocol revisions,
see :mod:`quiver.mcp.endpoint`) whose tools, resources and prompts are those of the
target's servers (:mod:`quiver.mcp.aggregate`): aggregated, prefixed, filtered per
consumer or group by the target's ``access`` rules.  The gateway is the client of
each server with the credentials of the target's config; the caller's own fields
never reach a server.  Each worker keeps its own sessions with the servers; the
callers' sessions are sealed, so no request needs a particular worker.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from quiver.config.mcp import McpTargetOptions
from quiver.config.mcp_routes import PROXY_TARGET_TYPE, McpEndpointSettings, metadata_url
from quiver.errors import Answer, HTTPError, ServiceUnavailable
from quiver.mcp.aggregate import Aggregate
from quiver.mcp.endpoint import Endpoint
from quiver.mcp.published import bearer_challenge
from quiver.mcp.sessions import SessionSeal
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.responder import TargetOptions, TargetType


class ProxiedOptions(McpTargetOptions, McpEndpointSettings, TargetOptions):
    """The options of a target of ``type: mcp`` (docs/mcp.md)."""

    server_name: str | None = Field(
        None, description="The name the endpoint gives itself (the target's by default)."
    )


class ProxiedServers(TargetType[ProxiedOptions]):
    """Answers its routes' MCP messages with what the target's servers offer."""

    name = PROXY_TARGET_TYPE
    Options = ProxiedOptions

    def __init__(self, options: ProxiedOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        if context.outbound is None:
            self.aggregate: Aggregate | None = None
        else:
            self.aggregate = Aggregate.from_options(options, context.outbound)
        secret = options.session_secret or options.model_dump_json(
            include={"servers", "access", "server_name"}
        )
        seal = SessionSeal.keyed(secret, options.session_ttl)
        #: where the OAuth metadata is, named in a 401's challenge (None: no oauth)
        self.resource_metadata = metadata_url(options.oauth)
        name = options.server_name or context.scope.partition(":")[2] or "quiver"
        self.endpoint = Endpoint(
            self.aggregate or _Unserved(), seal, name=name, instructions=options.instructions
        )

    def handle(self, request: PluginRequest) -> Any:
        return self.endpoint.handle(request)

    def error_answer(self, request: PluginRequest, error: HTTPError) -> Answer | None:
        return bearer_challenge(request, error, self.resource_metadata)

    def close(self) -> None:
        """The servers' sessions are let go of at once (event streams closed), then
        ended at their servers in the background."""
        if self.aggregate is None:
            return
        released = self.aggregate.release()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self.aggregate.end(released))
        _closing.add(task)
        task.add_done_callback(_closing.discard)


#: sessions with servers being ended after a reload (kept from being collected)
_closing: set[asyncio.Task[None]] = set()


class _Unserved:
    """The provider of a target built where nothing is served (config checks)."""

    def capabilities(self) -> dict[str, Any]:
        return {}

    def __getattr__(self, name: str) -> Any:
        raise ServiceUnavailable("no outbound client in this process")
