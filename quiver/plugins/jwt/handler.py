"""The ``jwt`` plugin: verify a JSON Web Token (RFC 7519) and identify its consumer."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable
from typing import Any, NamedTuple

import jwt
import orjson

from quiver.errors import Unauthorized
from quiver.plugins.base import Plugin, PluginContext, PluginRequest
from quiver.plugins.jwt.config import JwtConfig
from quiver.plugins.jwt.jwks import JwksCache
from quiver.plugins.jwt.keys import JwtCredential, VerificationKey, consumer_keys
from quiver.plugins.jwt.tokens import TokenFinder, peek
from quiver.plugins.jwt.verified import Verified, VerifiedTokens

# RFC 6750 §3: no error code when the request carried no token at all
_MISSING = ((b"WWW-Authenticate", b'Bearer realm="quiver"'),)
_INVALID = ((b"WWW-Authenticate", b'Bearer realm="quiver", error="invalid_token"'),)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # never in a header value (RFC 9110 §5.5)

# Fixed reasons per failure: PyJWT's messages are not shown, so no part of a token
# ever reaches a response or a log line.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.InvalidAudienceError, "the token's audience is not accepted"),
    (jwt.InvalidIssuerError, "the token's issuer is not accepted"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm is not accepted"),
    (jwt.DecodeError, "the token is malformed"),
)


def invalid(reason: str) -> Unauthorized:
    return Unauthorized(reason, headers=_INVALID)


class Identity(NamedTuple):
    """What a verified token means for a request, worked out once per token."""

    consumer: Any  # the ConsumerRuntime it identifies, or None
    headers: tuple[tuple[bytes, bytes | None], ...]  # claim headers to set (None: remove)
    credential: bytes | None = None  # "jwt:<iss>|<sub>", for limits per credential


class Jwt(Plugin[JwtConfig]):
    """Requests must carry a JSON Web Token signed with an accepted algorithm (`none` never is)
    by a known key: 401 with `WWW-Authenticate: Bearer` when it is missing, and with
    `error="invalid_token"` when it is malformed, badly signed, expired, not yet valid,
    or carries a refused `iss` or `aud`. Keys come from consumers' `jwt` credentials,
    selected by the token's `iss` claim or `kid` header (`key_claim`); such a token
    identifies that consumer. Each credential fixes its algorithm, so an RSA public key
    is never taken as an HMAC secret. Keys can also come from a `jwks_url`, selected by
    `kid`: the set is fetched when first needed, again when a token names an unknown
    `kid` (at most every `jwks_min_refresh` seconds) and after `jwks_cache_ttl`, so keys
    rotate without a restart; a fetch that fails keeps the keys known, and a key of the
    set that cannot be used is skipped (and logged once) while the others work. A token
    verified by a JWKS key identifies the consumer named by its `consumer_claim`, if
    any; otherwise no consumer is set (plugins such as `acl` then refuse the request)
    and any X-Consumer-* headers from the client are removed. Chosen claims go upstream
    as headers; the token itself does not, unless `hide_credentials` is off. Verified
    tokens are remembered (up to `token_cache_size`, by a keyed hash) so that a repeated
    token skips the signature check; its `exp` and `nbf` are still checked on every
    request, and a fetch of `jwks_url` that brings a different set forgets every
    remembered token."""

    name = "jwt"
    priority = 1450
    identifies_consumers = True
    Config = JwtConfig
    credential = JwtCredential

    def __init__(self, config: JwtConfig, context: PluginContext) -> None:
        super().__init__(config, context)
        self.algorithms = frozenset(config.algorithms)
        self.consumers = context.consumers
        self.keys = consumer_keys(context.consumers, self.algorithms)
        self.select_by_kid = config.key_claim == "kid"  # else by the "iss" claim
        #: wall-clock seconds, for checking the times of remembered tokens
        self.clock = time.time
        self.verified: VerifiedTokens[Identity] | None = (
            VerifiedTokens(config.token_cache_size) if config.token_cache_size else None
        )
        self.jwks: JwksCache | None = None
        if config.jwks_url is not None:
            self.jwks = JwksCache(
                config.jwks_url,
                algorithms=self.algorithms,
                min_refresh=config.jwks_min_refresh,
                ttl=config.jwks_cache_ttl,
                timeout=config.jwks_timeout,
                outbound=context.outbound,
                on_change=self.verified.clear if self.verified is not None else None,
            )
        self.tokens = TokenFinder(config)
        self.decoder = jwt.PyJWT(
            options={
                "require": list(config.required_claims),
                # RFC 7519 §4.1.3: a token for named audiences is refused by everyone
                # else, so even with no audiences configured an "aud" is checked
                "verify_aud": True,
                "verify_iss": bool(config.issuers),
            }
        )
        self.audiences = list(config.audiences) or None
        self.issuers = frozenset(config.issuers) or None
        self.claim_headers = tuple(
            (claim, header.encode()) for claim, header in config.claims_to_headers.items()
        )
        self.anonymous = context.consumers.anonymous(self.name, config.anonymous)

    def access(self, request: PluginRequest) -> Awaitable[None] | None:
        token = self.tokens.take(request)
        if token is None:
            if self.anonymous is not None:
                if request.consumer is None:
                    request.set_consumer(self.anonymous)
                return None
            raise Unauthorized("no bearer token in the request", headers=_MISSING)
        digest = b""
        verified = self.verified
        if verified is not None:
            digest = verified.key(token)
            known = verified.get(digest)
            if known is not None:
                if known.expires is not None and self.clock() >= known.expires:
                    verified.drop(digest)
                    raise invalid("the token has expired")
                self._admit_again(request, known)
                return None
        try:
            header, claims = peek(token)
        except ValueError:
            raise invalid("the token is malformed") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            # "none" never is (RFC 8725 §3.1)
            raise invalid("the token's algorithm is not accepted")
        keys = self._consumer_keys(header, claims, algorithm)
        if keys:
            self._accept(request, token, digest, algorithm, keys)
            return None
        kid = header.get("kid")
        if self.jwks is None or not isinstance(kid, str | None):
            raise invalid("no key is known for this token")
        key = self.jwks.find(kid, algorithm)
        if key is not None:
            self.jwks.refresh_if_stale()
            self._accept(request, token, digest, algorithm, (key,))
            return None
        if not self.jwks.may_fetch():
            raise invalid("no key is known for this token")
        return self._fetch_and_accept(request, token, digest, algorithm, kid)

    def _admit_again(self, request: PluginRequest, known: Verified[Identity]) -> None:
        """A token verified before: what depends on the time is checked again (its
        expiry by the caller, which forgets an expired token)."""
        if known.starts is not None and self.clock() < known.starts:
            raise invalid("the token is not valid yet")
        if known.from_jwks and self.jwks is not None:
            self.jwks.refresh_if_stale()  # keys that left the set must stop working
        self._admit(request, known.value)

    def _consumer_keys(
        self, header: dict[str, Any], claims: dict[str, Any], algorithm: str
    ) -> tuple[VerificationKey, ...]:
        if not self.keys:
            return ()
        selector = header.get("kid") if self.select_by_kid else claims.get("iss")
        if not isinstance(selector, str):
            return ()
        return tuple(key for key in self.keys.get(selector, ()) if algorithm in key.algorithms)

    async def _fetch_and_accept(
        self, request: PluginRequest, token: bytes, digest: bytes, algorithm: str, kid: str | None
    ) -> None:
        assert self.jwks is not None
        await self.jwks.refresh()
        key = self.jwks.find(kid, algorithm)
        if key is None:
            raise invalid("no key is known for this token")
        self._accept(request, token, digest, algorithm, (key,))

    def _accept(
        self,
        request: PluginRequest,
        token: bytes,
        digest: bytes,
        algorithm: str,
        keys: tuple[VerificationKey, ...],
    ) -> None:
        for key in keys:  # several while a consumer's key is rotated
            try:
                claims = self.decoder.decode(
                    token,
                    key.material,
                    algorithms=[algorithm],
                    audience=self.audiences,
                    issuer=self.issuers,
                    leeway=self.config.leeway,
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.MissingRequiredClaimError as exc:
                raise invalid(f"the token has no '{exc.claim}' claim") from None
            except (jwt.PyJWTError, ValueError) as exc:
                raise invalid(_reason(exc)) from None
            identity = self._identity(key, claims)
            if self.verified is not None:
                self.verified.put(digest, self._remembered(key, claims, identity))
            self._admit(request, identity)
            return
        raise invalid("the token's signature does not verify")

    def _identity(self, key: VerificationKey, claims: dict[str, Any]) -> Identity:
        consumer = key.consumer
        if consumer is None and self.config.consumer_claim is not None:
            name = claims.get(self.config.consumer_claim)
            consumer = self.consumers.by_name.get(name) if isinstance(name, str) else None
        headers = []
        for claim, header in self.claim_headers:
            value = claims.get(claim)
            headers.append((header, None if value is None else header_value(value)))
        subject, issuer = claims.get("sub"), claims.get("iss")
        credential = None
        if isinstance(subject, str):
            credential = b"jwt:%s|%s" % (str(issuer or "").encode(), subject.encode())
        return Identity(consumer, tuple(headers), credential)

    def _remembered(
        self, key: VerificationKey, claims: dict[str, Any], identity: Identity
    ) -> Verified[Identity]:
        # PyJWT checked both are numbers; it refuses from exp - leeway on (RFC 7519 §4.1.4)
        # and before nbf - leeway (§4.1.5), and so does _admit_again
        leeway = self.config.leeway
        exp, nbf = claims.get("exp"), claims.get("nbf")
        return Verified(
            expires=float(exp) + leeway if exp is not None else None,
            starts=float(nbf) - leeway if nbf is not None else None,
            from_jwks=key.consumer is None,
            value=identity,
        )

    @staticmethod
    def _admit(request: PluginRequest, identity: Identity) -> None:
        if identity.consumer is not None:
            request.set_consumer(identity.consumer, identity.credential)
        for header, value in identity.headers:
            if value is None:
                request.remove_header(header)
            else:
                request.set_header(header, value)


def _reason(exc: Exception) -> str:
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "the token is not valid"


def header_value(value: object) -> bytes:
    """A claim as a header value: strings as they are, lists joined by ", ", else JSON."""
    if isinstance(value, list):
        text = ", ".join(item if isinstance(item, str) else _json(item) for item in value)
    else:
        text = value if isinstance(value, str) else _json(value)
    return _CONTROL.sub("", text).encode()


def _json(value: object) -> str:
    return orjson.dumps(value).decode()
