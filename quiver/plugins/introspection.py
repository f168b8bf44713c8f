"""Token introspection answers, cached and shared.

An :class:`Introspector` asks the endpoint about a token at most once at a time:
requests that arrive with the same token while a question is out wait for that
one answer instead of sending their own (no thundering herd when a busy client's
token leaves the cache).  Answers are kept by a keyed hash of the token, so the
cache never holds a token in clear and a memory dump cannot even confirm a
guessed one:

* an active token until its ``exp`` (RFC 7662 §2.2), never longer than ``ttl_max``;
* an inactive one for ``negative_ttl``, so a client repeating a dead token does
  not turn every request into a call to the endpoint;
* a failed question (endpoint down, slow or confused) not at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from quiver.plugins.introspection_client import IntrospectionClient

T = TypeVar("T")

INACTIVE: Mapping[str, Any] = {"active": False}


class VerdictCache(Generic[T]):
    """At most ``max_entries`` values, each until its own expiry; the least recently
    used goes first when full."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._secret = os.urandom(32)
        self._entries: OrderedDict[bytes, tuple[float, T]] = OrderedDict()

    def key(self, token: bytes) -> bytes:
        return hashlib.blake2b(token, key=self._secret, digest_size=32).digest()

    def get(self, key: bytes) -> T | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: bytes, value: T, ttl: float) -> None:
        self._entries[key] = (self.clock() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Introspector(Generic[T]):
    """Answers "may this token pass?" from the cache or, at most once at a time per
    token, from the endpoint.

    ``judge`` turns the endpoint's claims into what the caller keeps (it sees
    ``{"active": False}`` for a token that is inactive or already expired), once per
    answer rather than once per request::

        introspector = Introspector(client, judge=lambda claims: claims["active"],
                                    ttl_max=60, negative_ttl=5, max_entries=10_000)
        key = introspector.key(token)
        allowed = introspector.cached(key)
        if allowed is None:
            allowed = await introspector.introspect(key, token)
    """

    def __init__(
        self,
        client: IntrospectionClient,
        *,
        judge: Callable[[Mapping[str, Any]], T],
        ttl_max: float,
        negative_ttl: float,
        max_entries: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.judge = judge
        self.ttl_max = ttl_max
        self.negative_ttl = negative_ttl
        # wall-clock seconds: answers carry their expiry as a date ("exp")
        self.cache: VerdictCache[T] = VerdictCache(max_entries, clock)
        self._pending: dict[bytes, asyncio.Task[T]] = {}

    def key(self, token: bytes) -> bytes:
        return self.cache.key(token)

    def cached(self, key: bytes) -> T | None:
        return self.cache.get(key)

    async def introspect(self, key: bytes, token: bytes) -> T:
        """The verdict on ``token``, asking the endpoint unless a question is already out."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._ask(key, token))
            self._pending[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        # a client that leaves must not cancel the answer other requests wait for
        return await asyncio.shield(task)

    async def _ask(self, key: bytes, token: bytes) -> T:
        claims: Mapping[str, Any] = await self.client.introspect(token)
        ttl = self.negative_ttl
        if claims["active"]:
            ttl = self.ttl_max
            exp = claims.get("exp")
            if exp is not None:
                ttl = min(ttl, exp - self.cache.clock())
                if ttl <= 0:  # the endpoint says active, its own expiry says otherwise
                    claims, ttl = INACTIVE, self.negative_ttl
        verdict = self.judge(claims)
        if ttl > 0:
            self.cache.put(key, verdict, ttl)
        return verdict

    def _settled(self, key: bytes, task: asyncio.Task[T]) -> None:
        if self._pending.get(key) is task:
            del self._pending[key]
        if not task.cancelled():
            task.exception()  # retrieved, even when every waiting request has left
