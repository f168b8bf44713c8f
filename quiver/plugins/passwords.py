"""Password hashes for basic-auth: scrypt (RFC 7914), which makes each guess cost tens
of milliseconds.  A plaintext password from the config is hashed when it loads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from quiver.config.consumers import decode_base64

_SCRYPT_HASH = re.compile(
    r"^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$"
)
SCRYPT_MIN_N = 2**14
SCRYPT_MAX_MEMORY = 64 * 1024 * 1024  # for the 128 * r * n bytes of scryptROMix (RFC 7914 §5)


def check_scrypt_hash(text: str) -> None:
    """Raise ValueError unless ``text`` is ``scrypt$n$r$p$salt$hash`` with sane parameters."""
    match = _SCRYPT_HASH.match(text)
    if match is None:
        raise ValueError(
            "password_hash must look like scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>"
        )
    n, r, p = (int(group) for group in match.group(1, 2, 3))
    if n < SCRYPT_MIN_N or n & (n - 1):
        raise ValueError(f"scrypt n must be a power of two, at least {SCRYPT_MIN_N}")
    if r < 1 or not 1 <= p <= 16 or 128 * n * r > SCRYPT_MAX_MEMORY:
        raise ValueError("scrypt r and p must be at least 1, p at most 16, 128*n*r at most 64 MiB")
    salt, digest = decode_base64(match.group(4)), decode_base64(match.group(5))
    if len(salt) < 16 or not 16 <= len(digest) <= 64:
        raise ValueError("scrypt salt must be at least 16 bytes and the hash 16 to 64 bytes")


class PasswordHash:
    """scrypt(password, salt), written ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (base64)."""

    __slots__ = ("digest", "n", "p", "r", "salt")

    def __init__(self, n: int, r: int, p: int, salt: bytes, digest: bytes) -> None:
        self.n, self.r, self.p, self.salt, self.digest = n, r, p, salt, digest

    @classmethod
    def create(cls, password: bytes, *, n: int = 2**14, r: int = 8, p: int = 1) -> PasswordHash:
        salt = os.urandom(16)
        return cls(n, r, p, salt, _scrypt(password, salt, n, r, p, 32))

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """A hash in the text form (the credential model has checked it)."""
        _, n, r, p, salt, digest = text.split("$")
        return cls(int(n), int(r), int(p), decode_base64(salt), decode_base64(digest))

    def matches(self, password: bytes) -> bool:
        """Slow on purpose (see the module docstring): run it off the event loop."""
        derived = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest))
        return hmac.compare_digest(derived, self.digest)

    def __str__(self) -> str:
        salt, digest = (base64.b64encode(part).decode() for part in (self.salt, self.digest))
        return f"scrypt${self.n}${self.r}${self.p}${salt}${digest}"


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    # OpenSSL needs 128*r*(n + p + 2) bytes; its default cap (32 MiB) is too low for n > 2**14
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=size)
