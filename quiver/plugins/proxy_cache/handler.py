"""``proxy-cache``: the phases; the rules live in the sibling modules."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable

from quiver.errors import Answer, NotCached
from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.proxy_cache import directives, freshness
from quiver.plugins.proxy_cache.answers import Answers
from quiver.plugins.proxy_cache.config import ProxyCacheConfig
from quiver.plugins.proxy_cache.directives import Directives
from quiver.plugins.proxy_cache.entry import Entry, Stored, Variants
from quiver.plugins.proxy_cache.fields import Fields
from quiver.plugins.proxy_cache.keys import KeyMaker, location_ids, variant, vary_names
from quiver.plugins.proxy_cache.shared import backend_for
from quiver.plugins.proxy_cache.stores import StoreUnavailable
from quiver.plugins.proxy_cache.visit import Visit
from quiver.plugins.response import ResponseHead

NAME = "proxy-cache"
#: how often a request waiting for another process's fetch looks for its entry
POLL_INTERVAL = 0.05
_UNSAFE = frozenset({b"POST", b"PUT", b"DELETE", b"PATCH"})
NO_ASKS = directives.NONE
NO_VALIDATORS = (None, None)


class ProxyCache(Plugin[ProxyCacheConfig]):
    """An HTTP cache shared by the route's clients (RFC 9111): GET responses are
    stored by the rules of a shared cache (Cache-Control max-age, s-maxage, no-store,
    no-cache, private, must-revalidate; Expires; Vary; Authorization) and answered
    from the access phase while fresh, with an Age header; HEAD is answered from
    them. Stale entries with ETag or Last-Modified are revalidated with a conditional
    request; a 304 refreshes them. Concurrent misses for a key wait for one fetch.
    POST, PUT, DELETE and PATCH invalidate the entries of their URL. Every response
    of the route says what happened in X-Cache-Status (HIT, MISS, EXPIRED, STALE,
    BYPASS, REVALIDATED). See docs/traffic-control.md, "Response cache"."""

    name = NAME
    priority = 100
    Config = ProxyCacheConfig

    def __init__(self, config: ProxyCacheConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.backend = backend_for(config, context.stores)
        self.store = self.backend.store
        self.flights = self.backend.flights
        self.keys = KeyMaker(config)
        self.rules = freshness.Rules.of(config)
        self.answers = Answers(config.status_header)

    # -- access -------------------------------------------------------------------

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        method = request.method
        if method != b"GET" and method != b"HEAD":
            visit = request.ctx[NAME] = Visit("BYPASS", directives.NONE)
            visit.invalidate = method in _UNSAFE
            return None
        fields = Fields(request.headers)
        asked = directives.parse(fields.cache_control) if fields.cache_control else NO_ASKS
        if asked.no_store:  # neither stored nor answered from the cache (§5.2.1.5)
            request.ctx[NAME] = Visit("BYPASS", asked)
            return None
        key, path_id = self.keys.identify(request, fields.host)
        if not self.store.immediate:
            visit = request.ctx[NAME] = Visit("MISS", asked, key, path_id)
            return self._look_up(request, visit, follow=True)
        found = self.store.get_now(key)
        if isinstance(found, Variants):
            found = self.store.get_now(variant(key, found.names, request))
        if isinstance(found, Entry):  # the hot path: a HIT, answered at once
            now = time.time()
            if asked is NO_ASKS and now < found.plain_until and fields.validators == NO_VALIDATORS:
                age = found.initial_age + now - found.stored_at  # (§4.2.3)
                head = found.head_at(int(age), self.answers.hit)
                request.report_cache_status("HIT")
                raise Answer(found.status, head=head, body=found.body)
            age = found.age(now)
            if freshness.usable(found, age, asked):
                request.report_cache_status("HIT")
                raise self.answers.of(found, age, "HIT", fields.validators)
        visit = request.ctx[NAME] = Visit("MISS", asked, key, path_id)
        return self._decide(request, visit, found, follow=True)

    async def _look_up(self, request: PluginRequest, visit: Visit, *, follow: bool) -> None:
        try:
            found: Stored | None = await self.store.get(visit.key)
            if isinstance(found, Variants):
                found = await self.store.get(variant(visit.key, found.names, request))
        except StoreUnavailable as exc:
            self.backend.unavailable(exc)
            visit.label = "BYPASS"
            visit.writable = False
            if visit.directives.only_if_cached:
                raise NotCached("the response cache cannot be reached") from exc
            return
        waiting = self._decide(request, visit, found, follow=follow)
        if waiting is not None:
            await waiting
        elif visit.flight is not None:  # this worker fetches the key: other processes?
            await self._lead_everywhere(request, visit)

    async def _lead_everywhere(self, request: PluginRequest, visit: Visit) -> None:
        """Take the store's lock on the key; when another process holds it, wait for
        the entry it stores (looked for every POLL_INTERVAL, answered as a HIT) up to
        ``coalesce_timeout``, then fetch anyway."""
        store = self.store
        try:
            visit.locked = await store.lock(visit.key, self.config.coalesce_timeout)
            if visit.locked:
                # the lock may have come free because its holder just stored the entry
                await self._take_stored(request, visit)
                return
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.config.coalesce_timeout
            while loop.time() < deadline:
                await asyncio.sleep(POLL_INTERVAL)
                if await self._take_stored(request, visit):
                    return  # stored, but not good enough for this request: fetch
        except StoreUnavailable as exc:
            self.backend.unavailable(exc)

    def _decide(
        self, request: PluginRequest, visit: Visit, found: Stored | None, *, follow: bool
    ) -> Awaitable[None] | None:
        """Answer from ``found`` when it may, else send the request on its way."""
        now = time.time()
        entry = found if isinstance(found, Entry) else None
        asked = visit.directives
        if entry is not None:
            self._serve(request, entry, asked, now)
            visit.entry = entry
        if asked.only_if_cached:
            raise NotCached("the response cache holds no fresh response for this request")
        if follow and visit.key in self.flights.waiting:
            return self._follow(request, visit)
        if request.method == b"GET":
            flight = visit.flight = self.flights.lead(visit.key)
            if flight is not None:
                # an exchange that ends without storing anything (cut off, failed
                # after its head) lets its followers go once it is dropped
                ending = weakref.finalize(visit, self.flights.land, visit.key, flight, None)
                ending.atexit = False  # (at exit the loop is gone: nobody waits)
            request.tap_body(visit.receive)
        if entry is not None:
            visit.label = "EXPIRED"
            self._validate(request, visit, entry)
        visit.request_time = now
        return None

    def _serve(self, request: PluginRequest, entry: Entry, asked: Directives, now: float) -> None:
        """Answer from ``entry`` (raise) when it may answer this request as it is."""
        age = entry.age(now)
        if freshness.usable(entry, age, asked):
            validators = (request.get(b"if-none-match"), request.get(b"if-modified-since"))
            request.report_cache_status("HIT")
            raise self.answers.of(entry, age, "HIT", validators)

    async def _follow(self, request: PluginRequest, visit: Visit) -> None:
        """Another request fetches this key: wait for it, then look again."""
        await self.flights.follow(visit.key, self.config.coalesce_timeout)
        if self.store.immediate:
            found = self.store.get_now(visit.key)
            if isinstance(found, Variants):
                found = self.store.get_now(variant(visit.key, found.names, request))
            self._decide(request, visit, found, follow=False)
        else:
            await self._look_up(request, visit, follow=False)

    def _validate(self, request: PluginRequest, visit: Visit, entry: Entry) -> None:
        """Ask the node whether ``entry`` is still good (§4.3.1), with its validators
        in place of the client's (kept to answer the client in the end)."""
        etag = entry.get(b"etag")
        modified = entry.get(b"last-modified")
        if etag is None and modified is None:
            return
        visit.client_validators = (request.get(b"if-none-match"), request.get(b"if-modified-since"))
        request.remove_header(b"if-none-match")
        request.remove_header(b"if-modified-since")
        if etag is not None:
            request.set_header(b"If-None-Match", etag)
        if modified is not None:
            request.set_header(b"If-Modified-Since", modified)
        visit.validating = True

    # -- response -----------------------------------------------------------------

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        visit: Visit | None = request.ctx.get(NAME)
        if visit is None:  # refused before this plugin ran
            request.report_cache_status("BYPASS")
            self._label(response, "BYPASS")
            return
        if visit.invalidate:
            if 200 <= response.status < 400:
                self._invalidate(request, response)
        elif visit.key:
            self._on_response(request, response, visit)
        request.report_cache_status(visit.label)
        self._label(response, visit.label)

    def _on_response(self, request: PluginRequest, response: ResponseHead, visit: Visit) -> None:
        status = response.status
        entry = visit.entry
        now = time.time()
        if entry is not None:
            if status == 304 and visit.validating:
                fresh = freshness.refreshed(self.rules, entry, response, now)
                if fresh.vary:
                    visit.variant_key = variant(visit.key, fresh.vary, request)
                self._store(visit, fresh)
                request.report_cache_status("REVALIDATED")
                raise self.answers.of(fresh, fresh.age(now), "REVALIDATED", visit.client_validators)
            if status >= 500 and freshness.serves_on_error(entry, entry.age(now)):
                self._land(visit, None)
                request.report_cache_status("STALE")
                raise self.answers.of(entry, entry.age(now), "STALE", (None, None))
        if visit.flight is None or not visit.writable:
            return
        cc = directives.parse(response.get(b"cache-control"))
        authorized = request.get(b"authorization") is not None
        life = None
        if freshness.refusal(self.rules, response, cc, visit.directives, authorized) is None:
            life = freshness.lifetime(self.rules, response, cc, now)
        length = response.get(b"content-length")
        if life is None or (length is not None and _too_long(length, self.config.max_entry_size)):
            self._land(visit, None)
            return
        names = vary_names(response.get(b"vary"))
        if names:
            visit.variant_key = variant(visit.key, names, request)
        draft = freshness.build(self.rules, response, cc, life, (visit.request_time, now), names)
        if not freshness.worth_keeping(draft):
            self._land(visit, None)
            return
        visit.collect(draft, self.config.max_entry_size, self._store)

    def _store(self, visit: Visit, entry: Entry | None) -> None:
        """Keep ``entry`` (None: nothing to keep) and let the followers go on."""
        if entry is None or not visit.writable:
            self._land(visit, None)
            return
        ttl = max(0.0, entry.lifetime - entry.initial_age) + self.config.keep_stale
        key = visit.key
        writes: list[tuple[str, Stored]] = []
        if entry.vary:
            writes.append((key, Variants(entry.vary)))
            key = visit.variant_key
        writes.append((key, entry))
        if self.store.immediate:
            for name, value in writes:
                self.store.put_now(name, value, ttl, visit.path_id)
            self._land(visit, entry)
            return
        self.backend.spawn(self._write(visit, writes, ttl, entry))

    async def _write(
        self, visit: Visit, writes: list[tuple[str, Stored]], ttl: float, entry: Entry
    ) -> None:
        try:
            for name, value in writes:
                await self.store.put(name, value, ttl, visit.path_id)
        finally:
            self._land(visit, entry)

    async def _take_stored(self, request: PluginRequest, visit: Visit) -> bool:
        """Serve the entry another process stored for the key, if there is one now."""
        found = await self.store.get(visit.key)
        if isinstance(found, Variants):
            found = await self.store.get(variant(visit.key, found.names, request))
        if not isinstance(found, Entry):
            return False
        self._land(visit, found)  # (this worker's followers take it too)
        self._serve(request, found, visit.directives, time.time())
        return True

    def _land(self, visit: Visit, entry: Entry | None) -> None:
        flight = visit.flight
        if flight is not None:
            visit.flight = None
            self.flights.land(visit.key, flight, entry)
        if visit.locked:
            visit.locked = False
            self.backend.spawn(self.store.unlock(visit.key))

    def _invalidate(self, request: PluginRequest, response: ResponseHead) -> None:
        """A successful unsafe request changed its URL and maybe the ones it names
        (RFC 9111 §4.4): their entries go, on this host only."""
        path_id = self.keys.path_id(request)
        host, _, path = path_id.partition(" ")
        host = host or (request.get(b"host") or b"").decode("latin-1").lower()
        ids = {f"{host} {path}", f" {path}"}
        for name in (b"location", b"content-location"):
            for found in location_ids(response.get(name), host, keep_host=True):
                ids.update((found, " " + found.partition(" ")[2]))
        if self.store.immediate:
            self.store.invalidate_now(ids)
        else:
            self.backend.spawn(self._invalidate_later(ids))

    async def _invalidate_later(self, ids: set[str]) -> None:
        await self.store.invalidate(ids)

    def _label(self, response: ResponseHead, label: str) -> None:
        if self.config.status_header:
            response.set(self.config.status_header.encode(), label.encode())


def _too_long(length: bytes, limit: int) -> bool:
    return not length.strip().isdigit() or int(length) > limit
