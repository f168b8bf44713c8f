"""The client: one request's way through credentials, cache, pacing, breaker and retries.

``quiver/client/_async/client.py`` is the only hand-written client;
``quiver/client/_sync/client.py`` is generated from it by ``scripts/unasync.py``
(``await`` dropped, ``AsyncX`` names made ``X``).
Everything that decides (retry policy, rate limiter, breakers, cache, auth,
paginators) is I/O-free and shared by both.

The transport is httpx (see "Transport" in docs/client.md for the measurement);
its exceptions are mapped to :mod:`quiver.client.errors` in ``_mapped`` and
nowhere else.  On the lean transport, a plain GET skips httpx's per-request
objects (``_plain``): its bytes are httpx's, encoded once per endpoint.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import httpx
import orjson

from quiver.client._backends import AsyncLock, async_sleep
from quiver.client.auth import Auth
from quiver.client.breaker import BreakerPolicy, Breakers
from quiver.client.cache import ResponseCache
from quiver.client.errors import (
    CircuitOpenError,
    ConnectError,
    ConnectTimeout,
    DecodingError,
    HTTPStatusError,
    InvalidURL,
    NetworkError,
    PoolTimeout,
    QuiverClientError,
    ReadTimeout,
    TooManyRedirects,
    TransportError,
    status_error,
)
from quiver.client.events import ClientEvent, EventHook, logging_hook
from quiver.client.headers import Headers
from quiver.client.http11 import AsyncLeanTransport, head, origin_of, proxied_by_environment
from quiver.client.models import RequestSpec, Response, Timeouts
from quiver.client.pagination import (
    Page,
    Paginator,
    find_records,
    paginator_from_config,
    repeats,
)
from quiver.client.ratelimit import RateLimiter, ServerQuotas
from quiver.client.retry import RetryPolicy

PaginatorChoice = Paginator | Mapping[str, Any] | str | None
#: ``httpx``: httpx's own transport; ``http11``: Quiver's lean HTTP/1.1 connections
#: under httpx (see quiver/client/http11.py)
Transport = Literal["httpx", "http11"]

DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_RETRY = RetryPolicy()
DEFAULT_BREAKER = BreakerPolicy()
_READ = httpx.ByteStream(b"")  # the stream of a response whose body was read
_Fields = list[tuple[bytes, bytes]]  # header fields as they come and go on the wire
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: endpoints whose encoded request a client keeps (``_plain``)
_ENDPOINTS = 64


@dataclass(frozen=True, slots=True)
class _Endpoint:
    """What httpx makes of a GET to one URL with one set of headers, before params:
    the parts of its request that do not change from page to page."""

    url: httpx.URL
    origin: tuple[bytes, bytes, int]  # scheme, host, port
    host: str  # as in the URL (with the port)
    path: bytes  # the request target, without the query
    prefix: str  # the URL as text, without the query
    headers: _Fields  # Host and the rest, as httpx sends them


@dataclass(frozen=True, slots=True)
class _Plain:
    """One plain GET, ready for the wire."""

    endpoint: _Endpoint
    url: str
    shown: str  # without the query parameters that carry credentials
    data: bytes


class AsyncClient:
    """A client of one API (or several: ``url`` may be absolute)::

        async with AsyncClient("https://api.example.com", auth=BearerAuth(token)) as api:
            order = (await api.get("/orders/7")).json()
            async for item in api.items("/orders", paginator="auto"):
                ...

    A status of 400 or more raises a :class:`~quiver.client.errors.HTTPStatusError`
    (a ``ProblemError`` for problem+json) once retries are spent, unless
    ``raise_for_status`` is False.  ``transport="http11"`` sends plain HTTP/1.1
    requests on Quiver's lean connections (a fraction of httpx's CPU per response),
    everything else as httpx does.  ``clock`` (monotonic), ``wall_clock``,
    ``sleep`` and ``random`` are there for deterministic tests.
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        auth: Auth | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        retry: RetryPolicy = DEFAULT_RETRY,
        rate_limit: RateLimiter | None = None,
        breaker: BreakerPolicy | None = DEFAULT_BREAKER,
        cache: ResponseCache | None = None,
        on_event: EventHook | None = None,
        raise_for_status: bool = True,
        follow_redirects: bool = True,
        verify: bool | str | ssl.SSLContext = True,
        transport: Transport = "httpx",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = async_sleep,
        random: Callable[[], float] = random.random,
    ) -> None:
        waits = httpx.Timeout(
            connect=timeouts.connect, read=timeouts.read, write=timeouts.write, pool=timeouts.pool
        )
        self._lean = (
            AsyncLeanTransport(lambda: httpx.AsyncHTTPTransport(verify=verify), verify)
            if transport == "http11" and not proxied_by_environment()
            else None
        )
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=waits,
            follow_redirects=follow_redirects,
            verify=verify,
            transport=self._lean,
        )
        self._waits = waits.as_dict()
        self._endpoints: dict[tuple[str, tuple[tuple[str, str], ...]], _Endpoint | None] = {}
        self._auth = auth
        self._auth_lock = AsyncLock()
        self._retry = retry
        self._limiter = rate_limit
        self._breakers = Breakers(breaker) if breaker is not None else None
        self._quotas = ServerQuotas()
        self._cache = cache
        self._on_event = on_event if on_event is not None else logging_hook()
        self._raise_for_status = raise_for_status
        self._clock, self._wall_clock = clock, wall_clock
        self._sleep, self._random = sleep, random

    # -- requests ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
    ) -> Response:
        spec = RequestSpec(method.upper(), url, params or {}, headers or {}, json, content)
        return await self.send(spec)

    async def get(self, url: str, **kwargs: Any) -> Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", url, **kwargs)

    async def send(self, spec: RequestSpec) -> Response:
        """Send ``spec``, retrying as the policy allows; a 401 with credentials that
        can be renewed (OAuth2) is sent once more with new ones."""
        retry, renewed = 0, False
        while True:
            try:
                response = await self._attempt(spec)
                if response.status == 401 and not renewed and self._renew_credentials():
                    renewed = True
                    continue
                if response.status >= 400:
                    raise status_error(response)
                return response
            except (TransportError, HTTPStatusError) as error:
                delay = self._retry.delay(spec, error, retry, self._random, self._wall_clock())
                if delay is None:
                    if isinstance(error, HTTPStatusError) and not self._raise_for_status:
                        return error.response
                    raise
                retry += 1
                self._emit(
                    "retry",
                    logging.WARNING,
                    f"{error}; retry {retry} in {delay:.2f}s",
                    retry=retry,
                    delay=delay,
                    error=type(error).__name__,
                )
                await self._sleep(delay)

    # -- pages ------------------------------------------------------------------------------

    async def pages(
        self,
        request: RequestSpec | str,
        paginator: PaginatorChoice = None,
        records_path: str | None = None,
    ) -> AsyncIterator[Page]:
        """Each page of an endpoint with its records, walked by ``paginator``: a
        :class:`~quiver.client.pagination.Paginator`, its config, or None to detect
        it from the first response (the choice is logged as a ``paginator`` event)."""
        spec = RequestSpec(url=request) if isinstance(request, str) else request
        walker = (
            paginator_from_config(paginator, self._on_event)
            if paginator is None or isinstance(paginator, str | Mapping)
            else paginator
        )
        next_request: RequestSpec | None = walker.first(spec)
        while next_request is not None:
            response = await self.send(next_request)
            records = find_records(response.json(), records_path)
            yield Page(response, records)
            following = walker.next(next_request, response, records)
            if following is not None and repeats(next_request, following, response):
                message = f"{response.url} names itself as the next page: the walk ends"
                self._emit("paginator", logging.WARNING, message, url=response.url)
                return
            next_request = following

    async def items(
        self,
        request: RequestSpec | str,
        paginator: PaginatorChoice = None,
        records_path: str | None = None,
    ) -> AsyncIterator[Any]:
        """Every record of every page, in order."""
        async for page in self.pages(request, paginator, records_path):
            for record in page.records:
                yield record

    # -- one attempt ------------------------------------------------------------------------

    async def _attempt(self, spec: RequestSpec) -> Response:
        """One try: credentials, cache, pacing, breaker, the exchange."""
        authed = await self._authenticate(spec)
        hidden = _added_params(spec, authed)
        plain = self._plain(authed, hidden) if self._cache is None else None
        raw = None if plain is not None else self._build(authed)
        if raw is not None:
            url, host = str(raw.url), raw.url.netloc.decode("ascii")
        elif plain is not None:
            url, host = plain.url, plain.endpoint.host
        stale = None
        if self._cache is not None and raw is not None:
            found = self._cache.lookup(authed, url, self._wall_clock())
            if found.fresh is not None:
                return found.fresh
            stale = found.stale
            raw.headers.update(found.conditions)
        await self._pace(host)
        if self._breakers is not None and not self._breakers.allow(host, self._clock()):
            shown = plain.shown if plain is not None else _shown(_url(raw), hidden)
            raise CircuitOpenError(f"the circuit breaker of {host} is open", url=shown)
        try:
            if plain is not None:
                response = await self._fetch(plain, authed, spec, hidden)
            else:
                assert raw is not None
                response = await self._exchange(raw, spec, hidden)
        except TransportError:
            self._record(host, failed=True)
            raise
        self._record(host, failed=response.status >= 500)
        self._quotas.note(host, response.headers, self._clock())
        if self._cache is not None:
            if response.status == 304 and stale is not None:
                return self._cache.revalidated(authed, url, stale, response, self._wall_clock())
            self._cache.store(authed, url, response, self._wall_clock())
        return response

    def _build(self, spec: RequestSpec) -> httpx.Request:
        content, headers = spec.content, dict(spec.headers)
        if spec.json is not None:
            content = orjson.dumps(spec.json)
            headers.setdefault("Content-Type", "application/json")
        try:
            return self._http.build_request(
                spec.method,
                spec.url,
                params=dict(spec.params) or None,  # an empty mapping would drop the URL's query
                headers=headers,
                content=content,
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise InvalidURL(f"{spec.url!r}: {exc}") from exc

    async def _exchange(
        self, raw: httpx.Request, spec: RequestSpec, hidden: tuple[str, ...] = ()
    ) -> Response:
        """The request on the wire; the one place httpx's exceptions become ours.

        ``hidden`` names query parameters that carry credentials: the URL that
        messages, events and the response show is without them."""
        url = _shown(raw.url, hidden)
        self._emit("request", logging.DEBUG, f"{raw.method} {url}", method=raw.method, url=url)
        try:
            answer = await self._http.send(raw)
        except httpx.RequestError as exc:
            raise _mapped(exc, raw.method, raw.url.host, url) from exc
        headers = Headers(answer.headers.multi_items())
        shown = _shown(answer.url, hidden)
        # httpx's response and its bound stream refer to each other: unlinked, the
        # response goes with its last reference instead of at the next garbage
        # collection, so pages do not pile up between collections (the heap then
        # grows and shrinks by a page: a fault per 4 KB of it)
        answer.stream = _READ
        return Response(answer.status_code, headers, answer.content, shown, spec)

    def _plain(self, spec: RequestSpec, hidden: tuple[str, ...]) -> _Plain | None:
        """``spec`` encoded for the lean transport when it is a plain GET (no body, no
        cookie to send, no credentials in the URL, http or https): the bytes httpx
        would send, from the endpoint's parts made by httpx once, and the query
        encoded as httpx encodes it (``params`` take the place of the URL's own query).
        None: httpx builds the request."""
        if (
            self._lean is None
            or spec.method != "GET"
            or spec.content is not None
            or spec.json is not None
            or self._http.cookies.jar
        ):
            return None
        key = (spec.url, tuple(spec.headers.items()))
        if key in self._endpoints:
            endpoint = self._endpoints[key]
        else:
            if len(self._endpoints) >= _ENDPOINTS:
                self._endpoints.clear()
            endpoint = self._endpoints[key] = self._endpoint(spec)
        if endpoint is None:
            return None
        path, prefix = endpoint.path, endpoint.prefix
        if not spec.params:  # the URL as httpx made it, its own query included
            url, target = str(endpoint.url), endpoint.url.raw_path
            shown = _shown(endpoint.url, hidden) if hidden else url
        else:
            params = httpx.QueryParams(spec.params)  # in place of the URL's own, as httpx
            query = str(params)
            url, target = prefix, path
            if query:
                url, target = prefix + "?" + query, path + b"?" + query.encode("ascii")
            shown = url
            if hidden:
                for name in hidden:
                    params = params.remove(name)
                shown = prefix + "?" + str(params) if params else prefix
        return _Plain(endpoint, url, shown, head("GET", target, endpoint.headers))

    def _endpoint(self, spec: RequestSpec) -> _Endpoint | None:
        try:
            raw = self._http.build_request("GET", spec.url, headers=dict(spec.headers))
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            return None  # httpx's own path says what is wrong
        url = raw.url
        if url.scheme not in ("http", "https") or url.userinfo or url.fragment:
            return None  # userinfo: httpx sends it as basic auth
        return _Endpoint(
            url,
            origin_of(url),
            url.netloc.decode("ascii"),
            url.raw_path.partition(b"?")[0],
            str(url).partition("?")[0],
            list(raw.headers.raw),
        )

    async def _fetch(
        self, plain: _Plain, authed: RequestSpec, spec: RequestSpec, hidden: tuple[str, ...]
    ) -> Response:
        """A plain GET on the lean transport: httpx's steps that apply to it (a
        redirect, a content-encoding, a cookie) taken only when the response asks."""
        assert self._lean is not None
        url, endpoint = plain.shown, plain.endpoint
        self._emit("request", logging.DEBUG, f"GET {url}", method="GET", url=url)
        try:
            answer = await self._lean.fetch(endpoint.origin, plain.data, self._waits)
        except httpx.TransportError as exc:
            raise _mapped(exc, "GET", endpoint.url.host, url) from exc
        status, fields, body = answer
        if self._http.follow_redirects and status in _REDIRECTS and _field(fields, b"location"):
            # httpx follows it (sending this GET again) and, for this endpoint, from now on
            self._endpoints[(authed.url, tuple(authed.headers.items()))] = None
            return await self._exchange(self._build(authed), spec, hidden)
        if _field(fields, b"content-encoding") or _field(fields, b"set-cookie"):
            return self._decoded(plain, spec, answer)
        return Response(status, Headers(_text(fields)), body, url, spec)

    def _decoded(
        self, plain: _Plain, spec: RequestSpec, answer: tuple[int, _Fields, bytes]
    ) -> Response:
        """The response as httpx reads it: its body decoded, its cookies kept."""
        status, fields, body = answer
        request = httpx.Request("GET", plain.url)
        response = httpx.Response(
            status, headers=fields, stream=httpx.ByteStream(body), request=request
        )
        try:
            content = response.read()
        except httpx.DecodingError as exc:
            raise _mapped(exc, "GET", plain.endpoint.url.host, plain.shown) from exc
        self._http.cookies.extract_cookies(response)
        headers = Headers(response.headers.multi_items())
        return Response(status, headers, content, plain.shown, spec)

    async def _authenticate(self, spec: RequestSpec) -> RequestSpec:
        if self._auth is None:
            return spec
        async with self._auth_lock:  # one token request for every request waiting on it
            token_request = self._auth.token_request(self._clock())
            if token_request is not None:
                response = await self._exchange(self._build(token_request), token_request)
                self._auth.token_response(response, self._clock())
                self._emit("token", logging.INFO, f"token obtained from {token_request.url}")
        return self._auth.apply(spec)

    def _renew_credentials(self) -> bool:
        return self._auth is not None and self._auth.refused()

    async def _pace(self, host: str) -> None:
        now = self._clock()
        wait = self._quotas.wait(host, now)
        if self._limiter is not None:
            wait = max(wait, self._limiter.reserve(now))
        if wait > 0:
            self._emit("wait", logging.INFO, f"holding a request to {host} {wait:.2f}s", wait=wait)
            await self._sleep(wait)

    def _record(self, host: str, *, failed: bool) -> None:
        if self._breakers is None:
            return
        before = self._breakers.state(host)
        after = self._breakers.record(host, failed, self._clock())
        if after != before:
            message = f"the circuit breaker of {host} is {after}"
            self._emit("breaker", logging.WARNING, message, host=host, state=after)

    def _emit(self, name: str, level: int, message: str, **fields: Any) -> None:
        self._on_event(ClientEvent(name, level, message, fields))

    # -- lifetime ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _added_params(spec: RequestSpec, authed: RequestSpec) -> tuple[str, ...]:
    """The query parameters credentials added (an API key in the query)."""
    return tuple(name for name in authed.params if name not in spec.params)


def _mapped(exc: httpx.RequestError, method: str, host: str, url: str) -> QuiverClientError:
    """httpx's exception as the client's own."""
    match exc:
        case httpx.ConnectTimeout():
            return ConnectTimeout(f"connecting to {host} timed out", url=url)
        case httpx.PoolTimeout():
            return PoolTimeout("no pooled connection was free in time", url=url)
        case httpx.TimeoutException():
            return ReadTimeout(f"{method} {url} got no answer in time", url=url)
        case httpx.ConnectError():
            return ConnectError(f"cannot connect to {host}: {exc}", url=url)
        case httpx.UnsupportedProtocol():
            return InvalidURL(f"{url!r}: {exc}")
        case httpx.DecodingError():
            return DecodingError(f"{method} {url}: {exc}")
        case httpx.TooManyRedirects():
            return TooManyRedirects(f"{method} {url}: {exc}", url=url)
    return NetworkError(f"{method} {url}: {exc!r}", url=url)


def _url(raw: httpx.Request | None) -> httpx.URL:
    assert raw is not None
    return raw.url


def _field(fields: _Fields, name: bytes) -> bool:
    return any(field.lower() == name for field, _ in fields)


def _text(fields: _Fields) -> list[tuple[str, str]]:
    """Header fields as text, decoded as httpx decodes them (ASCII, else UTF-8, else
    Latin-1, for all of them)."""
    for encoding in ("ascii", "utf-8"):
        try:
            return [(name.decode(encoding), value.decode(encoding)) for name, value in fields]
        except UnicodeDecodeError:
            continue
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in fields]


def _shown(url: httpx.URL, hidden: tuple[str, ...]) -> str:
    for name in hidden:
        url = url.copy_remove_param(name)
    return str(url)
