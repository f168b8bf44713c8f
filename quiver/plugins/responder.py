"""In-process target types: a route answered inside the worker, plugins all around it.

A target's ``type`` names how its routes are answered.  ``http`` (the default) is
the proxy's own upstream responder: requests go to the target's nodes.  Any other
type is a small class, looked up by name in the catalog handed to the proxy (and
to config validation, which checks the target's ``options``), built once per
config and asked to ``handle`` each request after the route's ``access`` phases;
its response then goes through the ``response_headers`` and ``response_body``
phases like a node's::

    class Hello(TargetType):
        name = "hello"

        class Options(TargetOptions):
            greeting: str = Field("hello", description="What to answer.")

        def handle(self, request: PluginRequest) -> Response:
            body = self.options.greeting.encode()
            return Response(200, [(b"Content-Type", b"text/plain")], body)

``handle`` may be a coroutine.  ``request.body`` holds the whole request body
(dechunked; read up to ``limits.max_buffered_body``, 413 beyond).  A response body
is bytes, or an async iterator of bytes sent as it comes (chunked to HTTP/1.1
clients).  Raising an ``HTTPError`` answers a problem document (or what
``error_answer`` below makes of it); anything else is a fault, logged and answered
500 like a plugin's.

A type whose routes speak an API with an error format of its own (clients built
for that API read nothing else) can state the gateway's errors on its routes in
that format too: key-auth's 401, a rate limit's 429, a body too large, the read
timeout's 504, whatever the proxy, a plugin or ``handle`` refuses with an
``HTTPError`` once the route is known (a plugin's ``Answer`` goes out as it is).
``error_answer`` gets each such error and returns the :class:`~quiver.errors.Answer`
to send instead, or None for the usual problem document::

    class Hello(TargetType):
        ...

        def error_answer(self, request: PluginRequest, error: HTTPError) -> Answer | None:
            body = orjson.dumps({"fault": error.detail})
            fields = (*error.headers, (b"Cache-Control", b"no-store"))
            return Answer(error.status_code, headers=fields, body=body,
                          content_type=b"application/json")

Keep the error's header fields (Retry-After, WWW-Authenticate, the RateLimit
fields...) and its status.  The proxy adds X-Request-ID as to every answer, and the
route's ``response_headers`` phases run on it as on a problem document (CORS on a
401...).  It is asked only for errors the proxy answers: the Responses ``handle``
returns are its own, and a response already begun ends as it always does (cut).  A fault in it
is logged and the problem document goes out instead.  Types that do not define it
cost nothing: the proxy looks once per config whether a type does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from quiver.config.base import Strict
from quiver.errors import Answer, HTTPError
from quiver.plugins.base import PluginContext, PluginRequest


class TargetOptions(Strict):
    """Base of a target type's options: unknown keys are errors, fields described."""


OptionsT = TypeVar("OptionsT", bound=TargetOptions)


@dataclass(slots=True)
class Response:
    """What an in-process target answers; ``Content-Length`` is added for bytes."""

    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes | AsyncIterator[bytes] = b""


class TargetType(Generic[OptionsT]):
    """Base class of in-process target types: set ``name`` and ``Options``; define
    ``handle``.  Built once per config with the target's options."""

    name: ClassVar[str]
    Options: ClassVar[type[TargetOptions]] = TargetOptions
    #: False for a type the config compiles other sections into (the AI routes' ``ai``):
    #: it is not listed among the types a target may name
    listed: ClassVar[bool] = True

    def __init__(self, options: OptionsT, context: PluginContext) -> None:
        self.options = options
        self.context = context

    def handle(self, request: PluginRequest) -> Response | Awaitable[Response]:
        raise NotImplementedError

    def error_answer(self, request: PluginRequest, error: HTTPError) -> Answer | None:
        """How this kind of route states a gateway error (never an ``Answer``) in its
        own API's shape; None: as a problem document (see the module docstring)."""
        return None

    def close(self) -> None:
        """Called when a new config replaces the one this target was built for."""


def answers_errors(responder: TargetType[Any]) -> bool:
    """Whether ``responder``'s type states gateway errors its own way."""
    return type(responder).error_answer is not TargetType.error_answer


TargetTypes = dict[str, type[TargetType[Any]]]
"""In-process target types by name (``http`` is the proxy's own and never listed)."""

HTTP_TARGET = "http"
