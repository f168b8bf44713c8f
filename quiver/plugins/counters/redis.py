"""The ``redis`` counter store: exact across every node sharing a Redis.

Every ``take`` and ``settle`` is one call of one Lua script
(:mod:`.redis_script`) that decides for all the windows of a key at once, so two
nodes racing for the last unit cannot both get it.  Calls made while earlier ones
are on the wire are sent together, in one pipeline (one write, one round trip for
the lot), on at most :data:`MAX_BATCHES` connections per worker.

Time is the node's clock, passed to the script: nodes sharing a Redis need
synchronised clocks (NTP).  A node whose clock lags never moves a window back
(the rules keep the later state); it merely counts a little conservatively.

Failures: every call gives up after ``timeout`` seconds and raises
:class:`~quiver.plugins.counters.StoreUnavailable`, whose message names the Redis
without its password.  After a failure the store fails fast for :data:`BACKOFF`
seconds (``take`` raises at once, without touching the network), then tries again:
a dead Redis costs microseconds per request, not a connect timeout, and a Redis
that comes back is used again without a restart (redis-py drops a broken
connection and opens a new one).

Keys: ``<prefix>{<digest of the key>}:<window index>``.  The braces are a Cluster
hash tag, so every window of a key lives in one slot (the script needs them
together); the digest keeps consumer names and header values out of Redis and
bounds the key size.  Each expires when its state is worth no more than a fresh one.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from quiver.plugins.counters import StoreUnavailable, Verdict, Window
from quiver.plugins.counters.algorithms import usage
from quiver.plugins.counters.redis_script import SCRIPT, SETTLE, TAKE, decode, window_args
from quiver.plugins.counters.redis_url import MASK, connect, masked, parse, reason

BACKOFF = 0.5  # seconds of failing fast after a failure
MAX_BATCHES = 4  # pipelines in flight at once, each on its own connection
_DIGESTS = 4096  # key digests remembered per worker (keys repeat: consumers, addresses)

Command = tuple[list[bytes], list[Any], "asyncio.Future[list[bytes]]"]


class Backoff:
    """Fails calls fast for ``seconds`` after a failure, then lets them try again."""

    __slots__ = ("monotonic", "reason", "seconds", "until")

    def __init__(self, seconds: float, monotonic: Callable[[], float]) -> None:
        self.seconds = seconds
        self.monotonic = monotonic
        self.until = 0.0
        self.reason = ""

    def check(self) -> None:
        """Raises :class:`StoreUnavailable` while backing off."""
        if self.until and self.monotonic() < self.until:
            raise StoreUnavailable(self.reason)

    def failed(self, reason: str) -> None:
        self.until = self.monotonic() + self.seconds
        self.reason = f"{reason} (retrying in {self.seconds:g} s)"

    def answered(self) -> None:
        self.until = 0.0

    def close(self, reason: str) -> None:
        self.until, self.reason = math.inf, reason


class RedisCounters:
    """Counters in the Redis at ``url`` (see :mod:`.redis_url` for its forms).
    ``clock`` gives Unix seconds; ``monotonic`` times the back-off."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.25,
        prefix: str = "quiver:",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        backoff: float = BACKOFF,
    ) -> None:
        self.address = parse(url)
        self.url = masked(url)
        self.timeout = timeout
        self.prefix = prefix.encode()
        self.clock = clock
        self.backoff = Backoff(backoff, monotonic)
        self.sha = hashlib.sha1(SCRIPT.encode()).hexdigest()
        self._secrets = [
            secret
            for secret in (self.address.password, self.address.options.get("sentinel_password"))
            if secret
        ]
        self._client: Any = None
        self._others: list[Any] = []  # Sentinel connections, closed with the client
        self._digests: dict[bytes, bytes] = {}
        self._pending: list[Command] = []
        self._pending_since = 0.0
        self._scheduled = False
        self._in_flight = 0
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    def keys(self, key: bytes, count: int) -> list[bytes]:
        """The Redis keys of ``key``'s ``count`` windows."""
        base = self._digests.get(key)
        if base is None:
            if len(self._digests) >= _DIGESTS:
                self._digests.clear()
            name = hashlib.blake2b(key, digest_size=16).hexdigest().encode()
            base = self._digests[key] = b"%s{%s}:" % (self.prefix, name)
        return [b"%s%d" % (base, index) for index in range(count)]

    def take(self, key: bytes, windows: Sequence[Window], cost: int = 1) -> Awaitable[Verdict]:
        """Raises :class:`StoreUnavailable` at once while backing off after a failure;
        otherwise the awaitable does when Redis fails or is too slow."""
        self.backoff.check()
        now = self.clock()
        args = [now, cost, TAKE, *window_args(windows, now)]
        return self._verdict(windows, now, self._submit(self.keys(key, len(windows)), args))

    async def _verdict(
        self, windows: Sequence[Window], now: float, pending: asyncio.Future[list[bytes]]
    ) -> Verdict:
        wait, states = decode(await pending)
        spent = tuple(
            usage(window, state, now) for window, state in zip(windows, states, strict=True)
        )
        if wait == 0.0:
            return Verdict(True, spent)
        return Verdict(False, spent, wait)

    def settle(self, key: bytes, windows: Sequence[Window], delta: int) -> Awaitable[None] | None:
        if not delta:
            return None
        return self._settle(key, windows, delta)

    async def _settle(self, key: bytes, windows: Sequence[Window], delta: int) -> None:
        self.backoff.check()
        now = self.clock()
        args = [now, delta, SETTLE, *window_args(windows, now)]
        await self._submit(self.keys(key, len(windows)), args)

    def _submit(self, keys: list[bytes], args: list[Any]) -> asyncio.Future[list[bytes]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bytes]] = loop.create_future()
        if not self._pending:
            self._pending_since = loop.time()
        self._pending.append((keys, args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        """Send what is pending as one pipeline, unless enough are on the wire: then
        it waits for one of them and goes with whatever has joined it meanwhile."""
        self._scheduled = False
        if self._closed:
            for _, _, future in self._pending:
                if not future.done():
                    future.set_exception(StoreUnavailable(f"redis at {self.url}: closed"))
            self._pending = []
        if not self._pending or self._in_flight >= MAX_BATCHES:
            return
        batch, self._pending = self._pending, []
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(
            self._run(batch, self._pending_since + self.timeout)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[Command], deadline: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                replies = await self._execute(batch)
        except Exception as exc:  # whatever redis-py raises: the store is unavailable
            self.backoff.failed(self._describe(exc))
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(StoreUnavailable(self._describe(exc)))
        else:
            self.backoff.answered()
            for (_, _, future), reply in zip(batch, replies, strict=True):
                if future.done():
                    continue  # its caller is gone
                if isinstance(reply, Exception):  # this key's trouble, not the store's
                    future.set_exception(StoreUnavailable(self._describe(reply)))
                else:
                    future.set_result(reply)
        finally:
            self._in_flight -= 1
            for _, _, future in batch:
                if not future.done():  # cancelled: the worker is stopping
                    future.set_exception(StoreUnavailable(f"redis at {self.url}: closed"))
            if self._pending and not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._flush)

    async def _execute(self, batch: list[Command]) -> list[Any]:
        """The replies to ``batch`` (an exception for a call that failed alone): EVALSHA
        for each, then EVAL for those the Redis did not know the script for (it
        restarted, or failed over to a replica that never ran it)."""
        if self._client is None:
            self._client, self._others = connect(self.address, self.timeout)
        replies = await self._send("EVALSHA", self.sha, batch)
        unknown = [index for index, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if unknown:
            again = await self._send("EVAL", SCRIPT, [batch[index] for index in unknown])
            for index, reply in zip(unknown, again, strict=True):
                replies[index] = reply
        return replies

    async def _send(self, command: str, script: str, batch: list[Command]) -> list[Any]:
        client = self._client
        if len(batch) == 1:  # no pipeline to build for a lone call
            keys, args, _ = batch[0]
            try:
                return [await client.execute_command(command, script, len(keys), *keys, *args)]
            except ResponseError as exc:
                return [exc]
        pipe = client.pipeline(transaction=False)
        for keys, args, _ in batch:
            pipe.execute_command(command, script, len(keys), *keys, *args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    def _describe(self, exc: BaseException) -> str:
        """What went wrong, for a log line: never with a password in it."""
        if isinstance(exc, TimeoutError) and not str(exc):
            text = f"redis at {self.url}: TimeoutError: no answer within {self.timeout:g} s"
        else:
            text = f"redis at {self.url}: {reason(exc)}"
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    async def aclose(self) -> None:
        """Stop what is in flight and close the connections."""
        self._closed = True
        self.backoff.close(f"redis at {self.url}: closed")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client, self._client = self._client, None
        others, self._others = self._others, []
        for connection in [client, *others] if client is not None else others:
            await connection.aclose()
