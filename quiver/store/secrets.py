"""Secrets the store keeps only in hashed form.

A consumer's ``key-auth`` key is stored as its ``key_hash`` (``sha256:<hex>``, the
digest key-auth looks keys up by) and a ``basic-auth`` password as its
``password_hash`` (the scrypt form basic-auth checks), exactly as a config file may
write them, so a stored declaration is a valid config document with no secret in
clear.  Admin API tokens are stored as their SHA-256: they are random and long, so
a fast hash is enough, and they are compared in constant time.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from typing import Any, Protocol, cast

from quiver.config.models import Config

_KEY_AUTH, _BASIC_AUTH = "key-auth", "basic-auth"


class _PasswordHash(Protocol):
    def matches(self, password: bytes) -> bool: ...


class _PasswordCredential(Protocol):
    """basic-auth's credential model, as handed in through the catalog."""

    def hashed(self) -> _PasswordHash: ...


def sha256_hash(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def without_secrets(
    document: dict[str, Any], config: Config, before: dict[str, Any]
) -> dict[str, Any]:
    """``document`` (validated as ``config``) with keys and passwords hashed.

    A password whose consumer already has a stored hash of it for the same username
    (in ``before``) keeps that hash, so applying the same document twice changes
    nothing even though each new hash has a fresh salt.
    """
    result = copy.deepcopy(document)
    stored = {item["name"]: item for item in before.get("consumers", [])}
    for index, consumer in enumerate(result.get("consumers", [])):
        credentials = consumer.get("credentials", {})
        for item in credentials.get(_KEY_AUTH, []):
            if "key" in item:
                item["key_hash"] = sha256_hash(item.pop("key"))
        models = config.consumers[index].credentials.get(_BASIC_AUTH, [])
        old = stored.get(consumer["name"], {}).get("credentials", {}).get(_BASIC_AUTH, [])
        for item, model in zip(credentials.get(_BASIC_AUTH, []), models, strict=True):
            if "password" in item:
                password = item.pop("password")
                item["password_hash"] = _kept_hash(item["username"], password, old, model)
    return result


def _kept_hash(username: str, password: str, old: list[dict[str, Any]], model: object) -> str:
    for item in old:
        if item.get("username") == username and "password_hash" in item:
            stored = type(model).model_validate(item)  # type: ignore[attr-defined]
            if cast(_PasswordCredential, stored).hashed().matches(password.encode()):
                return str(item["password_hash"])
    return str(cast(_PasswordCredential, model).hashed())


def new_admin_token() -> str:
    """A fresh admin token (256 random bits, URL-safe)."""
    return "qv_" + secrets.token_urlsafe(32)


def hash_admin_token(token: str) -> str:
    return sha256_hash(token)


def admin_token_matches(token_hash: str, token: str) -> bool:
    """Whether ``token`` is the one ``token_hash`` was made from, in constant time."""
    return hmac.compare_digest(token_hash.encode(), hash_admin_token(token).encode())
