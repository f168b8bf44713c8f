"""The fetch side ``quiver sync`` runs on until ``quiver.client`` provides it.

Temporary by design: the client SDK owns requests, retries and pagination
(``quiver.client.pagination``: ``RequestSpec``, ``Response``, ``Paginator``,
``paginator_from_config``; ``quiver.client.AsyncClient``). This module holds only the
shapes of that seam and the least the runner needs to fetch pages: one httpx call
per request (no retries, no rate limiting) and the paginators a ``sources.yaml``
names most (``single_page``, ``page_number``, ``offset``, ``cursor``, ``next_url``).
Everything imports these names from here, so the merge replaces one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urljoin

import httpx
import orjson

from quiver.errors import ConfigError, ConfigIssue
from quiver.sync.select import Selector


@dataclass(frozen=True)
class RequestSpec:
    """One request of a page: ``url`` may be relative to the client's base URL."""

    method: str = "GET"
    url: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None

    def with_params(self, **params: Any) -> RequestSpec:
        return replace(self, params={**self.params, **params})


class Response:
    """A received response: status, headers, body bytes and the body parsed once."""

    __slots__ = ("_json", "content", "headers", "status", "url")

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes, url: str) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        self.url = url
        self._json: Any = None

    def json(self) -> Any:
        if self._json is None:
            self._json = orjson.loads(self.content)
        return self._json


class FetchError(Exception):
    """A request failed: the connection, or a status that is not 2xx."""


class AsyncClient:
    """``send`` one :class:`RequestSpec` against ``base_url``; a non-2xx status raises."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 60.0,
        connections: int = 8,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers or {}),
            params=dict(params or {}),
            auth=auth,
            timeout=timeout,
            # the pool scans its connections for each request: no more than are used
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    async def send(self, spec: RequestSpec) -> Response:
        try:
            answer = await self._client.request(
                spec.method,
                spec.url,
                params=dict(spec.params),
                headers=dict(spec.headers),
                json=spec.json,
            )
        except httpx.HTTPError as exc:
            raise FetchError(f"{spec.method} {spec.url}: {exc}") from exc
        if not 200 <= answer.status_code < 300:
            raise FetchError(f"{spec.method} {answer.url} answered {answer.status_code}")
        return Response(answer.status_code, answer.headers, answer.content, str(answer.url))

    async def aclose(self) -> None:
        await self._client.aclose()


class Paginator(Protocol):
    """Walks the pages of one endpoint (the seam's Protocol)."""

    def first(self, request: RequestSpec) -> RequestSpec: ...

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None: ...

    def parallel(self, response: Response) -> list[RequestSpec] | None: ...


class SinglePage:
    def first(self, request: RequestSpec) -> RequestSpec:
        return request

    def next(self, request: RequestSpec, response: Response, records: list[Any]) -> None:
        return None

    def parallel(self, response: Response) -> None:
        return None


class PageNumber:
    """``?page=N`` from ``base_page``; all pages at once when ``total_path`` names the
    number of pages in the first response, else until a page comes back empty."""

    def __init__(
        self, page_param: str = "page", base_page: int = 0, total_path: str | None = None
    ) -> None:
        self.param = page_param
        self.base = base_page
        self.total = Selector(total_path) if total_path else None
        self._request: RequestSpec | None = None

    def first(self, request: RequestSpec) -> RequestSpec:
        self._request = request
        return request.with_params(**{self.param: self.base})

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        if not records:
            return None
        page = int(request.params[self.param]) + 1
        if self.total is not None and page >= self.base + int(self.total.value(response.json())):
            return None
        return request.with_params(**{self.param: page})

    def parallel(self, response: Response) -> list[RequestSpec] | None:
        if self.total is None or self._request is None:
            return None
        pages = int(self.total.value(response.json()))
        first = self.base + 1
        return [
            self._request.with_params(**{self.param: n}) for n in range(first, self.base + pages)
        ]


class Offset:
    """``?offset=N&limit=L``; all pages at once when ``total_path`` names the record count."""

    def __init__(
        self,
        limit: int,
        offset_param: str = "offset",
        limit_param: str = "limit",
        total_path: str | None = None,
    ) -> None:
        self.limit = limit
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.total = Selector(total_path) if total_path else None
        self._request: RequestSpec | None = None

    def first(self, request: RequestSpec) -> RequestSpec:
        self._request = request
        return request.with_params(**{self.offset_param: 0, self.limit_param: self.limit})

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        offset = int(request.params[self.offset_param]) + self.limit
        if len(records) < self.limit:
            return None
        if self.total is not None and offset >= int(self.total.value(response.json())):
            return None
        return request.with_params(**{self.offset_param: offset})

    def parallel(self, response: Response) -> list[RequestSpec] | None:
        if self.total is None or self._request is None:
            return None
        total = int(self.total.value(response.json()))
        return [
            self._request.with_params(**{self.offset_param: n, self.limit_param: self.limit})
            for n in range(self.limit, total, self.limit)
        ]


class Cursor:
    """``?cursor=VALUE`` with the value the previous response holds at ``cursor_path``."""

    def __init__(self, cursor_path: str = "cursors.next", cursor_param: str = "cursor") -> None:
        self.path = Selector(cursor_path)
        self.param = cursor_param

    def first(self, request: RequestSpec) -> RequestSpec:
        return request

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        value = self.path.value(response.json())
        return request.with_params(**{self.param: value}) if value and records else None

    def parallel(self, response: Response) -> None:
        return None


class NextUrl:
    """The next page's URL, from the previous response at ``next_url_path``."""

    def __init__(self, next_url_path: str = "next") -> None:
        self.path = Selector(next_url_path)

    def first(self, request: RequestSpec) -> RequestSpec:
        return request

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        url = self.path.value(response.json())
        if not url:
            return None
        # the next URL carries its own query: only the headers and method stay
        return replace(request, url=urljoin(response.url, str(url)), params={})

    def parallel(self, response: Response) -> None:
        return None


_PAGINATORS: dict[str, type[Any]] = {
    "single_page": SinglePage,
    "page_number": PageNumber,
    "offset": Offset,
    "cursor": Cursor,
    "next_url": NextUrl,
    "json_link": NextUrl,
}


def paginator_from_config(config: Mapping[str, Any] | str | None) -> Paginator:
    """A paginator from its dlt-like mapping (``{type: page_number, ...}``) or type name;
    an unknown type or option is a ConfigError naming it."""
    if config is None:
        return SinglePage()
    options = {"type": config} if isinstance(config, str) else dict(config)
    kind = options.pop("type", None)
    if kind not in _PAGINATORS:
        known = ", ".join(_PAGINATORS)
        raise ConfigError([ConfigIssue("paginator.type", f"{kind!r} is not one of {known}")])
    try:
        paginator: Paginator = _PAGINATORS[kind](**options)
    except TypeError as exc:
        raise ConfigError([ConfigIssue("paginator", f"{kind}: {exc}")]) from exc
    return paginator
