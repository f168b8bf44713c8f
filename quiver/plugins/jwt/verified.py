"""Tokens verified recently: a repeated token skips parsing and its signature check.

Like Envoy's ``jwt_authn`` cache, an entry holds what the verification concluded
(the token's signature, issuer and audience are good, and who it identifies),
never the token itself: entries are found by a keyed hash of its bytes.  What
depends on the time, ``exp`` and ``nbf``, is checked again on every use, and the
owner drops every entry when the keys that verified them change.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Verified(Generic[T]):
    """A verified token: when it stops being valid, and what it means for requests."""

    expires: float | None  # wall-clock time from which it is expired (exp + leeway)
    starts: float | None  # wall-clock time before which it is not valid yet (nbf - leeway)
    from_jwks: bool  # verified by a key of the JWK Set (which may rotate)
    value: T


class VerifiedTokens(Generic[T]):
    """At most ``max_entries`` verified tokens; the oldest goes first when full."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._secret = os.urandom(32)
        self._entries: dict[bytes, Verified[T]] = {}

    def key(self, token: bytes) -> bytes:
        """The key of ``token``: a hash no one without this cache's secret can compute."""
        return hashlib.blake2b(token, key=self._secret, digest_size=16).digest()

    def get(self, key: bytes) -> Verified[T] | None:
        return self._entries.get(key)

    def put(self, key: bytes, entry: Verified[T]) -> None:
        entries = self._entries
        if len(entries) >= self.max_entries and key not in entries:
            del entries[next(iter(entries))]  # the oldest (dicts keep insertion order)
        entries[key] = entry

    def drop(self, key: bytes) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
