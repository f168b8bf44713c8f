"""The plugin contract.

A plugin is a small class with declared metadata and only the phases it needs::

    class RequireHeader(Plugin["RequireHeader.Config"]):
        name = "require-header"
        priority = 2500

        class Config(PluginConfig):
            header: str = Field(description="Header every request must carry.")

        def access(self, request: PluginRequest) -> None:
            if request.get(self.config.header.lower().encode()) is None:
                raise BadRequest(f"missing {self.config.header} header")

Phases, in the order a request meets them:

- ``access(request)`` before the request goes upstream; raise a typed
  ``HTTPError`` to stop it; may return an awaitable when it has to wait (e.g.
  for a token introspection endpoint).
- ``response_headers(request, response)`` once the node's response head is in;
  ``response`` is a ``ResponseHead`` to read and change.
- ``response_body(request, chunk, last) -> bytes`` for each piece of the response
  body as it streams (decoded from any chunked framing), and once more with
  ``last=True`` (and possibly ``chunk == b""``) at its end; it returns what to send
  in place of ``chunk``, ``b""`` to hold it back.  A route with such a plugin sends
  its response bodies chunked (close-delimited to an HTTP/1.0 client), since their
  length may change.  Per-request state goes in ``request.ctx``.
- ``log(request)`` once the exchange is over (``request.status`` says how it
  ended), scheduled off the hot path; an exception there is logged, never raised.

A plugin that needs the whole request body sets ``reads_body = True`` (on the class
or, when that depends on its config, on the instance in ``__init__``).  On such a
route the plugins above the first body reader run as soon as the head is in (an
authentication plugin refuses a request before its body is read); the rest run once
the whole body has arrived, with ``request.body`` holding it (dechunked; ``b""`` when
there is none) and ``request.set_body`` able to replace it.  The body is held in
memory up to ``limits.max_buffered_body``; a larger one is refused with 413.

A plugin that keeps responses (a cache) calls ``request.tap_body(receiver)`` in its
``access`` phase: ``receiver(chunk, last)`` then gets the response body as the client
gets it (decoded from any chunked framing, after the ``response_body`` phases), and
once more with ``last=True`` when it is complete; never when the exchange fails or
is cut short.  Unlike a ``response_body`` phase it changes nothing: the response
keeps its framing.

Things that should outlive a config reload (a response cache's memory, a Redis
client) are kept with ``context.stores.keep(key, factory)``.

A phase set to ``None`` on an instance is not run for it (the response-transformer
drops its ``response_body`` phase when it has no JSON edits, so its routes keep the
node's framing).

An authentication plugin that checks credentials of its own declares their model
as ``credential`` (a ``CredentialModel``); consumers then file them under the
plugin's name (``credentials: {api-token: [{token: ...}]}``) and the config is
validated against it, with no change anywhere else.

Plugins run in ``priority`` order, highest first (authentication plugins sit
near 1000 to 2000, rate limiting below them, transformations lower still).  A plugin
instance is built once per route when the config loads, never per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from quiver.config.base import Strict
from quiver.config.consumers import CredentialModel
from quiver.config.models import Limits
from quiver.plugins.consumers import ConsumerRuntime, Consumers
from quiver.plugins.outbound import Outbound
from quiver.plugins.stores import Stores

PHASES = ("access", "response_headers", "response_body", "log")

R = TypeVar("R")


@dataclass(frozen=True)
class PluginContext:
    """What a plugin may use when it is built: the config's consumers and limits, the
    worker's HTTP client for requests of its own (None where nothing is served), the
    worker's stores (counters shared by the node's workers, and what else plugins keep
    across reloads), and where its config is attached."""

    consumers: Consumers
    limits: Limits = field(default_factory=Limits)
    outbound: Outbound | None = None
    stores: Stores = field(default_factory=Stores)
    #: where the plugin's config is attached: "global", "target:NAME", "route:NAME"
    #: or "consumer:NAME" (limits count per scope)
    scope: str = "global"


class PluginConfig(Strict):
    """Base of every plugin's config: unknown keys are errors, every field is described."""


C = TypeVar("C", bound=PluginConfig)


class PluginRequest(Protocol):
    """What a plugin sees of a request (the proxy's exchange implements it)."""

    method: bytes
    raw_path: bytes  # as received (not normalized)
    query: bytes  # without "?", as it will be forwarded
    content_length: int | None
    headers: list[tuple[bytes, bytes]]  # every field as it stands now, names as sent
    body: bytes | None  # the whole body, for plugins that set ``reads_body`` (else None)
    rid: bytes  # the request's id, as sent upstream and to the client in X-Request-ID

    def get(self, name: bytes, default: bytes | None = None) -> bytes | None:
        """A request header by lowercase name (repeated fields joined by ", "), as
        changed by ``set_header``/``remove_header`` so far."""

    def set_header(self, name: bytes, value: bytes) -> None:
        """Send ``name: value`` upstream instead of any field of that name."""

    def remove_header(self, name: bytes) -> None:
        """Send no field of that name upstream."""

    def remove_field(self, field: tuple[bytes, bytes]) -> None:
        """Remove one field, a tuple as found in ``headers``, from the request and from
        what goes upstream (cheaper than ``remove_header`` when it is at hand)."""

    def limit_body(self, max_size: int) -> None:
        """Refuse (413) a body that grows past ``max_size`` bytes while it streams."""

    def set_body(self, body: bytes) -> None:
        """Forward ``body`` instead (only where ``body`` is not None); Content-Length
        follows it."""

    def set_query(self, query: bytes) -> None:
        """Forward this query string (without "?") instead of the client's."""

    def tap_body(self, receiver: Callable[[bytes, bool], None]) -> None:
        """Hand the response body to ``receiver(chunk, last)`` as it is sent, unchanged
        (call it in ``access``; see the module docstring)."""

    def add_response_field(self, name: bytes, value: bytes, *, replace: bool = False) -> None:
        """Add ``name: value`` to the response the client gets, whoever answers: the
        node, an in-process target, or the gateway with an error.  Cheaper than a
        ``response_headers`` phase for a plugin that only adds fields.  ``value``
        must be a valid field value (no CR or LF).  ``replace``: first drop the
        fields of that name plugins added before (not those of the node)."""

    def add_response_fields(self, lines: bytes) -> None:
        """``add_response_field`` for fields rendered already: ``lines`` is one or
        more ``Name: value\r\n`` lines (for a plugin that renders its fields once
        and fills in a number per request)."""

    def set_consumer(self, consumer: ConsumerRuntime, credential: bytes | None = None) -> None:
        """The request comes from ``consumer``: its identity is sent upstream.
        ``credential`` names the credential it presented (never the secret itself:
        e.g. ``b"key-auth:" + digest``), for limits counted per credential."""

    def report_cache_status(self, label: str) -> None:
        """Tell the exchange's record (the access log's ``cache`` field) how a cache
        served this request: ``HIT``, ``MISS``, ``EXPIRED``, ``STALE``, ``BYPASS``
        or ``REVALIDATED``; the last report counts."""

    @property
    def consumer(self) -> ConsumerRuntime | None:
        """The consumer an authentication plugin identified, if any."""

    @property
    def credential(self) -> bytes | None:
        """What ``set_consumer`` was told of the credential used, if anything."""

    @property
    def ctx(self) -> dict[str, Any]:
        """Scratch space for plugins for this request (key it by plugin name)."""

    @property
    def status(self) -> int:
        """The response status (in ``response_headers`` and ``log``; 0 before)."""

    @property
    def client_ip(self) -> bytes:
        """The address of the client connection."""

    @property
    def connection_memo(self) -> dict[str, Any]:
        """What plugins remember between the requests of the client's connection
        (key it by plugin name; gone when the connection closes).  A request may
        come through another client's proxy on the same connection: never let what
        one request left there decide for another without checking it."""


class Plugin(Generic[C]):
    """Base class of plugins: set ``name``, ``priority`` and ``Config``; add phases."""

    name: ClassVar[str]
    priority: ClassVar[int]
    Config: ClassVar[type[PluginConfig]]

    #: True for authentication plugins: they cannot be attached to a consumer
    identifies_consumers: ClassVar[bool] = False
    #: the model of the credentials consumers file under this plugin's name (``None``:
    #: the plugin has none); the plugin indexes them itself (``Consumers.credentials``)
    credential: ClassVar[type[CredentialModel] | None] = None
    #: True when its ``access`` phase reads ``request.body`` (see the module docstring)
    reads_body: bool = False
    #: True when its ``response_body`` phase only watches the body go by (it returns
    #: every chunk unchanged): on its own it leaves the responses' framing as it is,
    #: and runs for the responses that another phase or the proxy frames itself
    watches_body: ClassVar[bool] = False

    def __init__(self, config: C, context: PluginContext) -> None:
        self.config = config
        self.context = context

    @classmethod
    def phases(cls) -> tuple[str, ...]:
        """The phases this plugin implements."""
        return tuple(phase for phase in PHASES if getattr(cls, phase, None) is not None)

    # Phases are looked up by name; a plugin defines only those it needs, e.g.:
    #   def access(self, request: PluginRequest) -> None | Awaitable[None]
    access: Any = None
    response_headers: Any = None
    response_body: Any = None
    log: Any = None


AccessResult = None | Awaitable[None]
