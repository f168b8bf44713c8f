"""A route's ``mcp`` key: its API published as MCP tools (docs/mcp.md).

``mcp: {}`` on a route adds an MCP endpoint at ``/mcp`` under the route's path whose
tools are the operations of an OpenAPI document.  Like the AI routes and the
resources, the key compiles into ordinary targets and routes when the declaration
is read (:func:`expand`):

- an in-process target of type ``mcp-openapi`` holding the document's source and
  the choices below;
- a route to it at the endpoint's exact path, carrying the route's gatekeeping
  plugins (authentication, ACL, IP rules, CORS): a client without a key lists
  nothing.  The plugins that count or change each call (rate limits, quotas,
  validation, transformations, caches) are not copied: a tool call is sent through
  the gateway to the route itself, where every one of its plugins applies, once;
- with ``oauth``, a route serving the protected-resource metadata (RFC 9728) at
  ``/.well-known/oauth-protected-resource`` followed by the resource's path (so
  does a target of ``type: mcp`` with ``oauth`` options: :func:`expand_targets`).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml
from pydantic import Field, field_validator, model_validator

from quiver.config.base import Duration, Strict

OPENAPI_TARGET_TYPE = "mcp-openapi"
PROXY_TARGET_TYPE = "mcp"
METADATA_TARGET_TYPE = "mcp-resource-metadata"
MCP_PREFIX = "mcp-"
METADATA_PREFIX = "/.well-known/oauth-protected-resource"

#: plugins that count, check or change each call: they run on the tool call's own
#: request through the route, never on the MCP messages themselves
PER_CALL_PLUGINS = frozenset(
    {
        "rate-limit",
        "quota",
        "concurrency-limit",
        "request-validator",
        "request-transformer",
        "response-transformer",
        "proxy-cache",
        "request-size-limit",
        "ai-cache",
        "ai-prompt-guard",
        "ai-pii",
        "ai-moderation",
        "api-product",  # (put on an API's routes by the data plane: quiver.config.apis)
    }
)


#: the authentication plugins that can remove the credentials from a request
_HIDE_CREDENTIALS = frozenset({"key-auth", "basic-auth", "jwt", "oauth2-introspection"})


class OpenAPISource(Strict):
    """Where the OpenAPI document of the tools comes from: exactly one key."""

    document: dict[str, Any] | None = Field(None, description="The document itself, inline.")
    file: str | None = Field(
        None, description="A JSON or YAML file, relative to the directory the gateway runs in."
    )
    url: str | None = Field(
        None,
        description="Fetched when first needed: an `http(s)://` URL, or `target://NAME/path` "
        "to ask a target of the config directly.",
    )
    path: str | None = Field(
        None,
        description="A path fetched through the gateway itself, e.g. the resources' "
        "`/openapi/resources.json` or a prompt API's `<path>/openapi.json`.",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, value: object) -> object:
        if isinstance(value, str):
            if value.startswith(("http://", "https://", "target://")):
                return {"url": value}
            return {"file": value}
        if isinstance(value, dict) and "openapi" in value:
            return {"document": value}
        return value

    @model_validator(mode="after")
    def _one(self) -> OpenAPISource:
        given = [name for name in ("document", "file", "url", "path") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of document, file, url or path")
        if self.url is not None and not self.url.startswith(("http://", "https://", "target://")):
            raise ValueError("url must start with http://, https:// or target://")
        if self.path is not None and not self.path.startswith("/"):
            raise ValueError("path must start with '/'")
        return self


class McpOAuth(Strict):
    """The endpoint as an OAuth 2.1 resource server (RFC 9728 metadata)."""

    resource: str = Field(
        description="The endpoint's canonical URL as clients reach it, e.g. "
        "`https://api.example.com/notes/mcp`: the audience its tokens must name."
    )
    authorization_servers: list[str] = Field(
        min_length=1,
        description="Issuer URLs of the authorization servers clients get tokens from.",
    )
    scopes_supported: list[str] = Field(
        default_factory=list, description="Scopes a client may ask for."
    )
    resource_name: str | None = Field(None, description="A name for people to read.")
    resource_documentation: str | None = Field(None, description="A page about the API.")

    @field_validator("resource", "authorization_servers")
    @classmethod
    def _urls(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            if not url.startswith(("https://", "http://")) or "#" in url:
                raise ValueError(f"{url!r} is not an http(s) URL without a fragment")
        return value


class McpEndpointSettings(Strict):
    """What any MCP endpoint says of itself, how it seals the sessions of the handshake
    revision, and whether it is an OAuth resource server (a route's ``mcp``, the
    options of a target of ``type: mcp``)."""

    instructions: str | None = Field(None, description="Guidance for the model using the tools.")
    session_ttl: Duration = Field(
        86400.0, description="How long a session of the handshake revision (2025-11-25) lasts."
    )
    session_secret: str | None = Field(
        None,
        description="The key sessions are sealed with (use `${ENV}`); by default one "
        "derived from the config, the same on every node serving it.",
    )
    oauth: McpOAuth | None = Field(
        None,
        description="The endpoint as an OAuth 2.1 resource server: its protected-resource "
        "metadata (RFC 9728) served at `/.well-known/oauth-protected-resource` followed "
        "by the resource's path, and named in the challenge of a 401.",
    )


class McpRoute(McpEndpointSettings):
    """The route's API as MCP tools: ``mcp: {}`` takes the target's `/openapi.json`."""

    path: str = Field("/mcp", description="Where the endpoint is, under the route's first path.")
    openapi: OpenAPISource | None = Field(
        None,
        description="The OpenAPI 3.0/3.1 document whose operations are the tools: inline, "
        "a file, a URL or a gateway path; by default `/openapi.json` of the route's target.",
    )
    include: list[str] | None = Field(
        None,
        description="Operations to publish (all when unset): tool names, operationIds or "
        "`METHOD /path`, `*` as a wildcard.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Operations not to publish (same forms as include)."
    )
    base_path: str | None = Field(
        None,
        description="Where the document's paths are on the gateway; by default the route's "
        "path when it has `strip_path`, followed by the path of the document's first server.",
    )
    name: str | None = Field(None, description="The server's name (the route's by default).")
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="More plugins on the MCP messages themselves (e.g. a rate limit on "
        "every message rather than on tool calls).",
    )
    timeout: Duration = Field(60.0, description="How long a tool call may take.")

    @field_validator("path", "base_path")
    @classmethod
    def _slash(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value


def route_prefix(paths: list[str]) -> str | None:
    """The literal path an MCP endpoint goes under: the route's first path that is
    not a regex."""
    for path in paths:
        if path[:1] == "~":
            continue
        return (path[1:] if path[:1] == "=" else path).rstrip("/")
    return None


def endpoint_path(route: Any) -> str:
    """Where the MCP endpoint of ``route`` is."""
    prefix = route_prefix(route.paths)
    if prefix is None:
        raise ValueError(f"route {route.name!r}: mcp needs a path that is not a regex")
    path: str = route.mcp.path
    return prefix + path


def expand(routes: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The targets and routes (plain data) the routes' ``mcp`` keys compile into."""
    targets: list[dict[str, Any]] = []
    generated: list[dict[str, Any]] = []
    for route in routes:
        mcp: McpRoute | None = route.mcp
        if mcp is None:
            continue
        path = endpoint_path(route)
        name = MCP_PREFIX + route.name
        source = mcp.openapi
        if source is None:
            if route.target is None:
                raise ValueError(f"route {route.name!r}: mcp without a target needs `openapi`")
            source = OpenAPISource(url=f"target://{route.target}/openapi.json")
        base_path = mcp.base_path
        if base_path is None:
            prefix = route_prefix(route.paths) or ""
            base_path = prefix if route.strip_path else ""
        secret = (
            mcp.session_secret
            or hashlib.sha256(repr((route.name, path, sorted(route.plugins))).encode()).hexdigest()
        )
        targets.append(
            {
                "name": name,
                "type": OPENAPI_TARGET_TYPE,
                "options": {
                    "source": source.model_dump(exclude_none=True),
                    "include": mcp.include,
                    "exclude": mcp.exclude,
                    "base_path": base_path,
                    "servers_path": mcp.base_path is None,
                    "name": mcp.name or route.name,
                    "instructions": mcp.instructions,
                    "timeout": mcp.timeout,
                    "session_ttl": mcp.session_ttl,
                    "session_secret": secret,
                    "resource_metadata": metadata_url(mcp.oauth),
                    "route": route.name,
                },
            }
        )
        gate = {
            plugin: _gatekeeping(plugin, config)
            for plugin, config in route.plugins.items()
            if plugin not in PER_CALL_PLUGINS
        }
        generated.append(
            {
                "name": name,
                "paths": ["=" + path],
                "hosts": route.hosts,
                "priority": route.priority + 1,
                "plugins": {**gate, **mcp.plugins},
                "target": name,
                "call_log": route.call_log,
            }
        )
        if mcp.oauth is not None:
            _check_audience(route, mcp.oauth)
            metadata_target, metadata_route = metadata_entries(name, mcp.oauth, route.hosts)
            targets.append(metadata_target)
            generated.append(metadata_route)
    return targets, generated


def metadata_path(oauth: McpOAuth) -> str:
    """Where the metadata of ``oauth.resource`` is on the gateway: the well-known
    prefix, then the resource's path (RFC 9728 §3.1)."""
    return METADATA_PREFIX + urlsplit(oauth.resource).path.rstrip("/")


def metadata_url(oauth: McpOAuth | None) -> str | None:
    """Where clients find the metadata: the resource's origin and :func:`metadata_path`."""
    if oauth is None:
        return None
    parts = urlsplit(oauth.resource)
    return f"{parts.scheme}://{parts.netloc}{metadata_path(oauth)}"


def metadata_entries(
    name: str, oauth: McpOAuth, hosts: list[str] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The target and route serving the protected-resource metadata of ``oauth``."""
    document: dict[str, Any] = {
        "resource": oauth.resource,
        "authorization_servers": oauth.authorization_servers,
        "bearer_methods_supported": ["header"],
    }
    for key in ("scopes_supported", "resource_name", "resource_documentation"):
        value = getattr(oauth, key)
        if value:
            document[key] = value
    metadata = name + "-resource"
    target = {"name": metadata, "type": METADATA_TARGET_TYPE, "options": {"document": document}}
    route = {
        "name": metadata,
        "paths": ["=" + metadata_path(oauth)],
        "hosts": hosts,
        "target": metadata,
    }
    return target, route


def expand_targets(
    targets: list[Any], routes: list[Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The metadata targets and routes of the ``mcp`` targets with ``oauth`` options:
    one per target, on the hosts of the routes to it."""
    made_targets: list[dict[str, Any]] = []
    made_routes: list[dict[str, Any]] = []
    for target in targets:
        if target.type != PROXY_TARGET_TYPE or not isinstance(target.options.get("oauth"), dict):
            continue
        try:
            oauth = McpOAuth.model_validate(target.options["oauth"])
        except ValueError as error:
            raise ValueError(f"target {target.name!r}: options.oauth: {error}") from None
        hosts = [route.hosts for route in routes if route.target == target.name]
        shared = hosts[0] if hosts and all(each == hosts[0] for each in hosts) else None
        metadata_target, metadata_route = metadata_entries(MCP_PREFIX + target.name, oauth, shared)
        made_targets.append(metadata_target)
        made_routes.append(metadata_route)
    return made_targets, made_routes


def _gatekeeping(plugin: str, config: dict[str, Any]) -> dict[str, Any]:
    """A gatekeeping plugin's config on the MCP route: credentials kept (the tool call
    presents them again to the route)."""
    config = dict(config)
    if plugin in _HIDE_CREDENTIALS:
        config["hide_credentials"] = False
    return config


def _check_audience(route: Any, oauth: McpOAuth) -> None:
    """A route whose ``jwt`` takes the MCP clients' tokens must name the resource among
    its audiences: a token issued for it is refused by any other audience (RFC 7519
    §4.1.3), and a tool call presents it to the route again."""
    jwt = route.plugins.get("jwt")
    if jwt is None:
        return
    audiences = jwt.get("audiences") or []
    if not isinstance(audiences, list):
        return  # (another shape: the plugin's own check names it)
    if oauth.resource not in audiences:
        raise ValueError(
            f"route {route.name!r}: plugins.jwt.audiences must include mcp.oauth.resource "
            f"({oauth.resource!r}): MCP clients' tokens are issued for it, and each tool "
            "call presents the token to the route"
        )


def read_openapi_file(path: str) -> Any:
    """The OpenAPI document in the JSON or YAML file at ``path`` (ValueError says why not)."""
    try:
        with open(os.path.expanduser(path), "rb") as file:
            return parse_openapi(file.read())
    except OSError as error:
        raise ValueError(f"cannot read the OpenAPI document {path!r}: {error.strerror}") from None


def parse_openapi(text: bytes) -> Any:
    """A document read as JSON, or else as YAML (ValueError when neither)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"the OpenAPI document is neither JSON nor YAML: {error}") from None
