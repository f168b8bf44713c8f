"""Consumers: the callers of APIs, their groups and their credentials."""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field, model_validator

from quiver.config.base import Strict

_KEY_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


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


class Credentials(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    key_auth: list[KeyAuthCredential] = Field(
        default_factory=list, alias="key-auth", description="API keys of the consumer."
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
