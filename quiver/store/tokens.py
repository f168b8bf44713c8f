"""Admin API tokens: created, listed, revoked and checked.

A token is shown once, when it is created; the store keeps only its SHA-256
(:mod:`quiver.store.secrets`).  A token names its role and, when it is scoped to
one, its team.  Checking a token looks its hash up and then compares the stored
hash with the presented token's in constant time, so the time a check takes says
nothing about how much of a guess was right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quiver.errors import StoreError
from quiver.store.models import AdminToken, Role, Team
from quiver.store.repository import Store, UnknownTeam
from quiver.store.secrets import admin_token_matches, hash_admin_token, new_admin_token


class TokenExists(StoreError):
    """A token of that name exists already."""


@dataclass(frozen=True)
class TokenInfo:
    """What may be told about a token: never the token nor its hash."""

    name: str
    role: Role
    team: str | None
    created_at: datetime


def create_token(
    store: Store, name: str, role: Role, team: str | None = None
) -> tuple[TokenInfo, str]:
    """A new token: its description and the token itself, which nothing keeps."""
    token = new_admin_token()
    return _insert(store, name, role, team, token), token


def seed_token(store: Store, token: str, name: str, role: Role = "admin") -> None:
    """Make ``token`` (e.g. from QUIVER_ADMIN_TOKEN) a valid token named ``name``;
    a token already of that name is given this token's hash."""
    with store._transaction(write=True) as session:
        hashed = hash_admin_token(token)
        if session.scalar(select(AdminToken).where(AdminToken.token_hash == hashed)):
            return
        row = session.scalar(select(AdminToken).where(AdminToken.name == name))
        if row is None:
            session.add(AdminToken(name=name, token_hash=hashed, role=role, team_id=None))
        else:
            row.token_hash, row.role, row.team_id = hashed, role, None


def _insert(store: Store, name: str, role: Role, team: str | None, token: str) -> TokenInfo:
    try:
        with store._transaction(write=True) as session:
            if session.scalar(select(AdminToken.id).where(AdminToken.name == name)):
                raise TokenExists(f"a token named {name!r} exists already")
            team_id = None if team is None else _team_id(session, team)
            row = AdminToken(
                name=name,
                token_hash=hash_admin_token(token),
                role=role,
                team_id=team_id,
                created_at=datetime.now(UTC),
            )
            session.add(row)
            session.flush()
            return _info(row, team)
    except IntegrityError as exc:  # a token of that name was added meanwhile
        raise TokenExists(f"a token named {name!r} exists already") from exc


def _team_id(session: Session, team: str) -> int:
    found = session.scalar(select(Team.id).where(Team.name == team))
    if found is None:
        raise UnknownTeam(f"there is no team {team!r}")
    return found


def list_tokens(store: Store) -> list[TokenInfo]:
    """Every token, by name."""
    with store._transaction() as session:
        query = select(AdminToken, Team.name).outerjoin(Team).order_by(AdminToken.name)
        return [_info(row, team) for row, team in session.execute(query)]


def revoke_token(store: Store, name: str) -> bool:
    """Remove the token ``name``; whether there was one."""
    with store._transaction(write=True) as session:
        result = session.execute(delete(AdminToken).where(AdminToken.name == name))
        return bool(getattr(result, "rowcount", 0))


def count_tokens(store: Store) -> int:
    with store._transaction() as session:
        return session.scalar(select(func.count()).select_from(AdminToken)) or 0


def authenticate(store: Store, token: str) -> TokenInfo | None:
    """The token ``token`` is, or None when it is unknown or revoked."""
    found = identify(store, token)
    return None if found is None else found[1]


def identify(store: Store, token: str) -> tuple[int, TokenInfo] | None:
    """The row id and description of the token ``token`` (what a console session opened
    with it refers to), or None when it is unknown or revoked."""
    hashed = hash_admin_token(token)
    with store._transaction() as session:
        query = select(AdminToken, Team.name).outerjoin(Team)
        found = session.execute(query.where(AdminToken.token_hash == hashed)).first()
        if found is None or not admin_token_matches(found[0].token_hash, token):
            return None
        return found[0].id, _info(found[0], found[1])


def token_by_id(store: Store, token_id: int) -> TokenInfo | None:
    """The token of row ``token_id``, or None once it is revoked."""
    with store._transaction() as session:
        query = select(AdminToken, Team.name).outerjoin(Team)
        found = session.execute(query.where(AdminToken.id == token_id)).first()
        return None if found is None else _info(found[0], found[1])


def _info(row: AdminToken, team: str | None) -> TokenInfo:
    created = row.created_at
    if created.tzinfo is None:  # SQLite keeps no time zone: it was written in UTC
        created = created.replace(tzinfo=UTC)
    return TokenInfo(row.name, cast(Role, row.role), team, created)
