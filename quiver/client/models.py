"""What goes out (``RequestSpec``) and what comes back (``Response``).

Both are plain values the paginators, the cache and the retry policy reason about
without any I/O; only the client turns a spec into bytes on a socket.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from quiver.client.errors import DecodingError
from quiver.client.headers import Headers

#: methods whose repetition has the effect of one request (RFC 9110 §9.2.2)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One request, before authentication: ``url`` is absolute or relative to the
    client's ``base_url``; ``params`` are added to its query string."""

    method: str = "GET"
    url: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    content: bytes | None = None

    def replace(self, **changes: Any) -> RequestSpec:
        return dataclasses.replace(self, **changes)

    def with_params(self, **params: Any) -> RequestSpec:
        return dataclasses.replace(self, params={**self.params, **params})

    def with_headers(self, **headers: str) -> RequestSpec:
        return dataclasses.replace(self, headers={**self.headers, **headers})

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    @property
    def retry_safe(self) -> bool:
        """Whether sending it twice is harmless: an idempotent method or an
        ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header)."""
        if self.method.upper() in IDEMPOTENT_METHODS:
            return True
        return self.header("idempotency-key") is not None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait for each step; every request has them (``None``: no limit)."""

    connect: float | None = 5.0
    read: float | None = 30.0
    write: float | None = 30.0
    #: waiting for a free connection of the pool
    pool: float | None = 10.0


_UNPARSED: Any = object()


@dataclass(frozen=True, slots=True)
class Response:
    """A complete response: ``url`` is the one the request went to (query included).

    ``json()`` parses the body once and hands back the same document each time:
    a page is read by the caller and by its paginator, and parsing a page of a
    thousand records costs more than fetching it.  Treat the document as read-only.
    """

    status: int
    headers: Headers
    content: bytes
    url: str
    request: RequestSpec
    #: answered from the client's cache (possibly after a 304 revalidation)
    from_cache: bool = False
    _document: Any = field(default=_UNPARSED, init=False, repr=False, compare=False)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.content.decode(_charset(self.headers.get("content-type", "")), "replace")

    def json(self) -> Any:
        if self._document is _UNPARSED:
            try:
                document = orjson.loads(self.content)
            except orjson.JSONDecodeError as exc:
                raise DecodingError(f"{self.url} did not answer JSON: {exc}") from exc
            object.__setattr__(self, "_document", document)  # a cache, not a change of value
        return self._document

    def problem(self) -> dict[str, Any] | None:
        """The RFC 9457 problem document of the body, if it is one."""
        media_type = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/problem+json":
            return None
        try:
            document = orjson.loads(self.content)
        except orjson.JSONDecodeError:
            return None
        return document if isinstance(document, dict) else None


def _charset(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"
