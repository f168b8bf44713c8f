"""Consumers: the callers of APIs, their groups and their credentials.

A consumer's ``credentials`` are keyed by the name of the authentication plugin
that checks them (``key-auth``, ``basic-auth``, ``jwt``, ...).  Each such plugin
declares the model of its credentials (its ``credential`` class attribute, a
:class:`CredentialModel`); the config layer knows none of them.  Until a config is
validated against a plugin catalog, a credential holds its keys as written.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Hashable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from quiver.config.apis import Subscription
from quiver.config.base import Strict


class Credential(BaseModel):
    """One credential of a consumer; a plugin's :class:`CredentialModel` refines it."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def identity(self) -> Hashable | None:
        """What picks this credential out from the request (an API key's digest, a
        JWT's issuer): two consumers may not share one, since a request carrying it
        would identify either.  None when credentials are told apart otherwise."""
        return None


class CredentialModel(Credential):
    """Base of the credential model an authentication plugin declares::

        class ApiTokenCredential(CredentialModel):
            token: str = Field(min_length=16, description="The token, e.g. \"${TOKEN}\".")

    Unknown keys are errors and a validated credential is frozen, as in every
    config model.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, with or without padding; ValueError when malformed."""
    core = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(core + "=" * (-len(core) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("not valid base64") from exc


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
    credentials: dict[str, list[Credential]] = Field(
        default_factory=dict,
        description="How the consumer proves who it is: credentials by the name of the "
        "authentication plugin that checks them, e.g. `key-auth: [{key: ...}]` (each "
        "plugin's page lists the keys of its credentials).",
    )
    plugins: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Plugins by name with their config (see `quiver plugins`); once an "
        "authentication plugin identifies the consumer, they override the route's, "
        "target's and global ones of the same name for the plugins still to run.",
    )
    subscriptions: list[Subscription] = Field(
        default_factory=list,
        description="Approved subscriptions to API plans, e.g. `[{api: orders, plan: "
        "free}]`: what lets the consumer call an API with plans (see docs/apis.md).",
    )
    team: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$",
        description="The team the consumer's AI usage counts toward (`ai.budgets` and "
        "`ai.limits` with `team`, and the spend analytics by team).",
    )
