"""The tables of people's accounts: users, their team memberships, their web sessions
and the record of failed sign-ins (``quiver.accounts`` reads and writes them).

A user's email is unique and stored lowercased; the password only as its scrypt hash.
A web session is kept as the SHA-256 of its id (the cookie holds the id): reading
this table gives nobody a session.  A session belongs to a user, or, in the console,
to the admin token that was typed in to open it (and ends when that token is
revoked: the row goes with it).

``login_failures`` counts failed sign-ins per email and per client address in a
window that starts at the first failure, one row per key, so that every admin
process of a cluster sees the same count.  Keys are SHA-256 digests of the email or
the address: the table says how often, never who.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from quiver.store.models import Base

users = Table(
    "users",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # lowercased
    Column("password_hash", String(200), nullable=False),  # scrypt$n$r$p$salt$hash
    Column("display_name", String(200), nullable=False),
    Column("is_admin", Boolean, nullable=False),  # a platform operator: every team
    Column("disabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

memberships = Table(
    "memberships",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", Integer, ForeignKey("teams.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", "team_id"),
    Index("ix_memberships_team_id", "team_id"),
    CheckConstraint("role IN ('owner', 'admin', 'developer', 'viewer')", name="role"),
)

web_sessions = Table(
    "web_sessions",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("session_hash", String(64), nullable=False, unique=True),  # sha256 hex of the id
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("token_id", Integer, ForeignKey("admin_tokens.id", ondelete="CASCADE"), nullable=True),
    Column("surface", String(16), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # the absolute end
    Column("last_seen", DateTime(timezone=True), nullable=False),  # for the idle end
    Index("ix_web_sessions_expires_at", "expires_at"),
    CheckConstraint("surface IN ('portal', 'console')", name="surface"),
    CheckConstraint(
        "(CASE WHEN user_id IS NULL THEN 0 ELSE 1 END)"
        " + (CASE WHEN token_id IS NULL THEN 0 ELSE 1 END) = 1",
        name="one_holder",
    ),
)

login_failures = Table(
    "login_failures",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),  # "email" or "address"
    Column("key", String(64), nullable=False),  # sha256 hex of the email or address
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("failures", Integer, nullable=False),
    UniqueConstraint("kind", "key"),
)
