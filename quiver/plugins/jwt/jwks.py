"""The keys of a JWK Set URL, fetched when needed and refreshed without a restart."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from quiver.errors import HTTPError
from quiver.plugins.jwt.keys import KeyIndex, VerificationKey, parse_jwks
from quiver.plugins.outbound import Outbound

log = logging.getLogger("quiver.plugins.jwt")

MAX_SIZE = 1024 * 1024  # a key set larger than this is refused
_ACCEPT = {"Accept": "application/jwk-set+json, application/json"}
_REPORTED_MAX = 256  # skipped keys remembered so that each is logged once


class FetchError(Exception):
    """The key set could not be fetched; the message says why (caught in this module)."""


class JwksCache:
    """Signing keys from ``url``, fetched when a token first needs them.

    The set is fetched again when a token names a ``kid`` it lacks (so keys can be
    rotated without a restart) or, in the background, once it is older than ``ttl``;
    but never sooner than ``min_refresh`` after the previous fetch, so tokens with
    made-up ``kid`` values cannot make the gateway hammer the key server. Requests
    that need a fetch while one is under way wait for that one. A failed fetch keeps
    the keys already known, and so does a document that cannot be read; a key that
    cannot be used is skipped (and logged once) while the others are taken.

    ``clock`` (monotonic seconds) times refreshes; ``on_change`` is called whenever a
    fetch brings a set that differs from the one in use.
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: frozenset[str],
        min_refresh: float,
        ttl: float,
        timeout: float,
        outbound: Outbound | None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self.min_refresh = min_refresh
        self.ttl = ttl
        self.timeout = timeout
        self.outbound = outbound
        self.clock = clock
        self.on_change = on_change
        self.keys: KeyIndex = {}
        self.fetches = 0
        self._body: bytes | None = None  # the document the keys were read from
        self._started: float | None = None  # clock time the last fetch began
        self._loaded: float | None = None  # ... and the last one that succeeded ended
        self._fetching: asyncio.Future[None] | None = None
        self._reported: set[str] = set()

    def find(self, kid: str | None, algorithm: str) -> VerificationKey | None:
        for key in self.keys.get(kid, ()):
            if algorithm in key.algorithms:
                return key
        return None

    def may_fetch(self) -> bool:
        """Whether a request missing a key may wait for a fetch now."""
        if self._fetching is not None or self._started is None:
            return True
        return self.clock() - self._started >= self.min_refresh

    def refresh_if_stale(self) -> None:
        """Start a background fetch when the keys are older than ``ttl``."""
        loaded = self._loaded
        if loaded is None or self._fetching is not None:
            return
        if self.clock() - loaded >= self.ttl and self.may_fetch():
            self._start()

    async def refresh(self) -> None:
        """Fetch the set, or wait for the fetch under way."""
        # shielded: a request that goes away does not cancel the fetch others wait for
        fetching = self._fetching if self._fetching is not None else self._start()
        await asyncio.shield(fetching)

    async def settle(self) -> None:
        """Wait for the fetch under way, if there is one."""
        if self._fetching is not None:
            await asyncio.shield(self._fetching)

    def _start(self) -> asyncio.Future[None]:
        fetching = self._fetching = asyncio.ensure_future(self._fetch())
        fetching.add_done_callback(self._fetched)
        return fetching

    def _fetched(self, _: asyncio.Future[None]) -> None:
        self._fetching = None

    async def _fetch(self) -> None:
        """Fetch and read the set; whatever goes wrong is logged and the old keys kept
        (this is a fault boundary: requests wait on it)."""
        self._started = self.clock()
        self.fetches += 1
        try:
            body = await self._download()
            same = body == self._body
            keys = self.keys if same else parse_jwks(body, self.algorithms, self._skip)
        except (HTTPError, FetchError, ValueError) as exc:
            self._keep(str(exc) or type(exc).__name__)
            return
        except Exception as exc:
            log.exception("JWKS %s could not be used", self.url)
            self._keep(f"unexpected {type(exc).__name__}")
            return
        self._loaded = self.clock()
        if body != self._body:
            changed = self._body is not None
            self._body, self.keys = body, keys
            if changed and self.on_change is not None:
                self.on_change()

    async def _download(self) -> bytes:
        if self.outbound is None:
            raise FetchError("no HTTP client here to fetch it with")
        outbound = self.outbound
        async with await outbound.request(
            "GET", self.url, headers=_ACCEPT, timeout=self.timeout
        ) as response:
            # redirects are not followed: the key set's URL is configured, not discovered
            if response.status != 200:
                raise FetchError(f"HTTP status {response.status}")
            return await response.read(limit=MAX_SIZE)

    def _keep(self, reason: str) -> None:
        known = sum(len(keys) for keys in self.keys.values())
        log.warning("JWKS %s not fetched (%s); %d keys kept", self.url, reason, known)

    def _skip(self, key: str, reason: str) -> None:
        message = f"{key}: {reason}"
        if message in self._reported:
            return
        if len(self._reported) < _REPORTED_MAX:
            self._reported.add(message)
        log.warning("JWKS %s: key %s skipped: %s", self.url, key, reason)
