"""``key-auth``: identify the consumer by an API key in a header or the query string."""

from __future__ import annotations

import hashlib
import re
from hmac import compare_digest

from pydantic import Field, model_validator

from quiver.config.consumers import CredentialModel
from quiver.errors import Unauthorized
from quiver.plugins.base import Plugin, PluginConfig, PluginContext, PluginRequest
from quiver.plugins.consumers import Consumers
from quiver.plugins.query import query_names, take_param

_CHALLENGE = ((b"WWW-Authenticate", b'Key realm="quiver"'),)
_KEY_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_MEMO = "key-auth"  # the connection's last valid key: (the key index, the key, what it names)


class KeyAuthCredential(CredentialModel):
    key: str | None = Field(
        None,
        min_length=8,
        description='The API key, e.g. "${ALICE_KEY}"; only its SHA-256 is kept in memory.',
    )
    key_hash: str | None = Field(
        None,
        description='"sha256:<hex>" of the key, so the key itself need not be in the file '
        "(`quiver keys new` prints a key with its hash).",
    )

    @model_validator(mode="after")
    def _one_form(self) -> KeyAuthCredential:
        if (self.key is None) == (self.key_hash is None):
            raise ValueError("give exactly one of 'key' or 'key_hash'")
        if self.key_hash is not None and not _KEY_HASH.match(self.key_hash):
            raise ValueError("key_hash must look like sha256:<64 lowercase hex digits>")
        return self

    def identity(self) -> bytes:
        return self.digest()

    def digest(self) -> bytes:
        if self.key is not None:
            return key_digest(self.key.encode())
        return bytes.fromhex((self.key_hash or "")[len("sha256:") :])


def key_digest(key: bytes) -> bytes:
    """API keys are looked up by their SHA-256 digest: the plaintext of a key is never
    kept, and looking a digest up in a dict reveals nothing useful through timing (an
    attacker cannot steer the digest of a guess)."""
    return hashlib.sha256(key).digest()


class ApiKeys:
    """The consumers' API keys by digest, built once per config: each key's consumer
    and the credential it names (``credential`` of the request, for ``by: credential``)."""

    __slots__ = ("by_digest",)

    def __init__(self, consumers: Consumers) -> None:
        self.by_digest = {
            digest: (consumer, b"key-auth:" + digest)
            for credential, consumer in consumers.credentials("key-auth", KeyAuthCredential)
            for digest in (credential.digest(),)
        }


class KeyAuthConfig(PluginConfig):
    header_names: list[str] = Field(
        default_factory=lambda: ["apikey", "X-API-Key"],
        description="Request headers that may carry the key, tried in order.",
    )
    query_names: list[str] = Field(
        default_factory=lambda: ["apikey"],
        description="Query parameters that may carry the key, when no header does (names "
        "and the key compare percent-decoded; the other parameters go upstream as sent).",
    )
    hide_credentials: bool = Field(
        True,
        description="Remove every header and query parameter named above from the request "
        "before it goes upstream, not only the one that carried the key.",
    )
    anonymous: str | None = Field(
        None,
        description="Consumer to use for requests without a key (else 401); a request "
        "another authentication plugin identified keeps its consumer.",
    )
    bearer: bool = Field(
        False,
        description="Also read the key from `Authorization: Bearer <key>` (after the "
        "headers above, before the query), as the OpenAI and Anthropic SDKs send it; on "
        "by default on AI routes (`ai`), off elsewhere.",
    )


class KeyAuth(Plugin[KeyAuthConfig]):
    """Requests must carry the API key of a consumer (401 with a WWW-Authenticate
    challenge when it is missing or unknown). The consumer's name, custom id and
    groups go upstream as X-Consumer-* headers; the key itself does not. Keys are
    looked up by their SHA-256; a connection that sends the key it sent before is
    recognised without hashing it again (compared in constant time with that key,
    which the worker keeps only while the connection is open)."""

    name = "key-auth"
    priority = 1250
    identifies_consumers = True
    Config = KeyAuthConfig
    credential = KeyAuthCredential

    def __init__(self, config: KeyAuthConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        names = [name.lower().encode() for name in config.header_names]
        if config.bearer and b"authorization" not in names:
            names.append(b"authorization")
        self.headers = tuple(names)
        #: whether a value found in Authorization must be "Bearer <key>"
        self.bearer = config.bearer and b"authorization" not in names[:-1]
        #: each header's place in the order they are tried
        self.ranks = {name: rank for rank, name in reversed(list(enumerate(self.headers)))}
        self.sizes = frozenset(len(name) for name in self.headers)
        self.hide = config.hide_credentials  # (plain attributes: read every request)
        self.query_names = query_names(config.query_names)
        self.query_probes = tuple(self.query_names)
        self.keys = context.consumers.shared(ApiKeys, lambda: ApiKeys(context.consumers))
        self.anonymous = context.consumers.anonymous(self.name, config.anonymous)

    def access(self, request: PluginRequest) -> None:
        # one pass over the fields finds the key (by the order the headers are tried
        # in) and every field that holds one
        key = None
        rank = len(self.headers)
        found: list[tuple[bytes, bytes]] | None = None
        ranks, sizes = self.ranks, self.sizes
        for field in request.headers:
            name = field[0]
            if len(name) in sizes:
                place = ranks.get(name.lower())
                if place is not None:
                    if place < rank:
                        key, rank = field[1], place
                    if found is None:
                        found = [field]
                    else:
                        found.append(field)
        query = request.query
        if key is None and query and self.query_names:
            key = self._from_query(request)  # (hides the query's keys itself)
        elif key is not None and self.hide:
            # every place a key may be, not only the one used: a second key is a secret too
            for field in found or ():
                request.remove_field(field)
            if query:
                for probe in self.query_probes:  # (a cheap look before splitting it)
                    if 37 in query or 43 in query or query.find(probe) >= 0:  # "%", "+"
                        self._from_query(request)
                        break
        if key is not None and self.bearer and rank == len(self.headers) - 1:
            key = _bearer_token(key)  # (Authorization: anything else is no key)
        if key is None:
            if self.anonymous is not None:
                if request.consumer is None:  # (a plugin that ran earlier may have)
                    request.set_consumer(self.anonymous)
                return
            raise Unauthorized("no API key in the request", headers=_CHALLENGE)
        # a connection usually repeats its key: what it was is remembered for the
        # connection, and a repeat (compared in constant time) skips the digest
        memo = request.connection_memo
        seen = memo.get(_MEMO)
        if seen is not None and seen[0] is self.keys and compare_digest(seen[1], key):
            known = seen[2]
        else:
            known = self.keys.by_digest.get(key_digest(key))
            if known is None:
                raise Unauthorized("invalid API key", headers=_CHALLENGE)
            memo[_MEMO] = (self.keys, key, known)
        consumer, credential = known
        request.set_consumer(consumer, credential)

    def _from_query(self, request: PluginRequest) -> bytes | None:
        key, kept = take_param(request.query, self.query_names, hide=self.hide)
        if kept is not None:
            request.set_query(kept)
        return key


def _bearer_token(value: bytes) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` value (RFC 6750 section 2.1:
    the scheme is case-insensitive)."""
    scheme, _, token = value.strip().partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None
