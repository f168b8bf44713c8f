"""Consumers: the callers of APIs, their groups and their credentials."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pydantic import ConfigDict, Field, field_validator, model_validator

from quiver.config.base import Strict

_KEY_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_SCRYPT_HASH = re.compile(
    r"^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$"
)
SCRYPT_MIN_N = 2**14
SCRYPT_MAX_MEMORY = 64 * 1024 * 1024  # for the 128 * r * n bytes of scryptROMix (RFC 7914 §5)

JwtAlgorithm = Literal[
    "HS256", "HS384", "HS512",
    "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512",
    "ES256", "ES384", "ES512",
    "EdDSA",
]  # fmt: skip
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}


class KeyAuthCredential(Strict):
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


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, with or without padding; ValueError when malformed."""
    core = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(core + "=" * (-len(core) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("not valid base64") from exc


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


class BasicAuthCredential(Strict):
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


class JwtCredential(Strict):
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
            if len(self.secret_bytes()) < needed:
                raise ValueError(f"an {self.algorithm} secret must be at least {needed} bytes")
        else:
            if self.public_key is None or self.secret is not None:
                raise ValueError(f"{self.algorithm} needs 'public_key' (and no 'secret')")
            load_public_key(self.algorithm, self.public_key)
        return self

    def secret_bytes(self) -> bytes:
        """The HMAC key as bytes (UTF-8 of the secret, or its base64 decoded)."""
        secret = self.secret or ""
        return decode_base64(secret) if self.secret_base64 else secret.encode()


class Credentials(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key_auth: list[KeyAuthCredential] = Field(
        default_factory=list, alias="key-auth", description="API keys of the consumer."
    )
    basic_auth: list[BasicAuthCredential] = Field(
        default_factory=list,
        alias="basic-auth",
        description="Usernames and passwords of the consumer (HTTP Basic authentication).",
    )
    jwt: list[JwtCredential] = Field(
        default_factory=list, description="Keys that verify the consumer's JSON Web Tokens."
    )


class Consumer(Strict):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$",
        description="Unique name, sent upstream as X-Consumer-Username.",
    )
    custom_id: str | None = Field(
        None, description="Your own identifier, sent upstream as X-Consumer-Custom-ID."
    )
    groups: list[str] = Field(default_factory=list, description="Groups, for the acl plugin.")
    tags: list[str] = Field(default_factory=list, description="Free-form labels.")
    credentials: Credentials = Field(
        default_factory=Credentials, description="How the consumer proves who it is."
    )
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Plugins by name with their config (see `quiver plugins`); once an "
        "authentication plugin identifies the consumer, they override the route's, "
        "target's and global ones of the same name for the plugins still to run.",
    )
