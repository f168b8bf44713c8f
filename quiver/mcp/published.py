"""The ``mcp-openapi`` target type: a route's API as MCP tools (``mcp:`` on a route).

The config compiles a route's ``mcp`` key into this target (see
:mod:`quiver.config.mcp_routes`).  It reads the OpenAPI document (inline, a file, or
fetched when first needed and kept), turns its operations into tools, and answers
the MCP messages with an :class:`~quiver.mcp.endpoint.Endpoint`.

A tool call is sent through the gateway itself (``gateway://`` on the plugin
contract's outbound client) to the route the operation lives on, carrying the
caller's own header fields (its key, its token): the route's plugins (its
authentication, ACL, rate limits, quotas, validation, transformations) and its
call log apply to the call exactly as to the REST call it stands for.  The answer
becomes the tool's result, an error answer a result with ``isError``.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import Field, model_validator

from quiver.config.mcp_routes import METADATA_TARGET_TYPE, OPENAPI_TARGET_TYPE
from quiver.config.mcp_routes import parse_openapi as _parse
from quiver.config.mcp_routes import read_openapi_file as _read_file
from quiver.errors import Answer, HTTPError, ServiceUnavailable, problem_body
from quiver.mcp.contract import INTERNAL_ERROR, INVALID_PARAMS, Caller, McpError
from quiver.mcp.endpoint import Endpoint
from quiver.mcp.openapi_tools import Operation, build_request, tool_result, tools_from_openapi
from quiver.mcp.sessions import SessionSeal
from quiver.plugins.base import PluginContext, PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType

#: the caller's fields that are not passed on to the tool call's request: they frame
#: or route the MCP message itself, or are set for the call
_NOT_FORWARDED = frozenset(
    {
        b"host",
        b"content-length",
        b"content-type",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"upgrade",
        b"expect",
        b"accept",
        b"accept-encoding",
        b"last-event-id",
        b"x-forwarded-for",
        b"x-request-id",
    }
)
_FORWARD_PREFIXES_REFUSED = (b"mcp-", b"x-consumer-")
#: the most of an answer a tool result carries (larger ones are refused)
_MAX_ANSWER = 8 << 20


class PublishedOptions(TargetOptions):
    """Set by the config from a route's ``mcp`` key (see quiver.config.mcp_routes)."""

    source: dict[str, Any] = Field(description="Where the OpenAPI document comes from.")
    include: list[str] | None = Field(None, description="Operations published.")
    exclude: list[str] = Field(default_factory=list, description="Operations not published.")
    base_path: str = Field("", description="Where the document's paths are on the gateway.")
    servers_path: bool = Field(True, description="Follow base_path with the servers' path.")
    name: str = Field(description="The server's name.")
    instructions: str | None = Field(None, description="Guidance for the model.")
    timeout: float = Field(60.0, description="How long a tool call may take, in seconds.")
    session_ttl: float = Field(86400.0, description="How long a session lasts, in seconds.")
    session_secret: str = Field(description="The key sessions are sealed with.")
    resource_metadata: str | None = Field(
        None, description="The URL of the protected-resource metadata, pointed to on 401."
    )
    route: str = Field("", description="The route whose `mcp` key this is.")

    @model_validator(mode="after")
    def _document_now(self) -> PublishedOptions:
        # an inline or file document is read when the config is: its faults are the
        # config's, named with the route (a fetched one is read when first needed)
        try:
            document = self.document()
            if document is not None:
                _operations(document, self)
        except ValueError as error:
            raise ValueError(f"route {self.route!r}, mcp.openapi: {error}") from None
        return self

    def document(self) -> Any:
        """The inline or file document (None: it is fetched)."""
        document = self.source.get("document")
        if document is None and "file" in self.source:
            document = _read_file(self.source["file"])
        return document


class PublishedTools(TargetType[PublishedOptions]):
    """Answers a route's MCP endpoint with the operations of its OpenAPI document."""

    name = OPENAPI_TARGET_TYPE
    Options = PublishedOptions
    listed = False

    def __init__(self, options: PublishedOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        seal = SessionSeal.keyed(options.session_secret, options.session_ttl)
        self.endpoint = Endpoint(self, seal, name=options.name, instructions=options.instructions)
        self._operations: dict[str, Operation] | None = None
        self._base = options.base_path.rstrip("/")
        self._loading = asyncio.Lock()
        document = options.document()
        if document is not None:
            self._publish(document)

    def handle(self, request: PluginRequest) -> Any:
        return self.endpoint.handle(request)

    def error_answer(self, request: PluginRequest, error: HTTPError) -> Answer | None:
        return bearer_challenge(request, error, self.options.resource_metadata)

    # -- the provider of the endpoint --------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        return {"tools": {"listChanged": False}}

    async def list_tools(self, caller: Caller) -> list[dict[str, Any]]:
        operations = await self._ready(caller)
        return [operation.tool() for operation in operations.values()]

    async def call_tool(
        self, caller: Caller, name: str, arguments: dict[str, Any]
    ) -> dict[str, Any]:
        operation = (await self._ready(caller)).get(name)
        if operation is None:
            raise McpError(INVALID_PARAMS, f"unknown tool: {name}")
        try:
            outgoing = build_request(operation, arguments)
        except McpError as error:
            # arguments the model got wrong: a result it can read and correct, not a
            # protocol error (the protocol's advice since 2025-11-25)
            return {"content": [{"type": "text", "text": error.message}], "isError": True}
        fields = forwarded_fields(caller.request)
        fields.update(outgoing.headers)
        if outgoing.content_type is not None:
            fields["Content-Type"] = outgoing.content_type
        path = self._base + outgoing.path + (f"?{outgoing.query}" if outgoing.query else "")
        response = await self._outbound().request(
            outgoing.method,
            f"gateway://{_host(caller.request)}{path}",
            headers=fields,
            body=outgoing.body,
            timeout=self.options.timeout,
        )
        async with response:
            body = await response.read(limit=_MAX_ANSWER)
        caller.note["status"] = response.status
        return tool_result(operation, response.status, response.header("content-type"), body)

    async def list_resources(self, caller: Caller) -> list[dict[str, Any]]:
        return []

    async def list_resource_templates(self, caller: Caller) -> list[dict[str, Any]]:
        return []

    async def read_resource(self, caller: Caller, uri: str) -> dict[str, Any]:
        raise McpError(INVALID_PARAMS, f"unknown resource: {uri}")

    async def list_prompts(self, caller: Caller) -> list[dict[str, Any]]:
        return []

    async def get_prompt(
        self, caller: Caller, name: str, arguments: dict[str, str]
    ) -> dict[str, Any]:
        raise McpError(INVALID_PARAMS, f"unknown prompt: {name}")

    # -- the document --------------------------------------------------------------

    def _publish(self, document: Any) -> None:
        operations = _operations(document, self.options)
        if self.options.servers_path:
            self._base = self.options.base_path.rstrip("/") + _servers_path(document)
        self._operations = {operation.name: operation for operation in operations}

    async def _ready(self, caller: Caller) -> dict[str, Operation]:
        """The operations, the document fetched first when it has not been yet (once
        for the waiting callers; again on the next call when fetching failed)."""
        if self._operations is not None:
            return self._operations
        async with self._loading:
            if self._operations is None:
                source = self.options.source
                try:
                    if "url" in source:
                        text = await self._fetch(source["url"], {})
                    else:
                        host = _host(caller.request)
                        text = await self._fetch(
                            f"gateway://{host}{source['path']}", forwarded_fields(caller.request)
                        )
                    self._publish(_parse(text))
                except (HTTPError, ValueError) as error:
                    detail = error.detail if isinstance(error, HTTPError) else str(error)
                    raise McpError(
                        INTERNAL_ERROR, f"the API's OpenAPI document is unusable: {detail}"
                    ) from error
        assert self._operations is not None
        return self._operations

    async def _fetch(self, url: str, fields: dict[str, str]) -> bytes:
        fields["Accept"] = "application/json, application/yaml;q=0.9"
        response = await self._outbound().request("GET", url, headers=fields, timeout=30)
        async with response:
            body: bytes = await response.read(limit=_MAX_ANSWER)
        if response.status != 200:
            raise ValueError(f"GET {url.split('://', 1)[-1]} answered {response.status}")
        return body

    def _outbound(self) -> Any:
        outbound = self.context.outbound
        if outbound is None:
            raise ServiceUnavailable("no outbound client in this process")
        return outbound


class MetadataOptions(TargetOptions):
    document: dict[str, Any] = Field(description="The protected-resource metadata.")


class ResourceMetadata(TargetType[MetadataOptions]):
    """Serves the OAuth protected-resource metadata of an MCP endpoint (RFC 9728)."""

    name = METADATA_TARGET_TYPE
    Options = MetadataOptions
    listed = False

    def __init__(self, options: MetadataOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        self.body = orjson.dumps(options.document)

    def handle(self, request: PluginRequest) -> Response:
        fields = [(b"Content-Type", b"application/json"), (b"Cache-Control", b"max-age=3600")]
        return Response(200, fields, self.body)


def bearer_challenge(
    request: PluginRequest, error: HTTPError, resource_metadata: str | None
) -> Answer | None:
    """A 401 of an MCP route that is an OAuth resource server, with the Bearer
    challenge naming where its metadata is (RFC 9728 §5.1); None for any other."""
    if resource_metadata is None or error.status_code != 401:
        return None
    challenge = f'Bearer resource_metadata="{resource_metadata}"'.encode()
    fields = (*error.headers, (b"WWW-Authenticate", challenge), (b"Cache-Control", b"no-store"))
    return Answer(
        401,
        headers=fields,
        body=problem_body(error, request.rid.decode("latin-1")),
        content_type=b"application/problem+json",
    )


def forwarded_fields(request: PluginRequest) -> dict[str, str]:
    """The caller's header fields a tool call presents again to the route (its
    credentials among them), and X-Forwarded-For naming the caller."""
    fields: dict[str, str] = {}
    for name, value in request.headers:
        lower = name.lower()
        if lower in _NOT_FORWARDED or lower.startswith(_FORWARD_PREFIXES_REFUSED):
            continue
        fields[name.decode("latin-1")] = value.decode("latin-1")
    previous = request.get(b"x-forwarded-for")
    client = request.client_ip.decode("latin-1")
    fields["X-Forwarded-For"] = f"{previous.decode('latin-1')}, {client}" if previous else client
    return fields


def _host(request: PluginRequest) -> str:
    host = request.get(b"host")
    return host.decode("latin-1") if host else "localhost"


def _operations(document: Any, options: PublishedOptions) -> list[Operation]:
    if not isinstance(document, dict):
        raise ValueError("the OpenAPI document is not an object")
    return tools_from_openapi(document, include=options.include, exclude=options.exclude)


def _servers_path(document: dict[str, Any]) -> str:
    """The path of the document's first server, where its paths are (``""``: none)."""
    servers = document.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return ""
    url = servers[0].get("url")
    if not isinstance(url, str) or "{" in url:
        return ""
    return urlsplit(url).path.rstrip("/")
