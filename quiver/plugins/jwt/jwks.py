"""The keys of a JWK Set URL, fetched when needed and refreshed without a restart."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

from quiver.plugins.jwt.fetch import FetchError, fetch
from quiver.plugins.jwt.keys import KeyIndex, VerificationKey, parse_jwks

log = logging.getLogger("quiver.plugins.jwt")


class JwksCache:
    """Signing keys from ``url``, fetched when a token first needs them.

    The set is fetched again when a token names a ``kid`` it lacks (so keys can be
    rotated without a restart) or, in the background, once it is older than ``ttl``;
    but never sooner than ``min_refresh`` after the previous fetch, so tokens with
    made-up ``kid`` values cannot make the gateway hammer the key server. Requests
    that need a fetch while one is under way wait for that one. A failed fetch keeps
    the keys already known.
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: frozenset[str],
        min_refresh: float,
        ttl: float,
        timeout: float,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self.min_refresh = min_refresh
        self.ttl = ttl
        self.timeout = timeout
        self.keys: KeyIndex = {}
        self.fetches = 0
        self._started: float | None = None  # monotonic time the last fetch began
        self._loaded: float | None = None  # ... and the last one that succeeded ended
        self._fetching: asyncio.Future[None] | None = None
        self._tls: ssl.SSLContext | None = None

    def find(self, kid: str | None, algorithm: str) -> VerificationKey | None:
        for key in self.keys.get(kid, ()):
            if algorithm in key.algorithms:
                return key
        return None

    def may_fetch(self) -> bool:
        """Whether a request missing a key may wait for a fetch now."""
        if self._fetching is not None or self._started is None:
            return True
        return time.monotonic() - self._started >= self.min_refresh

    def refresh_if_stale(self) -> None:
        """Start a background fetch when the keys are older than ``ttl``."""
        loaded = self._loaded
        if loaded is None or self._fetching is not None:
            return
        if time.monotonic() - loaded >= self.ttl and self.may_fetch():
            self._start()

    async def refresh(self) -> None:
        """Fetch the set, or wait for the fetch under way."""
        # shielded: a request that goes away does not cancel the fetch others wait for
        fetching = self._fetching if self._fetching is not None else self._start()
        await asyncio.shield(fetching)

    def _start(self) -> asyncio.Future[None]:
        fetching = self._fetching = asyncio.ensure_future(self._fetch())
        fetching.add_done_callback(self._fetched)
        return fetching

    def _fetched(self, _: asyncio.Future[None]) -> None:
        self._fetching = None

    async def _fetch(self) -> None:
        self._started = time.monotonic()
        self.fetches += 1
        if self._tls is None and self.url.startswith("https:"):
            self._tls = ssl.create_default_context()
        try:
            body = await fetch(self.url, timeout=self.timeout, tls=self._tls)
            keys = parse_jwks(body, self.algorithms)
        except (OSError, FetchError, ValueError) as exc:  # TimeoutError is an OSError
            known = sum(len(keys) for keys in self.keys.values())
            reason = str(exc) or type(exc).__name__
            log.warning("JWKS %s not fetched (%s); %d keys kept", self.url, reason, known)
            return
        self.keys = keys
        self._loaded = time.monotonic()
