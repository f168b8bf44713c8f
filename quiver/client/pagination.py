"""Walking the pages of an endpoint: one small strategy class per way APIs paginate.

A paginator turns the first request into the next one from what a response
said; it sends nothing, so the client's ``pages()`` loop and ``quiver sync``
drive the same classes.  Built from a mapping like dlt's ``rest_api``::

    paginator_from_config({"type": "cursor", "cursor_path": "meta.next", "cursor_param": "after"})
    paginator_from_config("auto")   # or None: decided from the first response, logged

==============  ==========================================  ================================
type            the next request                            stops when
==============  ==========================================  ================================
page_number     ``page`` param + 1                          empty page, or past total pages
offset          ``offset`` param + ``limit``                empty page, or past ``total``
cursor          ``cursor_param`` = body at ``cursor_path``  the cursor is missing or empty
link_header     the ``Link: <...>; rel="next"`` URL         no such link (RFC 8288)
next_url        the URL in the body at ``next_url_path``    it is missing or null
single_page     none                                        at once
auto            one of the above, chosen on the first page
==============  ==========================================  ================================

``parallel(response)`` lists every remaining request at once when the first
response tells how many there are (``total_pages``, ``total``), so a runner may
fetch them concurrently; it is None when pages must be walked one by one.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin

from quiver.client.events import ClientEvent, EventHook, logging_hook
from quiver.client.models import RequestSpec, Response
from quiver.errors import ConfigError, ConfigIssue


class Paginator(Protocol):
    def first(self, request: RequestSpec) -> RequestSpec: ...

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None: ...

    def parallel(self, response: Response) -> list[RequestSpec] | None: ...


@dataclass(frozen=True, slots=True)
class Page:
    response: Response
    records: list[Any]


# -- reading bodies ----------------------------------------------------------------------------

#: where APIs usually put the records of a page, in the order they are looked for
RECORD_KEYS = ("data", "items", "results", "records", "entries", "objects", "rows", "values")


def lookup(body: Any, path: str) -> Any:
    """The value at a dotted ``path`` of a JSON body (``links.next``, or as JSONPath
    and dlt write it, ``$.links.next``), or None."""
    for key in path.removeprefix("$.").split("."):
        if not isinstance(body, Mapping):
            return None
        body = body.get(key)
    return body


def find_records(body: Any, path: str | None = None) -> list[Any]:
    """The records of a page: at ``path``, else the body if it is a list, else the
    first list under one of ``RECORD_KEYS``, else the body as the only record."""
    found = lookup(body, path) if path else body
    if isinstance(found, list):
        return found
    if path is None and isinstance(found, Mapping):
        for key in RECORD_KEYS:
            if isinstance(found.get(key), list):
                return list(found[key])
    return [] if found is None else [found]


def _body(response: Response) -> Any:
    if not response.content or "json" not in response.headers.get("content-type", "json"):
        return None
    return response.json()


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _param(request: RequestSpec, name: str, default: int) -> int:
    value = _int(request.params.get(name))
    return default if value is None else value


def _follow(request: RequestSpec, response: Response, url: Any) -> RequestSpec | None:
    """The request for a next-page URL, relative ones resolved against the page's URL;
    the URL carries its own query, so the first request's params are dropped."""
    if not isinstance(url, str) or not url:
        return None
    return request.replace(url=urljoin(response.url, url), params={})


# -- the strategies ----------------------------------------------------------------------------


class _Walked:
    """A paginator whose first request is the endpoint's own and whose pages are
    walked one after another: each names the next, so none is known ahead."""

    __slots__ = ()

    def first(self, request: RequestSpec) -> RequestSpec:
        return request

    def parallel(self, response: Response) -> None:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class SinglePage(_Walked):
    def next(self, request: RequestSpec, response: Response, records: list[Any]) -> None:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class PageNumber:
    page_param: str = "page"
    base_page: int = 1
    #: body path of the number of pages; without it, an empty page ends the walk
    total_path: str | None = "total_pages"
    maximum_page: int | None = None

    def first(self, request: RequestSpec) -> RequestSpec:
        page = _param(request, self.page_param, self.base_page)
        return request.with_params(**{self.page_param: page})

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        page = _param(request, self.page_param, self.base_page) + 1
        if not records or page > self._last(response):
            return None
        return request.with_params(**{self.page_param: page})

    def parallel(self, response: Response) -> list[RequestSpec] | None:
        last = self._last(response)
        if last == float("inf"):
            return None
        request = response.request
        page = _param(request, self.page_param, self.base_page)
        return [request.with_params(**{self.page_param: n}) for n in range(page + 1, int(last) + 1)]

    def _last(self, response: Response) -> float:
        total = _int(lookup(_body(response), self.total_path)) if self.total_path else None
        last = float("inf") if total is None else total - 1 + self.base_page
        return min(last, self.maximum_page) if self.maximum_page is not None else last


@dataclass(frozen=True, slots=True, kw_only=True)
class Offset:
    limit: int = 100
    offset_param: str = "offset"
    limit_param: str = "limit"
    #: body path of the number of records; without it, an empty page ends the walk
    total_path: str | None = "total"

    def first(self, request: RequestSpec) -> RequestSpec:
        offset = _param(request, self.offset_param, 0)
        return request.with_params(**{self.offset_param: offset, self.limit_param: self.limit})

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        # a page shorter than the limit does not end the walk: servers cap limits
        offset = _param(request, self.offset_param, 0) + self.limit
        total = self._total(response)
        if not records or (total is not None and offset >= total):
            return None
        return request.with_params(**{self.offset_param: offset})

    def parallel(self, response: Response) -> list[RequestSpec] | None:
        total = self._total(response)
        if total is None:
            return None
        request = response.request
        start = _param(request, self.offset_param, 0) + self.limit
        return [
            request.with_params(**{self.offset_param: n}) for n in range(start, total, self.limit)
        ]

    def _total(self, response: Response) -> int | None:
        return _int(lookup(_body(response), self.total_path)) if self.total_path else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cursor(_Walked):
    cursor_path: str = "next_cursor"
    cursor_param: str = "cursor"

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        cursor = lookup(_body(response), self.cursor_path)
        if cursor is None or cursor == "" or not records:
            return None
        return request.with_params(**{self.cursor_param: cursor})


_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def next_link(link_field: str, rel: str = "next") -> str | None:
    """The target of the ``Link`` field value with relation ``rel`` (RFC 8288 §3)."""
    for target, params in _LINK.findall(link_field):
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "rel" and rel in value.strip().strip('"').lower().split():
                return str(target)
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkHeader(_Walked):
    rel: str = "next"

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        return _follow(request, response, next_link(response.headers.get("link", ""), self.rel))


@dataclass(frozen=True, slots=True, kw_only=True)
class NextURL(_Walked):
    next_url_path: str = "next"

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        return _follow(request, response, lookup(_body(response), self.next_url_path))


# -- auto-detection ----------------------------------------------------------------------------

NEXT_URL_PATHS = ("next", "next_url", "nextUrl", "links.next", "_links.next.href", "paging.next")
CURSOR_PATHS = (
    "next_cursor",
    "nextCursor",
    "cursor",
    "meta.next_cursor",
    "pagination.next_cursor",
    "response_metadata.next_cursor",
)
PAGE_COUNT_PATHS = ("total_pages", "totalPages", "meta.total_pages", "pagination.total_pages")
TOTAL_PATHS = ("total", "count", "total_count", "meta.total", "pagination.total")


def detect(response: Response) -> tuple[Paginator, str]:
    """The paginator a first response calls for, and why it was chosen."""
    link = next_link(response.headers.get("link", ""))
    if link is not None:
        return LinkHeader(), 'a Link header with rel="next"'
    body = _body(response)
    if not isinstance(body, Mapping):
        return SinglePage(), "no pagination in the response"
    for path in NEXT_URL_PATHS:
        value = lookup(body, path)
        if isinstance(value, str) and value.startswith(("http://", "https://", "/", "?")):
            return NextURL(next_url_path=path), f"a next URL at {path!r}"
    for path in CURSOR_PATHS:
        if isinstance(lookup(body, path), str | int) and lookup(body, path) != "":
            return Cursor(cursor_path=path), f"a cursor at {path!r}"
    request = response.request
    for path in PAGE_COUNT_PATHS:
        if _int(lookup(body, path)) is not None:
            page = PageNumber(total_path=path, base_page=_param(request, "page", 1))
            return page, f"a page count at {path!r}"
    limit = _int(body.get("limit"))
    if "offset" in body and limit:
        total = next((p for p in TOTAL_PATHS if _int(lookup(body, p)) is not None), None)
        return Offset(limit=limit, total_path=total), "offset and limit in the body"
    return SinglePage(), "no pagination in the response"


class Auto:
    """Chooses a paginator from the first response and keeps it for the walk."""

    def __init__(self, on_event: EventHook | None = None) -> None:
        self.on_event = on_event if on_event is not None else logging_hook()
        self.chosen: Paginator | None = None

    def first(self, request: RequestSpec) -> RequestSpec:
        return request

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None:
        return self._choose(response).next(request, response, records)

    def parallel(self, response: Response) -> list[RequestSpec] | None:
        return self._choose(response).parallel(response)

    def _choose(self, response: Response) -> Paginator:
        if self.chosen is None:
            self.chosen, reason = detect(response)
            name = _NAMES[type(self.chosen)]
            fields: dict[str, Any] = {"paginator": name, "reason": reason, "url": response.url}
            if isinstance(self.chosen, Cursor | NextURL | PageNumber | Offset):
                fields["config"] = dataclasses.asdict(self.chosen)
            message = f"pagination of {response.request.method} {response.url}: {name} ({reason})"
            self.on_event(ClientEvent("paginator", logging.INFO, message, fields))
        return self.chosen


# -- the registry ------------------------------------------------------------------------------

PAGINATORS: dict[str, type[Any]] = {
    "page_number": PageNumber,
    "offset": Offset,
    "cursor": Cursor,
    "link_header": LinkHeader,
    "next_url": NextURL,
    "single_page": SinglePage,
}
_NAMES = {kind: name for name, kind in PAGINATORS.items()}
#: dlt's ``rest_api`` names of two of them, so that its configs read as written
ALIASES = {"json_link": "next_url", "header_link": "link_header"}


def paginator_from_config(
    config: Mapping[str, Any] | str | None, on_event: EventHook | None = None
) -> Paginator:
    """A paginator from ``{type: ..., options...}``, a type name, or None (``auto``);
    an unknown type or option is a :class:`~quiver.errors.ConfigError` naming it."""
    if config is None or config == "auto":
        return Auto(on_event)
    options = {"type": config} if isinstance(config, str) else dict(config)
    kind = options.pop("type", None)
    kind = ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    if kind == "auto":
        if options:
            message = "unknown option of auto (it takes none)"
            raise ConfigError([ConfigIssue(f"paginator.{key}", message) for key in sorted(options)])
        return Auto(on_event)
    if kind not in PAGINATORS:
        known = ", ".join(["auto", *PAGINATORS, *ALIASES])
        raise ConfigError([ConfigIssue("paginator.type", f"{kind!r} is not one of {known}")])
    cls = PAGINATORS[kind]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown: Sequence[str] = sorted(set(options) - fields)
    if unknown:
        allowed = ", ".join(sorted(fields)) or "none"
        issues = [
            ConfigIssue(f"paginator.{key}", f"unknown option of {kind} (options: {allowed})")
            for key in unknown
        ]
        raise ConfigError(issues)
    paginator: Paginator = cls(**options)
    return paginator
