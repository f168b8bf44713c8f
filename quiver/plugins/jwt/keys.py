"""Keys that verify tokens: the consumers' jwt credentials and the keys of a JWK Set."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from jwt import PyJWK

from quiver.config.consumers import JwtCredential, load_public_key, public_key_problem
from quiver.proxy.consumers import ConsumerRuntime, Consumers

log = logging.getLogger("quiver.plugins.jwt")

# the algorithm PyJWK is told to read each key type as; only the key object is used
_READ_AS = {"RSA": "RS256", "OKP": "EdDSA", "EC": None}


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key, the algorithms a token verified with it may use, and its consumer."""

    algorithms: frozenset[str]
    material: Any  # HMAC secret bytes, or a cryptography public key object
    consumer: ConsumerRuntime | None = None


KeyIndex = dict[str | None, tuple[VerificationKey, ...]]


def consumer_keys(consumers: Consumers, allowed: frozenset[str]) -> KeyIndex:
    """Each consumer's jwt credential whose algorithm is allowed, by its iss/kid."""
    index: KeyIndex = {}
    for selector, entries in consumers.by_jwt_key.items():
        keys = tuple(
            VerificationKey(frozenset({credential.algorithm}), _material(credential), consumer)
            for credential, consumer in entries
            if credential.algorithm in allowed
        )
        if keys:
            index[selector] = keys
    return index


def _material(credential: JwtCredential) -> Any:
    if credential.algorithm.startswith("HS"):
        return credential.secret_bytes()
    return load_public_key(credential.algorithm, credential.public_key or "")


def parse_jwks(
    body: bytes, allowed: frozenset[str], skipped: Callable[[str, str], None] | None = None
) -> KeyIndex:
    """The signing keys of a JWK Set document (RFC 7517 §5) by ``kid``.

    Only public RSA, EC and OKP keys meant for signatures are taken: a symmetric
    (``oct``) key from a URL would let whoever serves it mint tokens, and a key with
    private parts is refused rather than trusted. Each key verifies only the allowed
    algorithms its type and curve suit, and only its ``alg`` when it names one.
    A key that cannot be read is skipped, so one odd key does not hide the others:
    ``skipped(key, reason)`` hears of it (by default it is logged). Raises
    ValueError when the document is not a JWK Set at all.
    """
    document = orjson.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set: no 'keys' list")
    report = skipped or _log_skipped
    index: dict[str | None, list[VerificationKey]] = {}
    for position, jwk in enumerate(document["keys"]):
        kid = jwk.get("kid") if isinstance(jwk, dict) else None
        try:
            key = _signing_key(jwk, allowed)
        except Exception as exc:  # whatever a key holds, the others still count
            name = f"{kid!r}" if isinstance(kid, str) else f"#{position}"
            report(name, str(exc) or type(exc).__name__)
            continue
        if key is not None:
            index.setdefault(kid, []).append(key)
    return {kid: tuple(keys) for kid, keys in index.items()}


def _signing_key(jwk: object, allowed: frozenset[str]) -> VerificationKey | None:
    """The key ``jwk`` holds, None when it is not for verifying signatures here;
    raises when it cannot be read."""
    if not isinstance(jwk, dict):
        raise ValueError("not a JSON object")
    kty, kid, use = jwk.get("kty"), jwk.get("kid"), jwk.get("use", "sig")
    if not isinstance(kid, str | None):
        raise ValueError("'kid' is not a string")
    if not isinstance(kty, str) or not isinstance(use, str):
        raise ValueError("'kty' and 'use' must be strings")
    if use != "sig":
        return None  # e.g. an encryption key published alongside
    if kty not in _READ_AS:
        raise ValueError(f"key type {kty!r} is not taken from a key set")
    alg = jwk.get("alg")
    if alg is not None and not isinstance(alg, str):
        raise ValueError("'alg' is not a string")
    material = PyJWK(jwk, _READ_AS[kty]).key
    fitting = {name for name in allowed if public_key_problem(name, material) is None}
    if alg is not None:
        fitting &= {alg}
    return VerificationKey(frozenset(fitting), material) if fitting else None


def _log_skipped(key: str, reason: str) -> None:
    log.warning("JWK %s skipped: %s", key, reason)
