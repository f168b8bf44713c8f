"""Consumers compiled for the hot path: credentials by their hash, identity headers ready.

API keys are looked up by their SHA-256 digest: the plaintext of a key is never
kept, and looking a digest up in a dict reveals nothing useful through timing
(an attacker cannot steer the digest of a guess).
"""

from __future__ import annotations

import hashlib

from quiver.config.consumers import Consumer


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


class Consumers:
    """Every consumer of a config, with indexes for each credential type."""

    def __init__(self, consumers: list[Consumer]) -> None:
        self.by_name = {consumer.name: ConsumerRuntime(consumer) for consumer in consumers}
        self.by_key: dict[bytes, ConsumerRuntime] = {}
        for consumer in consumers:
            runtime = self.by_name[consumer.name]
            for credential in consumer.credentials.key_auth:
                if credential.key is not None:
                    digest = key_digest(credential.key.encode())
                else:
                    digest = bytes.fromhex((credential.key_hash or "")[len("sha256:") :])
                self.by_key[digest] = runtime

    def by_api_key(self, key: bytes) -> ConsumerRuntime | None:
        return self.by_key.get(key_digest(key))
