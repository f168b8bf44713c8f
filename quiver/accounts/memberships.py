"""Who belongs to which team, as what: ``owner``, ``admin``, ``developer`` or ``viewer``.

The roles rank in that order, each allowing what the ones below it allow:

| role | may (as the portal and console enforce it) |
|---|---|
| ``viewer`` | see the team's APIs, apps, subscriptions and traffic |
| ``developer`` | also make apps, keys and subscription requests |
| ``admin`` | also change the team's APIs and decide subscription requests |
| ``owner`` | also manage the team's members |

A team's first owner is whoever made it by signing up.  Removing a team removes its
memberships with it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal, cast

from sqlalchemy import Connection, delete, insert, select, update

from quiver.store import Store, UnknownTeam
from quiver.store.accounttables import memberships
from quiver.store.engine import WRITE
from quiver.store.models import Team

TeamRole = Literal["owner", "admin", "developer", "viewer"]
TEAM_ROLES: tuple[TeamRole, ...] = ("owner", "admin", "developer", "viewer")
_RANKS: dict[TeamRole, int] = {"viewer": 0, "developer": 1, "admin": 2, "owner": 3}


def allows(role: TeamRole, needed: TeamRole) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return _RANKS[role] >= _RANKS[needed]


def set_membership(store: Store, user_id: int, team: str, role: TeamRole) -> None:
    """Make the user a member of ``team`` as ``role`` (changing the role of a member);
    UnknownTeam when there is no such team."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        team_id = connection.scalar(select(Team.id).where(Team.name == team))
        if team_id is None:
            raise UnknownTeam(f"there is no team {team!r}")
        insert_membership(connection, user_id, team_id, role)


def insert_membership(connection: Connection, user_id: int, team_id: int, role: TeamRole) -> None:
    """Set the role in the caller's transaction."""
    changed = connection.execute(
        update(memberships)
        .where(memberships.c.user_id == user_id, memberships.c.team_id == team_id)
        .values(role=role)
    )
    if not changed.rowcount:
        connection.execute(
            insert(memberships).values(
                user_id=user_id, team_id=team_id, role=role, created_at=datetime.now(UTC)
            )
        )


def remove_membership(store: Store, user_id: int, team: str) -> bool:
    """Whether the user was a member of ``team`` (and is no longer)."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        team_id = select(Team.id).where(Team.name == team).scalar_subquery()
        result = connection.execute(
            delete(memberships).where(
                memberships.c.user_id == user_id, memberships.c.team_id == team_id
            )
        )
    return bool(result.rowcount)


def memberships_of(store: Store, user_id: int) -> dict[str, TeamRole]:
    """The user's teams and role in each, by team name."""
    query = (
        select(Team.name, memberships.c.role)
        .join(Team, Team.id == memberships.c.team_id)
        .where(memberships.c.user_id == user_id)
        .order_by(Team.name)
    )
    with store.engine.connect() as connection:
        return {name: cast(TeamRole, role) for name, role in connection.execute(query)}


def members_of(store: Store, team: str) -> dict[int, TeamRole]:
    """The members of ``team`` (user id to role)."""
    query = (
        select(memberships.c.user_id, memberships.c.role)
        .join(Team, Team.id == memberships.c.team_id)
        .where(Team.name == team)
        .order_by(memberships.c.user_id)
    )
    with store.engine.connect() as connection:
        return {user_id: cast(TeamRole, role) for user_id, role in connection.execute(query)}
