"""Consumers as plugins see them: identities ready for the hot path, and the
credential indexes authentication plugins build from them once per config.

The proxy builds one :class:`Consumers` per config and hands it to every plugin in
its ``PluginContext``.  An authentication plugin reads its own credentials with
``credentials(name, model)`` and keeps the index it builds from them with
``shared(key, build)``, so a config with fifty routes using ``key-auth`` hashes
and indexes the keys once, not fifty times::

    def __init__(self, config: ApiTokenConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.tokens = context.consumers.shared(ApiToken, lambda: {
            credential.token: consumer
            for credential, consumer in context.consumers.credentials(self.name, ApiTokenCredential)
        })
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any, TypeVar

from quiver.config.consumers import Consumer, CredentialModel

T = TypeVar("T")
M = TypeVar("M", bound=CredentialModel)


class ConsumerRuntime:
    """Who a request comes from, once an authentication plugin identified it."""

    __slots__ = ("groups", "headers", "name", "team")

    def __init__(self, consumer: Consumer) -> None:
        self.name = consumer.name
        #: the team its AI usage counts toward (None: none)
        self.team = consumer.team
        self.groups = frozenset(consumer.groups)
        headers = [(b"X-Consumer-Username", consumer.name.encode())]
        if consumer.custom_id:
            headers.append((b"X-Consumer-Custom-ID", consumer.custom_id.encode()))
        if consumer.groups:
            headers.append((b"X-Consumer-Groups", ", ".join(consumer.groups).encode()))
        #: identity fields sent upstream for this consumer's requests
        self.headers = tuple(headers)


class Consumers:
    """Every consumer of a config by name, and the indexes plugins share."""

    def __init__(self, consumers: Iterable[Consumer]) -> None:
        self.models = tuple(consumers)
        self.by_name = {consumer.name: ConsumerRuntime(consumer) for consumer in self.models}
        self._shared: dict[Hashable, Any] = {}

    def anonymous(self, plugin: str, name: str | None) -> ConsumerRuntime | None:
        """The consumer ``plugin``'s ``anonymous`` setting names (None when it is unset);
        ValueError when no consumer has that name."""
        if not name:
            return None
        consumer = self.by_name.get(name)
        if consumer is None:
            raise ValueError(f"{plugin}: anonymous consumer {name!r} is not defined")
        return consumer

    def credentials(self, plugin: str, model: type[M]) -> Iterator[tuple[M, ConsumerRuntime]]:
        """Each credential filed under ``plugin`` by every consumer, with its consumer."""
        for consumer in self.models:
            runtime = self.by_name[consumer.name]
            for credential in consumer.credentials.get(plugin, ()):
                if not isinstance(credential, model):
                    # a config built without a catalog holds credentials as written
                    credential = model.model_validate(credential.model_dump())
                yield credential, runtime

    def shared(self, key: Hashable, build: Callable[[], T]) -> T:
        """What ``build()`` returns, built on the first call for ``key`` and kept for this
        config (every plugin instance of every route gets the same object)."""
        try:
            value: T = self._shared[key]
        except KeyError:
            value = self._shared[key] = build()
        return value
