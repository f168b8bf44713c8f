"""Keys that verify tokens: the consumers' jwt credentials and the keys of a JWK Set."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from jwt import PyJWK
from pydantic import Field, field_validator, model_validator

from quiver.config.consumers import CredentialModel, decode_base64
from quiver.plugins.consumers import ConsumerRuntime, Consumers

log = logging.getLogger("quiver.plugins.jwt")

JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
]  # fmt: skip
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


def public_key_problem(algorithm: str, key: object) -> str | None:
    """Why ``key`` cannot verify ``algorithm`` signatures, or None when it can.

    Tying each key to one family of algorithms is what stops "algorithm confusion":
    a token cannot have an RSA public key used as an HMAC secret.
    """
    if algorithm.startswith(("RS", "PS")):
        if not isinstance(key, rsa.RSAPublicKey):
            return f"{algorithm} needs an RSA public key"
        if key.key_size < 2048:  # RFC 7518 §3.3 and §3.5
            return f"{algorithm} needs an RSA key of at least 2048 bits, not {key.key_size}"
        return None
    if algorithm in _EC_CURVES:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return f"{algorithm} needs an EC public key"
        if key.curve.name != _EC_CURVES[algorithm]:  # RFC 7518 §3.4
            return f"{algorithm} needs a key on curve {_EC_CURVES[algorithm]}, not {key.curve.name}"
        return None
    if algorithm == "EdDSA":
        if not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            return "EdDSA needs an Ed25519 or Ed448 public key"  # RFC 8037 §3.1
        return None
    return f"{algorithm} does not use a public key"


def load_public_key(algorithm: str, pem: str) -> PublicKeyTypes:
    """The PEM public key ``pem``, checked to suit ``algorithm``; ValueError otherwise."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError("public_key is not a PEM public key (BEGIN PUBLIC KEY)") from exc
    problem = public_key_problem(algorithm, key)
    if problem is not None:
        raise ValueError(problem)
    return key


class JwtCredential(CredentialModel):
    key: str = Field(
        min_length=1,
        description="The token's `iss` claim or `kid` header value that selects this "
        "credential (which of the two: the jwt plugin's `key_claim`).",
    )
    algorithm: JwtAlgorithm = Field(
        "HS256", description="The only algorithm tokens verified with this credential may use."
    )
    secret: str | None = Field(
        None,
        repr=False,
        description='HMAC secret for HS256/384/512, e.g. "${JWT_SECRET}": at least 32, 48 or '
        "64 bytes (RFC 7518 §3.2).",
    )
    secret_base64: bool = Field(
        False, description="The secret is the base64 (or base64url) form of binary key bytes."
    )
    public_key: str | None = Field(
        None,
        description="For the RS, PS, ES and EdDSA algorithms: a PEM public key, or the path "
        "of a file holding one.",
    )

    def identity(self) -> str:
        return self.key

    @field_validator("public_key")
    @classmethod
    def _read_key_file(cls, value: str | None) -> str | None:
        if value is None or value.lstrip().startswith("-----BEGIN"):
            return value
        try:
            return Path(value).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ValueError(f"cannot read public key file {value!r}: {reason}") from exc

    @model_validator(mode="after")
    def _fits_algorithm(self) -> JwtCredential:
        if self.algorithm.startswith("HS"):
            if self.secret is None or self.public_key is not None:
                raise ValueError(f"{self.algorithm} needs 'secret' (and no 'public_key')")
            needed = int(self.algorithm[2:]) // 8
            if len(self.material) < needed:
                raise ValueError(f"an {self.algorithm} secret must be at least {needed} bytes")
        else:
            if self.public_key is None or self.secret is not None:
                raise ValueError(f"{self.algorithm} needs 'public_key' (and no 'secret')")
            self.material  # noqa: B018  (reads the key, checking it suits the algorithm)
        return self

    @cached_property
    def material(self) -> Any:
        """The HMAC secret as bytes (UTF-8 of the secret, or its base64 decoded), or the
        public key object; read once, when the credential is validated."""
        if self.algorithm.startswith("HS"):
            secret = self.secret or ""
            return decode_base64(secret) if self.secret_base64 else secret.encode()
        return load_public_key(self.algorithm, self.public_key or "")


#: iss or kid -> each jwt credential with its consumer (several while a key rotates)
CredentialIndex = dict[str, tuple[tuple[JwtCredential, ConsumerRuntime], ...]]


def index_credentials(consumers: Consumers) -> CredentialIndex:
    """Every consumer's jwt credential by its ``key`` (built once per config)."""
    index: CredentialIndex = {}
    for credential, consumer in consumers.credentials("jwt", JwtCredential):
        index[credential.key] = (*index.get(credential.key, ()), (credential, consumer))
    return index


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
    by_key = consumers.shared(index_credentials, lambda: index_credentials(consumers))
    for selector, entries in by_key.items():
        keys = tuple(
            VerificationKey(frozenset({credential.algorithm}), credential.material, consumer)
            for credential, consumer in entries
            if credential.algorithm in allowed
        )
        if keys:
            index[selector] = keys
    return index


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
