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
offset          ``offset`` + the records received           empty page, or past ``total``
cursor          ``cursor_param`` = body at ``cursor_path``  the cursor is missing or empty
link_header     the ``Link: <...>; rel="next"`` URL         no such link (RFC 8288)
next_url        the URL in the body at ``next_url_path``    it is missing or null
single_page     none                                        at once
auto            one of the above, chosen on the first page
==============  ==========================================  ================================

``parallel(response, records)`` lists every remaining request at once when the
first response tells how many there are (``total_pages``, ``total``), so a runner
may fetch them concurrently; it is None when pages must be walked one by one.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urljoin, urlsplit

from quiver.client.events import ClientEvent, EventHook, logging_hook
from quiver.client.models import RequestSpec, Response
from quiver.errors import ConfigError, ConfigIssue


class Paginator(Protocol):
    def first(self, request: RequestSpec) -> RequestSpec: ...

    def next(
        self, request: RequestSpec, response: Response, records: list[Any]
    ) -> RequestSpec | None: ...

    def parallel(self, response: Response, records: list[Any]) -> list[RequestSpec] | None: ...


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


def repeats(request: RequestSpec, following: RequestSpec, response: Response) -> bool:
    """Whether ``following`` asks again for the page ``response`` answered ``request``
    with: the same request, or an absolute URL that is where the page came from (a
    first request is relative to the base URL, a next link is made absolute)."""
    if following == request:
        return True
    if (following.method, following.json, following.content) != (
        request.method,
        request.json,
        request.content,
    ):
        return False
    if not urlsplit(following.url).scheme:
        return False  # relative: the same as the request's URL or not, params differ
    return _target(following.url, following.params) == _target(response.url, {})


def _target(url: str, params: Mapping[str, Any]) -> tuple[str, str, str, list[tuple[str, str]]]:
    """An absolute URL with ``params`` merged into its query, as compared."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({name: str(value) for name, value in params.items()})
    return parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", sorted(query.items())


# -- the strategies ----------------------------------------------------------------------------


class _Walked:
    """A paginator whose first request is the endpoint's own and whose pages are
    walked one after another: each names the next, so none is known ahead."""

    __slots__ = ()

    def first(self, request: RequestSpec) -> RequestSpec:
        return request

    def parallel(self, response: Response, records: list[Any]) -> None:
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

    def parallel(self, response: Response, records: list[Any]) -> list[RequestSpec] | None:
        return self.following(response.request, response)

    def following(self, request: RequestSpec, response: Response) -> list[RequestSpec] | None:
        """The requests of the pages after ``request``'s, if ``response`` tells the count."""
        last = self._last(response)
        if last == float("inf"):
            return None
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
        # the step is what came, not the limit asked for: servers cap limits, and a
        # page shorter than the limit does not end the walk either
        offset = _param(request, self.offset_param, 0) + len(records)
        total = self._total(response)
        if not records or (total is not None and offset >= total):
            return None
        return request.with_params(**{self.offset_param: offset})

    def parallel(self, response: Response, records: list[Any]) -> list[RequestSpec] | None:
        """The pages as long as the first one: what the server gives for the limit."""
        total = self._total(response)
        if total is None or not records:
            return None
        request = response.request
        start = _param(request, self.offset_param, 0) + len(records)
        return [
            request.with_params(**{self.offset_param: n}) for n in range(start, total, len(records))
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
#: where a page says its own number (Spring's ``number`` and ``page.number`` count from 0)
PAGE_NUMBER_PATHS = (
    "page",
    "current_page",
    "currentPage",
    "page_number",
    "pageNumber",
    "number",
    "page.number",
    "meta.page",
    "meta.current_page",
    "pagination.page",
    "pagination.current_page",
)
TOTAL_PATHS = ("total", "count", "total_count", "meta.total", "pagination.total")


def detect(response: Response) -> tuple[Paginator, str]:
    """The paginator a first response calls for, and why it was chosen.

    A page count asked without a page number leaves the first page's number to the
    response: the one it reports, else unknown (``numbered`` says how to go on)."""
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
    for path in PAGE_COUNT_PATHS:
        if _int(lookup(body, path)) is not None:
            return _page_count(response.request, body, path)
    limit = _int(body.get("limit"))
    if "offset" in body and limit:
        total = next((p for p in TOTAL_PATHS if _int(lookup(body, p)) is not None), None)
        return Offset(limit=limit, total_path=total), "offset and limit in the body"
    return SinglePage(), "no pagination in the response"


def _page_count(request: RequestSpec, body: Mapping[str, Any], path: str) -> tuple[PageNumber, str]:
    reason = f"a page count at {path!r}"
    asked = _int(request.params.get("page"))
    if asked is not None:
        return PageNumber(total_path=path, base_page=asked), reason
    for at in PAGE_NUMBER_PATHS:
        number = _int(lookup(body, at))
        if number is not None:
            return PageNumber(total_path=path, base_page=number), f"{reason}, page {number} first"
    # page 1 is asked for after the first page, whether that was page 0 or page 1:
    # the first page may come twice, but no page is skipped
    unknown = "the first page's number is not in the response: pin base_page"
    return PageNumber(total_path=path, base_page=1), f"{reason} ({unknown})"


def numbered(request: RequestSpec, response: Response, chosen: Paginator) -> RequestSpec:
    """The first request as ``chosen`` walks on from it: with the page number it had
    (a page number unknown is taken as the one before ``base_page``)."""
    if not isinstance(chosen, PageNumber) or chosen.page_param in request.params:
        return request
    reported = any(_int(lookup(_body(response), at)) is not None for at in PAGE_NUMBER_PATHS)
    number = chosen.base_page if reported else chosen.base_page - 1
    return request.with_params(**{chosen.page_param: number})


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
        chosen = self._choose(response)
        return chosen.next(numbered(request, response, chosen), response, records)

    def parallel(self, response: Response, records: list[Any]) -> list[RequestSpec] | None:
        chosen = self._choose(response)
        if isinstance(chosen, PageNumber):
            return chosen.following(numbered(response.request, response, chosen), response)
        return chosen.parallel(response, records)

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
