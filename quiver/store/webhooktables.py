"""The webhook tables: endpoints, the messages published to them, a durable
delivery queue (one row per message and endpoint) and the log of attempts.

An endpoint's secrets are HMAC keys the sender signs with, so they are kept as
they are (a hash could not sign); the admin API never shows them after creating
them, and nothing logs them.  ``secrets`` is a JSON list of
``{"secret": "whsec_...", "expires_ms": null | int}``, newest first: during a
rotation the old secret stays until it expires and messages carry both signatures.

A delivery is ``pending`` until the endpoint answered a 2xx (``delivered``) or the
retry schedule ran out (``dead``).  A sender claims a due delivery by setting
``claimed_until_ms`` (a lease) in a short transaction, then posts it outside any
transaction: one killed mid-delivery leaves the row pending, and once the lease
ends it is sent again with the same ``webhook-id``.  Times are epoch milliseconds.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from quiver.store.models import Base

_Id = BigInteger().with_variant(Integer(), "sqlite")

webhook_endpoints = Table(
    "webhook_endpoints",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("url", String, nullable=False),
    Column("secrets", JSON, nullable=False),
    Column("event_types", JSON, nullable=False),  # [] means every event type
    Column("description", String, nullable=False, default=""),
    Column("ordered", Boolean, nullable=False, default=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("disabled_reason", String, nullable=True),
    Column("failing_since_ms", BigInteger, nullable=True),  # first failure since a success
    Column("created_ms", BigInteger, nullable=False),
)

webhook_messages = Table(
    "webhook_messages",
    Base.metadata,
    Column("id", _Id, primary_key=True),
    Column("msg_id", String(64), nullable=False, unique=True),  # the webhook-id
    Column("event_type", String(256), nullable=False),
    Column("payload", Text, nullable=False),  # the body, exactly as signed
    Column("created_ms", BigInteger, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    Base.metadata,
    Column("id", _Id, primary_key=True),
    Column(
        "message_id",
        _Id,
        ForeignKey("webhook_messages.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "endpoint_id",
        Integer,
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("state", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("claimed_until_ms", BigInteger, nullable=False, default=0),
    Column("last_status", Integer, nullable=True),
    Column("updated_ms", BigInteger, nullable=False),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_ms"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    Index("ux_webhook_deliveries_pair", "message_id", "endpoint_id", unique=True),
)

webhook_attempts = Table(
    "webhook_attempts",
    Base.metadata,
    Column("id", _Id, primary_key=True),
    Column(
        "delivery_id",
        _Id,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("endpoint_id", Integer, nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("status", Integer, nullable=True),  # null: no answer (refused, timed out)
    Column("latency_ms", Integer, nullable=False),
    Column("error", String, nullable=True),
    Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),
)
