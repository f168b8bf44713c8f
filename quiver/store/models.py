"""The store's tables, as SQLAlchemy declarative models.

Each entity keeps its name (and what refers to it) in real columns, unique per
team, and the rest of its document as written in a config file in a JSON column:
the store says nothing about an entity's fields that the config models do not
already say.  A target's nodes are part of its document (its ``url`` or ``nodes``),
not rows of their own: they change together with the target and nothing refers to
one node.  A consumer's credentials and every entity's plugins are rows of their
own, so that secrets are held apart and later looked up by themselves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

DEFAULT_TEAM = "default"
#: PostgreSQL channel announcing each new head revision (its number as the payload);
#: a trigger on ``head`` sends it, inside the apply's transaction (migration 0002)
REVISIONS_CHANNEL = "quiver_revisions"
Role = Literal["admin", "editor", "viewer"]
Document = dict[str, Any]
_GLOBAL = "target_id IS NULL AND route_id IS NULL AND consumer_id IS NULL"

_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {Document: JSON}


class Team(Base):
    """Owner of entities; every entity belongs to exactly one (``default`` at first)."""

    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    #: the declaration's top-level keys with the entity lists and global plugins emptied
    #: (they are rows): limits, timeouts, pool, and which keys were written at all
    frame: Mapped[Document] = mapped_column(default=dict)


def _team() -> Mapped[int]:
    return mapped_column(ForeignKey("teams.id", ondelete="RESTRICT"), index=True)


class Head(Base):
    """One row: the number of the latest revision.  An apply locks it first, so that
    applies run one after the other and revision numbers have no gaps."""

    __tablename__ = "head"
    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)


class TargetRow(Base):
    __tablename__ = "targets"
    __table_args__ = (UniqueConstraint("team_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = _team()
    name: Mapped[str] = mapped_column(String(128))
    position: Mapped[int]
    document: Mapped[Document]  # the target as written, nodes included, without plugins


class RouteRow(Base):
    __tablename__ = "routes"
    __table_args__ = (UniqueConstraint("team_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = _team()
    name: Mapped[str] = mapped_column(String(128))
    position: Mapped[int]
    #: None for an AI route (its document's ``ai`` says what answers it)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("targets.id", ondelete="RESTRICT"))
    document: Mapped[Document]  # without plugins; "target" names target_id's row


class ConsumerRow(Base):
    __tablename__ = "consumers"
    __table_args__ = (UniqueConstraint("team_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = _team()
    name: Mapped[str] = mapped_column(String(128))
    position: Mapped[int]
    document: Mapped[Document]  # without credentials and plugins


class CredentialRow(Base):
    """One credential of a consumer, secrets only in hashed form (see secrets.py)."""

    __tablename__ = "credentials"
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = _team()
    consumer_id: Mapped[int] = mapped_column(
        ForeignKey("consumers.id", ondelete="CASCADE"), index=True
    )
    plugin: Mapped[str] = mapped_column(String(128))
    position: Mapped[int]
    document: Mapped[Document]


class PluginRow(Base):
    """A plugin's config attached globally (no owner) or to one target, route or consumer."""

    __tablename__ = "plugins"
    __table_args__ = (
        UniqueConstraint("team_id", "name", "target_id", "route_id", "consumer_id"),
        CheckConstraint(
            "(CASE WHEN target_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN route_id IS NULL THEN 0 ELSE 1 END)"
            " + (CASE WHEN consumer_id IS NULL THEN 0 ELSE 1 END) <= 1",
            name="one_owner",
        ),
        Index(
            "ix_plugins_global_name",
            "team_id",
            "name",
            unique=True,
            sqlite_where=text(_GLOBAL),
            postgresql_where=text(_GLOBAL),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = _team()
    name: Mapped[str] = mapped_column(String(128))
    target_id: Mapped[int | None] = mapped_column(
        ForeignKey("targets.id", ondelete="CASCADE"), index=True
    )
    route_id: Mapped[int | None] = mapped_column(
        ForeignKey("routes.id", ondelete="CASCADE"), index=True
    )
    consumer_id: Mapped[int | None] = mapped_column(
        ForeignKey("consumers.id", ondelete="CASCADE"), index=True
    )
    config: Mapped[Document]


class AdminToken(Base):
    """A token of the admin API, kept only as its SHA-256 (see secrets.py)."""

    __tablename__ = "admin_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    token_hash: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    __table_args__ = (CheckConstraint("role IN ('admin', 'editor', 'viewer')", name="role"),)


class RevisionRow(Base):
    """One applied change: who, when, why, what changed and the state it left."""

    __tablename__ = "revisions"
    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    team_id: Mapped[int] = _team()
    author: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    message: Mapped[str] = mapped_column(String(4096))
    diff: Mapped[Document]  # quiver.store.diffing.Diff as JSON
    document: Mapped[Document]  # the team's whole declaration after it, for rollback
