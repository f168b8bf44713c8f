"""Consumers compiled for the hot path: credentials by their hash, identity headers ready.

API keys are looked up by their SHA-256 digest: the plaintext of a key is never
kept, and looking a digest up in a dict reveals nothing useful through timing
(an attacker cannot steer the digest of a guess).

Passwords are kept as scrypt hashes (RFC 7914), which make each guess cost tens of
milliseconds; a plaintext password from the config is hashed when it loads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from quiver.config.consumers import Consumer, JwtCredential, decode_base64


class ConsumerRuntime:
    __slots__ = ("groups", "headers", "name")

    def __init__(self, consumer: Consumer) -> None:
        self.name = consumer.name
        self.groups = frozenset(consumer.groups)
        headers = [(b"X-Consumer-Username", consumer.name.encode())]
        if consumer.custom_id:
            headers.append((b"X-Consumer-Custom-ID", consumer.custom_id.encode()))
        if consumer.groups:
            headers.append((b"X-Consumer-Groups", ", ".join(consumer.groups).encode()))
        #: identity fields sent upstream for this consumer's requests
        self.headers = tuple(headers)


def key_digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


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
        """A hash in the text form (the config model has checked it)."""
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


class Consumers:
    """Every consumer of a config, with indexes for each credential type."""

    def __init__(self, consumers: list[Consumer]) -> None:
        self.by_name = {consumer.name: ConsumerRuntime(consumer) for consumer in consumers}
        self.by_key: dict[bytes, ConsumerRuntime] = {}
        #: username (UTF-8) -> each password hash with its consumer; a username on two
        #: consumers (or twice, while a password is rotated) is told apart by the password
        self.by_username: dict[bytes, tuple[tuple[PasswordHash, ConsumerRuntime], ...]] = {}
        #: iss or kid -> each JWT verification credential with its consumer
        self.by_jwt_key: dict[str, tuple[tuple[JwtCredential, ConsumerRuntime], ...]] = {}
        for consumer in consumers:
            runtime = self.by_name[consumer.name]
            for credential in consumer.credentials.key_auth:
                if credential.key is not None:
                    digest = key_digest(credential.key.encode())
                else:
                    digest = bytes.fromhex((credential.key_hash or "")[len("sha256:") :])
                self.by_key[digest] = runtime
            for basic in consumer.credentials.basic_auth:
                if basic.password is not None:
                    hashed = PasswordHash.create(basic.password.encode())
                else:
                    hashed = PasswordHash.parse(basic.password_hash or "")
                user = basic.username.encode()
                self.by_username[user] = (*self.by_username.get(user, ()), (hashed, runtime))
            for jwt_key in consumer.credentials.jwt:
                entry = (jwt_key, runtime)
                self.by_jwt_key[jwt_key.key] = (*self.by_jwt_key.get(jwt_key.key, ()), entry)

    def by_api_key(self, key: bytes) -> ConsumerRuntime | None:
        return self.by_key.get(key_digest(key))
