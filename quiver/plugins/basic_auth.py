"""``basic-auth``: identify the consumer by a username and password (RFC 7617).

``python -m quiver.plugins.basic_auth`` asks for a password and prints its
``password_hash`` for the config.
"""

from __future__ import annotations

import asyncio
import binascii
import getpass
import hmac
import os
import secrets
from collections import OrderedDict
from collections.abc import Awaitable

from pydantic import Field, model_validator

from quiver.config.consumers import CredentialModel
from quiver.errors import Unauthorized
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.consumers import ConsumerRuntime, Consumers
from quiver.plugins.passwords import PasswordHash, check_scrypt_hash

_CHALLENGE = ((b"WWW-Authenticate", b'Basic realm="quiver"'),)
_CACHE_SIZE = 1024
# scrypt takes ~16 MiB and tens of milliseconds per check: a few at a time, in threads
_PARALLEL_CHECKS = min(4, os.cpu_count() or 1)


class BasicAuthCredential(CredentialModel):
    username: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[^:\x00-\x1f\x7f]+$",
        description="The user-id of HTTP Basic authentication (RFC 7617: no colon).",
    )
    password: str | None = Field(
        None,
        min_length=1,
        repr=False,
        description='The password, e.g. "${ALICE_PASSWORD}"; hashed with scrypt when the '
        "config loads, and only the hash is used.",
    )
    password_hash: str | None = Field(
        None,
        description='"scrypt$<n>$<r>$<p>$<salt>$<hash>" (salt and hash in base64), so the '
        "password need not be in the file and no hashing delays the start "
        "(`python -m quiver.plugins.basic_auth` prints one).",
    )

    @model_validator(mode="after")
    def _one_form(self) -> BasicAuthCredential:
        if (self.password is None) == (self.password_hash is None):
            raise ValueError("give exactly one of 'password' or 'password_hash'")
        if self.password_hash is not None:
            check_scrypt_hash(self.password_hash)
        return self

    def hashed(self) -> PasswordHash:
        if self.password is not None:
            return PasswordHash.create(self.password.encode())
        return PasswordHash.parse(self.password_hash or "")


#: username (UTF-8) -> each password hash with its consumer; a username on two
#: consumers (or twice, while a password is rotated) is told apart by the password
Passwords = dict[bytes, tuple[tuple[PasswordHash, ConsumerRuntime], ...]]


def index_passwords(consumers: Consumers) -> Passwords:
    """Every basic-auth credential by username (plaintext passwords hashed now)."""
    index: Passwords = {}
    for credential, consumer in consumers.credentials("basic-auth", BasicAuthCredential):
        user = credential.username.encode()
        index[user] = (*index.get(user, ()), (credential.hashed(), consumer))
    return index


class BasicAuthConfig(PluginConfig):
    hide_credentials: bool = Field(
        True, description="Remove the Authorization header before the request goes upstream."
    )
    anonymous: str | None = Field(
        None,
        description="Consumer to use for requests without Basic credentials (else 401); a "
        "request another authentication plugin identified keeps its consumer.",
    )


class BasicAuth(Plugin[BasicAuthConfig]):
    """Requests must carry `Authorization: Basic` with the username and password of a
    consumer's `basic-auth` credential (401 with a `WWW-Authenticate: Basic` challenge
    when they are missing, malformed or wrong). Passwords are checked against scrypt
    hashes off the event loop; a pair that verified is remembered (1024 pairs, keyed by
    a keyed hash, never the password), so only a client's first request pays for scrypt."""

    name = "basic-auth"
    priority = 1100
    identifies_consumers = True
    Config = BasicAuthConfig
    credential = BasicAuthCredential

    def __init__(self, config: BasicAuthConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.verifier = PasswordVerifier(context.consumers)
        self.hide = config.hide_credentials  # (plain attributes: read every request)
        self.anonymous = context.consumers.anonymous(self.name, config.anonymous)

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        header = request.get(b"authorization")
        scheme, _, encoded = (header or b"").strip().partition(b" ")
        if scheme.lower() != b"basic":  # no credentials of ours (perhaps a Bearer token)
            if self.anonymous is not None:
                if request.consumer is None:
                    request.set_consumer(self.anonymous)
                return None
            raise Unauthorized("no Basic credentials in the request", headers=_CHALLENGE)
        if self.hide:
            request.remove_header(b"authorization")
        username, password = _decode(encoded.strip())
        consumer = self.verifier.remembered(username, password)
        if consumer is not None:
            request.set_consumer(consumer, b"basic-auth:" + username)
            return None
        return self._check(request, username, password)  # scrypt: wait off the event loop

    async def _check(self, request: PluginRequest, username: bytes, password: bytes) -> None:
        consumer = await self.verifier.verify(username, password)
        if consumer is None:
            raise Unauthorized("invalid username or password", headers=_CHALLENGE)
        request.set_consumer(consumer, b"basic-auth:" + username)


def _decode(encoded: bytes) -> tuple[bytes, bytes]:
    """The user-id and password of ``base64(user-id ":" password)`` (RFC 7617 §2)."""
    try:
        decoded = binascii.a2b_base64(encoded, strict_mode=True)
    except binascii.Error:
        raise Unauthorized("malformed Basic credentials", headers=_CHALLENGE) from None
    username, colon, password = decoded.partition(b":")
    if not colon:
        raise Unauthorized("malformed Basic credentials", headers=_CHALLENGE)
    return username, password


class PasswordVerifier:
    """Checks username/password pairs against the consumers' scrypt hashes.

    A pair that verified is remembered in an LRU keyed by HMAC-SHA256 under a random
    key of this instance, so the cache holds no password and no offline-guessable
    digest of one; a failure is never remembered, so every wrong guess costs scrypt.
    An unknown username is checked against a decoy hash, taking as long as a wrong
    password, so timing does not tell which usernames exist. Checks of the same pair
    that overlap share one scrypt run.
    """

    def __init__(self, consumers: Consumers, size: int = _CACHE_SIZE) -> None:
        # (hashing the plaintext passwords takes scrypt's time: once per config)
        self.by_username = consumers.shared(index_passwords, lambda: index_passwords(consumers))
        self.size = size
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, ConsumerRuntime] = OrderedDict()
        self._checking: dict[bytes, asyncio.Future[ConsumerRuntime | None]] = {}
        self._slots = asyncio.Semaphore(_PARALLEL_CHECKS)
        self._decoy = PasswordHash(2**14, 8, 1, os.urandom(16), os.urandom(32))

    def _pair_key(self, username: bytes, password: bytes) -> bytes:
        return hmac.digest(self._key, username + b":" + password, "sha256")

    def remembered(self, username: bytes, password: bytes) -> ConsumerRuntime | None:
        """The consumer of a pair that verified before, without running scrypt."""
        key = self._pair_key(username, password)
        consumer = self._verified.get(key)
        if consumer is not None:
            self._verified.move_to_end(key)
        return consumer

    async def verify(self, username: bytes, password: bytes) -> ConsumerRuntime | None:
        """The consumer whose credential matches, or None."""
        key = self._pair_key(username, password)
        checking = self._checking.get(key)
        if checking is None:
            checking = asyncio.ensure_future(self._run(key, username, password))
            self._checking[key] = checking
            checking.add_done_callback(lambda _: self._checking.pop(key, None))
        # shielded: a client that goes away does not cancel the check others wait for
        return await asyncio.shield(checking)

    async def _run(self, key: bytes, username: bytes, password: bytes) -> ConsumerRuntime | None:
        entries = self.by_username.get(username, ())
        async with self._slots:
            loop = asyncio.get_running_loop()
            consumer = await loop.run_in_executor(None, self._match, entries, password)
        if consumer is not None:
            self._verified[key] = consumer
            if len(self._verified) > self.size:
                self._verified.popitem(last=False)
        return consumer

    def _match(
        self, entries: tuple[tuple[PasswordHash, ConsumerRuntime], ...], password: bytes
    ) -> ConsumerRuntime | None:
        if not entries:
            self._decoy.matches(password)
            return None
        for hashed, consumer in entries:
            if hashed.matches(password):
                return consumer
        return None


def main() -> None:
    password = getpass.getpass("password: ")
    if not password:
        raise SystemExit("no password given")
    print(PasswordHash.create(password.encode()))


if __name__ == "__main__":
    main()
