"""The declarative config as pydantic models.

Every model rejects unknown keys and is frozen once validated; every field carries
a description because the docs are generated from them.  Durations accept a
number of seconds or a string such as ``"250ms"``, ``"5s"``, ``"2m"``; sizes accept
a number of bytes or ``"64k"``, ``"10MB"``, ``"1GiB"``.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from quiver.config.access_log import AccessLog
from quiver.config.ai import AIConfig, AIRoute, expand
from quiver.config.apis import Api
from quiver.config.base import Duration, Size, Strict
from quiver.config.consumers import Consumer
from quiver.config.mcp_routes import PROXY_TARGET_TYPE as MCP_TARGET_TYPE
from quiver.config.mcp_routes import McpRoute
from quiver.config.mcp_routes import expand as expand_mcp
from quiver.config.mcp_routes import expand_targets as expand_mcp_targets
from quiver.config.resilience import Balance, CircuitBreaker, HealthCheck, Retries
from quiver.config.resources import DEFAULT_DATABASE, MigrateMode, Resource, resource_issues
from quiver.config.resources import expand as expand_resources
from quiver.config.tracing import Tracing
from quiver.config.upstream import NAME_PATTERN as NAME_PATTERN
from quiver.config.upstream import Pool as Pool
from quiver.config.upstream import Timeouts as Timeouts
from quiver.config.upstream import check_target_url as check_target_url
from quiver.config.webhooks import WebhookSettings

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class TlsCertificate(Strict):
    cert: str = Field(description="Path to a PEM certificate chain (leaf first).")
    key: str = Field(description="Path to the PEM private key of the certificate.")


class ListenTls(Strict):
    certificates: list[TlsCertificate] = Field(
        min_length=1,
        description="Certificates offered to clients; chosen by SNI, the first is the default.",
    )
    min_version: Literal["1.2", "1.3"] = Field("1.2", description="Lowest TLS version accepted.")


class Listen(Strict):
    address: str = Field(description="host:port to accept connections on, e.g. 127.0.0.1:8080.")
    tls: ListenTls | None = Field(None, description="Terminate TLS on this address.")

    @field_validator("address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        split_address(value)
        return value


def split_address(value: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[::1]:port"`` into its parts; ValueError names the problem."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Limits(Strict):
    max_request_line: Size = Field(8192, gt=0, description="Longest request line (414 beyond).")
    max_header_size: Size = Field(
        32768, gt=0, description="Largest header block in bytes (431 beyond)."
    )
    max_headers: int = Field(100, gt=0, description="Most header fields in a request (431 beyond).")
    max_body_size: Size | None = Field(
        None, description="Largest request body in bytes (413 beyond); unset means unlimited."
    )
    max_buffered_body: Size = Field(
        1 << 20,
        gt=0,
        description="Largest request body held in memory for plugins that read whole "
        "bodies (request-validator, request-transformer with JSON edits); 413 beyond. "
        "Other routes stream bodies of any size. Also the largest JSON response body "
        "response-transformer edits (larger ones go on unedited).",
    )
    underscores_in_headers: bool = Field(
        False,
        description='Forward request header names containing "_"; by default they are '
        "dropped, as nginx does, because some servers read them as the same name with "
        '"-" (X_Forwarded_For as X-Forwarded-For). Even when on, names that would read as '
        "a field the proxy manages (Transfer_Encoding, X_Consumer_ID) are dropped.",
    )
    header_timeout: Duration = Field(
        10.0, gt=0, description="Time a client has to send a complete request head (408)."
    )
    body_timeout: Duration = Field(
        60.0, gt=0, description="Longest pause between two reads of a request body (408)."
    )
    min_body_rate: Size = Field(
        1024,
        ge=0,
        description="Slowest request body accepted, in bytes per second (408 below): a body "
        "is due body_timeout after it begins plus one second per min_body_rate bytes "
        "received. Time the proxy itself holds the body back does not count; 0 turns "
        "it off.",
    )
    idle_timeout: Duration = Field(
        60.0, gt=0, description="Idle keep-alive client connections are closed after this."
    )
    send_timeout: Duration = Field(
        60.0, gt=0, description="Longest stall writing a response to a client that stopped reading."
    )


class Node(Strict):
    url: str = Field(description="http:// or https:// URL of one server of the target.")
    weight: int = Field(1, ge=0, le=1000, description="Share of traffic relative to other nodes.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        check_target_url(value)
        return value


class Target(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Unique name routes refer to.")
    type: str = Field(
        "http",
        pattern=NAME_PATTERN,
        description='How its routes are answered: "http" forwards to the nodes; other '
        'types answer inside the gateway, such as the built-in "demo".',
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Settings of an in-process target type."
    )
    url: str | None = Field(None, description="URL of a single-node target (base path allowed).")
    nodes: list[Node] | None = Field(
        None, min_length=1, description="Several nodes sharing the traffic by weight."
    )
    timeouts: Timeouts | None = Field(None, description="Overrides the global upstream timeouts.")
    pool: Pool | None = Field(None, description="Overrides the global connection pool settings.")
    tls_verify: bool = Field(
        True, description="Verify https:// nodes against the CA store (false logs a warning)."
    )
    tls_ca_file: str | None = Field(None, description="PEM CA bundle used instead of the system's.")
    tls_client_cert: str | None = Field(
        None, description="PEM client certificate presented to the node (mutual TLS)."
    )
    tls_client_key: str | None = Field(None, description="Key of tls_client_cert.")
    tls_server_name: str | None = Field(
        None, description="SNI and verified name; defaults to the node's host."
    )
    balance: Balance = Field(
        default_factory=Balance,
        description='How requests are spread over the nodes; "least_conn" is short for '
        "{algorithm: least_conn}.",
    )
    health_check: HealthCheck | None = Field(
        None, description="Active probes and/or passive ejection of failing nodes."
    )
    retries: Retries | None = Field(
        default_factory=Retries,
        description="Retrying failed requests; null turns retries off. Routes may override.",
    )
    circuit_breaker: CircuitBreaker | None = Field(
        None, description="Per-node breaker on the failure rate; off when unset."
    )
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Plugins by name with their config (see `quiver plugins`); they "
        "override the global ones for the target's routes.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            check_target_url(value)
        return value

    @field_validator("balance", mode="before")
    @classmethod
    def _balance_shorthand(cls, value: object) -> object:
        return {"algorithm": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_of_url_nodes(self) -> Target:
        if self.type != "http":
            if self.url is not None or self.nodes is not None:
                raise ValueError(f"a target of type {self.type!r} has no 'url' or 'nodes'")
            return self
        if self.options:
            raise ValueError("'options' are for in-process target types, not 'http'")
        if (self.url is None) == (self.nodes is None):
            raise ValueError("give exactly one of 'url' or 'nodes'")
        if self.tls_client_key and not self.tls_client_cert:
            raise ValueError("'tls_client_key' needs 'tls_client_cert'")
        if self.nodes is not None and not any(node.weight for node in self.nodes):
            raise ValueError("at least one node needs a weight above 0")
        return self

    @property
    def node_list(self) -> list[Node]:
        if self.nodes is not None:
            return self.nodes
        return [Node(url=self.url)] if self.url is not None else []


class RedirectRule(Strict):
    from_: str = Field(
        alias="from",
        min_length=1,
        description="Start of a Location, Content-Location or cookie path as the node sends it.",
    )
    to: str = Field(description="What replaces it for the client.")


#: header fields whose values a captured call never keeps, whatever the route says
ALWAYS_REDACTED = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "apikey",
    "x-api-key",
)


class RouteCallLog(Strict):
    """What the call log keeps of a route's exchanges beyond the call itself."""

    bodies: bool = Field(
        False,
        description="Keep each call's request and response header fields and bodies (cut "
        "at `max_body`), shown by `GET /calls/{request_id}`; never without this.",
    )
    max_body: Size = Field(
        4096,
        description='Most bytes kept of each body ("4KB"); the call says how long it was.',
    )
    redact_headers: list[str] = Field(
        default_factory=list,
        description="More header fields whose values are kept as `[redacted]`, beside "
        "authorization, proxy-authorization, cookie, set-cookie, apikey and x-api-key.",
    )

    @field_validator("redact_headers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"not a header field name: {name!r}")
        return [name.lower() for name in value]


class RouteSSE(Strict):
    """How the route treats server-sent event streams (`text/event-stream` responses)."""

    heartbeat: Duration | None = Field(
        None,
        gt=0,
        description='Send the client a comment line (": keep-alive") when an event stream '
        'has been silent this long ("15s"), between events only, so that idle-timing '
        "intermediaries keep the connection; none when unset. The node's own silence is "
        "still bounded by the target's `timeouts.read`.",
    )


class RouteWebSocket(Strict):
    """How the route treats WebSocket connections (an `Upgrade: websocket` the node
    accepted).  With any of `max_message_size`, `idle_timeout` or `message_rate` the
    proxy reads the frames' headers (RFC 6455 §5.2) both ways to enforce them; with
    none, bytes pass untouched as in any upgrade tunnel."""

    max_message_size: Size | None = Field(
        None,
        gt=0,
        description="Largest message either side may send, all its fragments together "
        '("1MiB"); a larger one closes the connection with 1009 (Message Too Big) to both '
        "sides. Compressed (permessage-deflate) messages count as sent, compressed.",
    )
    idle_timeout: Duration | None = Field(
        None,
        gt=0,
        description="Close the connection with 1001 (Going Away) to both sides when no "
        'frame went either way for this long ("60s"); pings count as frames. Unset: the '
        "target's `timeouts.tunnel_idle` is the limit.",
    )
    message_rate: float | None = Field(
        None,
        gt=0,
        description="Messages per second the client may send on one connection (a token "
        "bucket holding `message_burst`); more closes it with 1008 (Policy Violation). "
        "Control frames (ping, pong, close) are not counted.",
    )
    message_burst: int | None = Field(
        None,
        ge=1,
        description="Messages the client may send at once before `message_rate` applies "
        "(the bucket's size); `message_rate` rounded up when unset.",
    )
    drain_timeout: Duration = Field(
        30.0,
        ge=0,
        description="How long an open connection of this route lives on when the route is "
        "removed or sent to another target by a reload, or when the worker drains on "
        "SIGTERM (bounded by the top-level `drain_timeout`); then "
        "it is sent 1001 (Going Away) both ways, or, without frame limits, its TCP "
        "connections are closed.",
    )

    @model_validator(mode="after")
    def _burst_with_rate(self) -> RouteWebSocket:
        if self.message_burst is not None and self.message_rate is None:
            raise ValueError("message_burst applies with message_rate; set message_rate")
        return self

    @property
    def frame_aware(self) -> bool:
        """Whether frames are read: some limit needs them."""
        return (
            self.max_message_size is not None
            or self.idle_timeout is not None
            or self.message_rate is not None
        )


class Route(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Unique name of the route.")
    paths: list[str] = Field(
        min_length=1,
        description=(
            'Path patterns: "/items" matches that prefix on segment boundaries; "=/items" '
            'only that exact path; "{id}" captures one segment; "~^/v[0-9]+/" is a regex.'
        ),
    )
    methods: list[str] | None = Field(None, description="HTTP methods accepted; all when unset.")
    hosts: list[str] | None = Field(
        None, description='Host names accepted, "*.example.com" wildcards allowed; any when unset.'
    )
    headers: dict[str, list[str]] | None = Field(
        None,
        description='Headers that must be present with one of the values ("~regex" allowed).',
    )
    priority: int = Field(0, description="Higher wins over any other ordering rule.")
    strip_path: bool = Field(False, description="Remove the matched prefix before forwarding.")
    rewrite: str | None = Field(
        None,
        description='Upstream path template, e.g. "/v2/users/{id}", filled from captured params.',
    )
    preserve_host: bool = Field(
        False, description="Forward the client's Host header instead of the node's."
    )
    redirects: Literal["auto", "off"] | list[RedirectRule] = Field(
        "auto",
        description='Rewriting of Location, Content-Location and Set-Cookie paths: "auto" '
        "maps the node's own URLs and prefixes back to the client's; a list of {from, to} "
        'rules replaces that; "off" leaves them as sent.',
    )
    retries: Retries | None = Field(
        None, description="Overrides the target's retries for this route when set."
    )
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Plugins by name with their config (see `quiver plugins`); they "
        "override the target's and the global ones.",
    )
    target: str | None = Field(
        None,
        description="Name of the target requests are forwarded to; AI routes (`ai`) have none.",
    )
    call_log: RouteCallLog | None = Field(
        None,
        description="What the call log keeps of this route's exchanges beyond the call: "
        "`{bodies: true}` keeps header fields and bodies (see docs/observability.md).",
    )
    sse: RouteSSE | None = Field(
        None,
        description="Settings for the server-sent event streams this route relays, e.g. "
        "`{heartbeat: 15s}` (see docs/proxy.md); event streams are relayed event by "
        "event with or without it.",
    )
    websocket: RouteWebSocket | None = Field(
        None,
        description="Limits and drain for the WebSocket connections this route relays, "
        "e.g. `{max_message_size: 1MiB, idle_timeout: 60s, message_rate: 100}` (see "
        "docs/websocket.md); without it an upgrade is a tunnel of untouched bytes.",
    )
    ai: AIRoute | None = Field(
        None,
        description="Serve the AI APIs (OpenAI chat, responses, embeddings, models; "
        "Anthropic messages) for the models of the top-level `ai` section under the "
        "route's paths, e.g. `ai: {}` or `ai: {models: [gpt-4o-mini]}`; the route then "
        "has no `target` (see docs/ai.md).",
    )

    mcp: McpRoute | None = Field(
        None,
        description="Publish the route's API as MCP tools at `/mcp` under its path, e.g. "
        "`mcp: {}` or `mcp: {openapi: openapi.yaml, exclude: [deleteNote]}`; a route "
        "with `mcp` and no `target` publishes only that endpoint (see docs/mcp.md).",
    )

    @model_validator(mode="after")
    def _target_or_ai(self) -> Route:
        if self.target is not None and self.ai is not None:
            raise ValueError("give exactly one of 'target' or 'ai'")
        if self.target is None and self.ai is None and self.mcp is None:
            raise ValueError("give exactly one of 'target' or 'ai' (or 'mcp' alone)")
        if self.ai is not None and self.mcp is not None:
            raise ValueError("an AI route cannot have 'mcp'")
        return self

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            literal = path[1:] if path[:1] == "=" else path
            if path[:1] == "~":
                try:
                    re.compile(path[1:])
                except re.error as exc:
                    raise ValueError(f"bad regex {path!r}: {exc}") from exc
            elif not literal.startswith("/"):
                raise ValueError(f"path must start with '/', '=/' or '~': {path!r}")
        return value

    @field_validator("methods")
    @classmethod
    def _methods(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for method in value:
            if not _TOKEN.fullmatch(method):
                raise ValueError(f"not an HTTP method: {method!r}")
        return [method.upper() for method in value]

    @field_validator("headers", mode="before")
    @classmethod
    def _header_values(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value


class CallLogSettings(Strict):
    """The call log: what the workers spool and what the admin API keeps of it
    (docs/observability.md, "Call log and analytics").  It runs wherever the admin
    API does (always in store mode); request and response bodies are kept only for
    the routes that ask (`routes[].call_log`)."""

    enabled: bool = Field(
        True,
        description="Workers write every exchange to the call spools for the admin API "
        "to ingest; `false`: no call log (the workers make no records for it).",
    )
    spool_size: Size = Field(
        16 * 2**20,
        ge=1,
        description="A worker finishes its spool file (for the admin API to ingest) at "
        'this size ("16MB"), every second when it holds any call, and when it stops.',
    )
    queue: int = Field(
        10000,
        ge=1,
        description="Records a worker holds for its writer thread, at most (with an "
        "access log, the larger of the two queues); beyond, records are dropped and "
        "counted (requests never wait).",
    )
    retention: Duration = Field(
        7 * 86400.0, description="Calls older than this are deleted (e.g. `7d`)."
    )
    max_rows: int = Field(
        1_000_000, ge=1, description="At most this many calls are kept; the oldest go first."
    )
    rollup_retention: Duration = Field(
        90 * 86400.0,
        description="Per-minute and hourly sums older than this are deleted (e.g. `90d`); "
        "they outlive the calls, so analytics reach further back than `quiver logs`.",
    )


class MetricsSettings(Strict):
    """What ``GET /metrics`` on the admin port serves (docs/observability.md, "Metrics").
    Node health, breakers, pools, reloads and workers are always there; the request
    counters cost CPU on every request, so they are counted only when asked for."""

    requests: bool = Field(
        False,
        description="Count requests, latencies, retries, plugin rejections and cache "
        "results by route (and upstream latency by target) in every worker, off the "
        "records of the exchanges, on the worker's record writer thread.",
    )
    public: bool = Field(
        False,
        description="Serve `GET /metrics` without an admin token (for a scraper that "
        "cannot send `Authorization: Bearer`); every other admin call still needs one.",
    )


class PortalSettings(Strict):
    """The developer portal the admin API serves (docs/portal.md)."""

    gateway_url: str | None = Field(
        None,
        description='Where the portal\'s "Try it" sends requests: the gateway as the admin '
        "process reaches it, e.g. `https://api.example.com`. By default the proxy's "
        "`listen` address (a plain one before one with TLS; its bound port when it says "
        "port 0; a wildcard host reached on loopback).",
    )

    @field_validator("gateway_url")
    @classmethod
    def _gateway_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL with a host, got {value!r}")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(
                f"{value!r}: the gateway's URL takes no query, fragment or user; requests "
                "add the path of the operation tried to it"
            )
        return value.rstrip("/")


class Settings(Strict):
    """How the gateway process runs: read when it starts (a reload warns that changes
    take effect on restart only)."""

    listen: list[Listen] = Field(
        default_factory=lambda: [Listen(address="127.0.0.1:8080")],
        description='Addresses the proxy accepts on: "host:port" or mappings with TLS.',
    )
    workers: int | Literal["auto"] = Field(
        1, description='Worker processes sharing the port; "auto" is one per CPU.'
    )
    run_dir: str | None = Field(
        None,
        description="Where workers write their status for `quiver status` (`--run-dir` "
        "overrides it); by default a directory named after the first listen address.",
    )
    watch: bool = Field(False, description="Reload when the config file changes, as on SIGHUP.")
    drain_timeout: Duration = Field(
        10.0,
        description="On SIGTERM or SIGINT, how long requests in flight may take to finish "
        "before their connections are closed; read at start (a change needs a restart).",
    )
    store: str = Field(
        "quiver.db",
        description="The config store (`--store` overrides it): a SQLite file path "
        "(relative to the working directory), `sqlite:///PATH` or "
        "`postgresql://USER@HOST/DB`. In store mode it holds the declaration; in file "
        "mode only the admin API's tokens. See docs/store-mode.md.",
    )
    admin_listen: str = Field(
        "127.0.0.1:8081",
        description="host:port of the admin API (`--admin-listen` overrides it). Store "
        "mode always runs it; file mode only when this key is written or "
        "`--admin-listen` is given. An address other machines can reach needs `admin_tls`.",
    )
    admin_tls: TlsCertificate | None = Field(
        None,
        description="Serve the admin API over HTTPS with this certificate and key; "
        "required when `admin_listen` is not a loopback address, so that tokens never "
        "cross a network in clear text.",
    )
    call_log: CallLogSettings = Field(
        default_factory=CallLogSettings,
        description="The call log the admin API ingests from the workers' spools "
        "(`<run_dir>/calls/`) and serves as `/calls` and `/analytics`.",
    )
    webhooks: WebhookSettings = Field(
        default_factory=WebhookSettings,
        description="Endpoints Quiver posts its events to, and how it retries; the "
        "admin API's process delivers them. See docs/webhooks.md.",
    )
    access_log: AccessLog | None = Field(
        None,
        description="One line per exchange to stdout, stderr, syslog or a file "
        "(`--access-log` sets `to`); none when absent. See docs/observability.md.",
    )
    metrics: MetricsSettings = Field(
        default_factory=MetricsSettings,
        description="Prometheus metrics of the node on the admin API's `GET /metrics`.",
    )
    tracing: Tracing | None = Field(
        None,
        description="W3C trace context on every request and OpenTelemetry spans for a "
        "sample, exported over OTLP; none when absent. See docs/observability.md.",
    )
    portal: PortalSettings = Field(
        default_factory=PortalSettings,
        description='The developer portal\'s settings: where its "Try it" reaches the '
        "gateway. See docs/portal.md.",
    )

    @field_validator("listen", mode="before")
    @classmethod
    def _listen_forms(cls, value: object) -> object:
        items = value if isinstance(value, list) else [value]
        return [{"address": item} if isinstance(item, str) else item for item in items]

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("workers must be at least 1 or 'auto'")
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        check_store_url(value)
        return value

    @field_validator("admin_listen")
    @classmethod
    def _admin_listen(cls, value: str) -> str:
        split_address(value)
        return value


STORE_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")


def check_store_url(value: str) -> None:
    """A store is a SQLite path or a ``sqlite://`` / ``postgresql://`` URL; ValueError
    names what is wrong with any other."""
    if not value.strip():
        raise ValueError("expected a SQLite file path or a postgresql:// URL, got ''")
    scheme, sep, rest = value.partition("://")
    if not sep:
        return  # a file path
    if scheme.lower() not in STORE_SCHEMES:
        raise ValueError(
            f"expected a SQLite file path, sqlite:///PATH or postgresql://USER@HOST/DB, "
            f"got a {scheme}:// URL"
        )
    if scheme.lower() == "sqlite" and not rest.startswith("/"):
        raise ValueError("a sqlite URL names its file after three slashes: sqlite:///PATH")


class Declaration(Strict):
    """What the gateway serves: targets, routes, consumers, plugins and limits.  A
    reload applies it to running workers without dropping a request."""

    limits: Limits = Field(default_factory=Limits, description="Client-side limits and timeouts.")
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Default upstream timeouts.")
    pool: Pool = Field(default_factory=Pool, description="Default upstream connection pool.")
    targets: list[Target] = Field(default_factory=list, description="Upstream APIs.")
    routes: list[Route] = Field(default_factory=list, description="How requests reach targets.")
    consumers: list[Consumer] = Field(
        default_factory=list, description="Callers of the APIs and their credentials."
    )
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Plugins by name with their config (see `quiver plugins`); they "
        "apply to every route.",
    )
    apis: list[Api] = Field(
        default_factory=list,
        description="API products: routes grouped with a lifecycle state, an OpenAPI "
        "document and plans consumers subscribe to (see docs/apis.md).",
    )
    ai: AIConfig | None = Field(
        None,
        description="Model providers and the models AI routes serve (see docs/ai.md).",
    )
    resources: list[Resource] = Field(
        default_factory=list,
        description="REST resources the gateway stores and serves itself: fields as JSON "
        "Schema, required, unique, timestamps, limit, parent (see docs/resources.md).",
    )
    resources_db: str | None = Field(
        None,
        description="Where resources are stored: a SQLite file or a PostgreSQL URL "
        "(`postgresql://USER@HOST/DB`); when unset `resources.db` in the directory the "
        "gateway runs in, or in store mode beside the store (see docs/resources.md).",
    )
    resources_migrate: MigrateMode = Field(
        "safe",
        description="Changes of the declared resources applied at start: `safe` applies "
        "those that keep every value and refuses the others (quiver does not start); "
        "`force` applies those too, rebuilding the tables and dropping what cannot be "
        "kept (see docs/resources.md, Migrations).",
    )

    @model_validator(mode="after")
    def _ai_targets(self) -> Declaration:
        # AI routes and providers become ordinary targets here, so that everything
        # reading a config (the data plane, `quiver check`, reloads) sees routes with
        # targets; the declaration as written (and stored) keeps only the `ai` keys.
        if self.ai is None and not any(route.ai is not None for route in self.routes):
            return self
        ai = self.ai or AIConfig()
        targets, routes = expand(ai, self.routes, self.plugins, self.timeouts.read)
        generated = {target["name"] for target in targets}
        kept = [target for target in self.targets if target.name not in generated]
        object.__setattr__(self, "targets", [*kept, *map(Target.model_validate, targets)])
        object.__setattr__(self, "routes", routes)
        return self

    @model_validator(mode="after")
    def _resource_targets(self) -> Declaration:
        # like AI routes: each resource becomes an in-process target and its route
        if not self.resources:
            return self
        issues = resource_issues(self.resources)
        if issues:
            raise ValueError("; ".join(issues))
        targets, routes = expand_resources(
            self.resources, self.resources_db or DEFAULT_DATABASE, self.resources_migrate
        )
        generated = {target["name"] for target in targets}
        kept = [target for target in self.targets if target.name not in generated]
        kept_routes = [route for route in self.routes if route.name not in generated]
        object.__setattr__(self, "targets", [*kept, *map(Target.model_validate, targets)])
        object.__setattr__(self, "routes", [*kept_routes, *map(Route.model_validate, routes)])
        return self

    @model_validator(mode="after")
    def _mcp_targets(self) -> Declaration:
        # like AI routes: a route's `mcp` becomes an in-process target and its route;
        # a route with `mcp` and no target exists only as that endpoint
        if not any(route.mcp is not None for route in self.routes) and not any(
            target.type == MCP_TARGET_TYPE for target in self.targets
        ):
            return self
        targets, routes = expand_mcp(self.routes)
        more_targets, more_routes = expand_mcp_targets(self.targets, self.routes)
        targets += more_targets
        routes += more_routes
        generated = {target["name"] for target in targets}
        kept = [target for target in self.targets if target.name not in generated]
        kept_routes = [
            route
            for route in self.routes
            if route.name not in generated and (route.target is not None or route.ai is not None)
        ]
        object.__setattr__(self, "targets", [*kept, *map(Target.model_validate, targets)])
        object.__setattr__(self, "routes", [*kept_routes, *map(Route.model_validate, routes)])
        return self


class Config(Declaration, Settings):
    """A whole config file: its :class:`Settings` and its :class:`Declaration`, written
    side by side at the top level."""

    @property
    def settings(self) -> Settings:
        return Settings.model_construct(**{name: getattr(self, name) for name in _SETTINGS})

    @property
    def declaration(self) -> Declaration:
        return Declaration.model_construct(**{name: getattr(self, name) for name in _DECLARATION})


_SETTINGS = tuple(Settings.model_fields)
_DECLARATION = tuple(Declaration.model_fields)
