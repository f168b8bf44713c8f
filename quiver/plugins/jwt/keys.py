"""Keys that verify tokens: the consumers' jwt credentials and the keys of a JWK Set."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from jwt import PyJWK, PyJWTError

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


def parse_jwks(body: bytes, allowed: frozenset[str]) -> KeyIndex:
    """The signing keys of a JWK Set document (RFC 7517 §5) by ``kid``.

    Only public RSA, EC and OKP keys meant for signatures are taken: a symmetric
    (``oct``) key from a URL would let whoever serves it mint tokens, and a key with
    private parts is refused rather than trusted. Each key verifies only the allowed
    algorithms its type and curve suit, and only its ``alg`` when it names one.
    Keys that cannot be read are skipped, so one odd key does not hide the others.
    """
    document = orjson.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set: no 'keys' list")
    index: dict[str | None, list[VerificationKey]] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") not in _READ_AS:
            continue
        kid = jwk.get("kid")
        if jwk.get("use", "sig") != "sig" or not isinstance(kid, str | None):
            continue
        try:
            material = PyJWK(jwk, _READ_AS[jwk["kty"]]).key
        except PyJWTError as exc:
            log.info("JWK %r skipped: %s", kid, exc)
            continue
        fitting = {alg for alg in allowed if public_key_problem(alg, material) is None}
        if "alg" in jwk:
            fitting &= {jwk["alg"]} if isinstance(jwk["alg"], str) else set()
        if fitting:
            index.setdefault(kid, []).append(VerificationKey(frozenset(fitting), material))
    return {kid: tuple(keys) for kid, keys in index.items()}
