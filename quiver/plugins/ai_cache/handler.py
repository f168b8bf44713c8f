"""``ai-cache``: the phases."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine
from typing import Any

import orjson

from quiver.errors import Answer
from quiver.plugins.ai_cache.answers import complete, media_type
from quiver.plugins.ai_cache.config import AICacheConfig
from quiver.plugins.ai_cache.keys import cache_key, decide
from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.json_body import is_identity
from quiver.plugins.proxy_cache.entry import Entry
from quiver.plugins.proxy_cache.stores import Store, StoreUnavailable
from quiver.plugins.response import ResponseHead

NAME = "ai-cache"
log = logging.getLogger("quiver.plugins")
#: a failing Redis is reported at most once per this many seconds
WARN_INTERVAL = 60.0
#: the response fields an answer is stored with
_KEPT_FIELDS = (b"content-type",)


class Pending:
    """A MISS on its way: the key, then the answer's head and body as they come."""

    __slots__ = ("body", "fields", "key", "kind", "size", "storing")

    def __init__(self, key: str) -> None:
        self.key = key
        self.storing = False  # the response is one to keep
        self.kind = b""
        self.fields: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.size = 0


class Backend:
    """A store with the worker-wide state that goes with it: the writes in flight
    and the throttle of failure warnings (kept in the worker's stores, so a config
    reload keeps the answers)."""

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop | None) -> None:
        self.store = store
        self.loop = loop
        self.tasks: set[asyncio.Task[None]] = set()
        self.warned_at = -WARN_INTERVAL

    def unavailable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self.warned_at >= WARN_INTERVAL:
            self.warned_at = now
            log.warning(
                "%s: the %s backend failed (%s); requests bypass the cache "
                "(reported at most once a minute)",
                NAME,
                self.store.name,
                exc,
            )

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        loop = self.loop or asyncio.get_running_loop()
        task = loop.create_task(self._guarded(work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except StoreUnavailable as exc:
            self.unavailable(exc)

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.store.aclose()


def _open(config: AICacheConfig) -> Store:
    if config.backend == "redis":
        from quiver.plugins.proxy_cache.stores.redis import RedisStore

        assert config.redis is not None
        redis = config.redis
        return RedisStore(redis.url, redis.prefix + "ai-cache:", redis.timeout)
    from quiver.plugins.proxy_cache.stores.memory import MemoryStore

    return MemoryStore(config.memory_size)


class AICache(Plugin[AICacheConfig]):
    """Answers a deterministic request again from the answer to the same request
    made before, without calling the model: a request is deterministic when its
    JSON body has `temperature: 0`, or when the client sends `X-Quiver-Cache: on`
    (`off` bypasses the cache). The key is the front (method, path, query), the Accept
    header, the consumer with `per_consumer`, and the request body normalised (keys sorted,
    spacing gone, `user` and `metadata` left out), so the model and every setting
    are in it. Only whole, successful answers are stored: a 200 JSON object without
    an `error`, or a stream that ended as its format ends one (OpenAI `data: [DONE]`,
    Anthropic `message_stop`, Responses `response.completed`); a streamed answer is
    replayed as the same server-sent events. Answers are stored as the client got
    them, after the guardrails' edits; the cache runs after the guardrails, so a
    refused prompt never gets a cached answer. Every answer says HIT, MISS or BYPASS
    in X-Cache-Status, e.g. `{backend: redis, redis: {url: "redis://127.0.0.1:6379/0"},
    ttl: 1h, per_consumer: true}`. A HIT costs no tokens: budgets and limits are not
    charged for it."""

    name = NAME
    priority = 90  # after everything that may refuse or rewrite the request
    Config = AICacheConfig
    reads_body = True

    def __init__(self, config: AICacheConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        key = (NAME, config.backend, config.memory_size if config.redis is None else config.redis)
        self.backend = context.stores.keep(key, lambda: Backend(_open(config), context.stores.loop))
        self.store = self.backend.store
        self.ignored = frozenset(config.ignored_fields)
        self.opt_in = config.opt_in_header.lower().encode()
        status = config.status_header.encode()
        self.labels = (
            {label: status + b": " + label for label in (b"HIT", b"MISS", b"BYPASS")}
            if status
            else {}
        )
        #: the status field of a HIT's head, rendered once
        self.hit_field = self.labels[b"HIT"] + b"\r\n" if status else b""

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        opt_in = request.get(self.opt_in)
        if opt_in is not None:
            request.remove_header(self.opt_in)
        body = request.body
        parsed: Any = None
        if request.method == b"POST" and body and is_identity(request.get(b"content-encoding")):
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed = None
        if not isinstance(parsed, dict) or decide(parsed, opt_in) == "bypass":
            self._label(request, b"BYPASS")
            return None
        key = cache_key(request, parsed, self.ignored, self.config.per_consumer)
        if self.store.immediate:
            self._answer(request, key, self.store.get_now(key))
            return None
        return self._look_up(request, key)

    async def _look_up(self, request: PluginRequest, key: str) -> None:
        try:
            found = await self.store.get(key)
        except StoreUnavailable as exc:
            self.backend.unavailable(exc)
            self._label(request, b"BYPASS")
            return
        self._answer(request, key, found)

    def _answer(self, request: PluginRequest, key: str, found: object) -> None:
        """Answer from ``found`` (raise) when it is an answer, else go on as a MISS."""
        if isinstance(found, Entry):
            request.report_cache_status("HIT")
            age = int(max(0.0, time.time() - found.stored_at))
            raise Answer(found.status, head=found.head_at(age, self.hit_field), body=found.body)
        pending = request.ctx[NAME] = Pending(key)
        request.tap_body(lambda chunk, last: self._receive(pending, chunk, last))
        self._label(request, b"MISS")

    def _label(self, request: PluginRequest, label: bytes) -> None:
        request.report_cache_status(label.decode())
        field = self.labels.get(label)
        if field is not None:
            name, _, value = field.partition(b": ")
            request.add_response_field(name, value, replace=True)

    def response_headers(self, request: PluginRequest, response: ResponseHead) -> None:
        pending: Pending | None = request.ctx.get(NAME)
        if pending is None or response.status != 200:
            return
        kind = media_type(response.get(b"content-type"))
        if (
            kind in (b"application/json", b"text/event-stream")
            and is_identity(response.get(b"content-encoding"))
            and response.get(b"set-cookie") is None
        ):
            pending.storing = True
            pending.kind = kind
            pending.fields = [
                (name, value) for name, value in response.fields if name.lower() in _KEPT_FIELDS
            ]

    def _receive(self, pending: Pending, chunk: bytes, last: bool) -> None:
        if not pending.storing:
            return
        if chunk:
            pending.size += len(chunk)
            if pending.size > self.config.max_entry_size:
                pending.storing = False
                pending.body = []
                return
            pending.body.append(chunk)
        if last:
            pending.storing = False
            body = b"".join(pending.body)
            pending.body = []
            if complete(pending.kind, body):
                self._store(pending.key, pending.fields, body)

    def _store(self, key: str, fields: list[tuple[bytes, bytes]], body: bytes) -> None:
        ttl = self.config.ttl
        entry = Entry(200, fields, body, stored_at=time.time(), initial_age=0.0, lifetime=ttl)
        if self.store.immediate:
            self.store.put_now(key, entry, ttl, key)
        else:
            self.backend.spawn(self.store.put(key, entry, ttl, key))
