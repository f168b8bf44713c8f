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

Members are managed with :func:`assign_role` and :func:`remove_member`, which keep
two rules in the transaction that changes the membership:

- a team always keeps at least one owner (:class:`LastOwner`): the team's row is
  locked first (SQLite: every write transaction holds the write lock; PostgreSQL:
  ``SELECT ... FOR UPDATE``), so two demotions racing each other are counted one
  after the other and cannot leave the team without an owner;
- only an owner grants the owner role or changes an owner's membership
  (:class:`OwnerOnly`): an ``admin`` manages the members below it.

``set_membership`` and ``remove_membership`` keep neither rule: they are for
commands and tests that set up teams.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from sqlalchemy import Connection, delete, func, insert, select, update

from quiver.errors import AccountError
from quiver.store import Store, UnknownTeam
from quiver.store.accounttables import memberships, users
from quiver.store.engine import WRITE
from quiver.store.models import Team

TeamRole = Literal["owner", "admin", "developer", "viewer"]
TEAM_ROLES: tuple[TeamRole, ...] = ("owner", "admin", "developer", "viewer")
_RANKS: dict[TeamRole, int] = {"viewer": 0, "developer": 1, "admin": 2, "owner": 3}


class LastOwner(AccountError):
    """The change would leave the team without an owner."""

    field = "role"


class NoAccount(AccountError):
    """Nobody has an account with that email."""

    field = "email"


class OwnerOnly(AccountError):
    """Only an owner grants the owner role or changes an owner's membership."""

    field = "role"


@dataclass(frozen=True)
class Member:
    """A member of a team as listed: who, and their role there."""

    user_id: int
    email: str
    display_name: str
    role: TeamRole


def allows(role: TeamRole, needed: TeamRole) -> bool:
    """Whether ``role`` may do what ``needed`` may."""
    return _RANKS[role] >= _RANKS[needed]


def check_change(by: TeamRole, current: TeamRole | None, wanted: TeamRole | None) -> None:
    """OwnerOnly unless a manager whose role is ``by`` may change a membership from
    ``current`` to ``wanted`` (None: not a member).  Whether ``by`` manages members at
    all is the caller's to check."""
    if by != "owner" and "owner" in (current, wanted):
        raise OwnerOnly("Only an owner of the team can grant the owner role or change an owner.")


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


def team_members(store: Store, team: str) -> list[Member]:
    """The members of ``team`` with their email and name, by email."""
    query = (
        select(users.c.id, users.c.email, users.c.display_name, memberships.c.role)
        .join(memberships, memberships.c.user_id == users.c.id)
        .join(Team, Team.id == memberships.c.team_id)
        .where(Team.name == team)
        .order_by(users.c.email)
    )
    with store.engine.connect() as connection:
        return [
            Member(user_id, email, name, cast(TeamRole, role))
            for user_id, email, name, role in connection.execute(query)
        ]


def member_counts(store: Store) -> dict[str, int]:
    """How many members each team has, by team name (teams without any are absent)."""
    query = (
        select(Team.name, func.count(memberships.c.id))
        .join(memberships, memberships.c.team_id == Team.id)
        .group_by(Team.name)
    )
    with store.engine.connect() as connection:
        return {name: count for name, count in connection.execute(query)}


def assign_role(
    store: Store, team: str, email: str, role: TeamRole, *, by: TeamRole
) -> TeamRole | None:
    """Make the user of ``email`` a member of ``team`` as ``role``, or change their
    role there, as a manager whose role is ``by``; their role before (None: they were
    no member).  UnknownTeam, NoAccount, OwnerOnly, or LastOwner when it would demote
    the last owner."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        team_id = _lock_team(connection, team)
        user_id = _user_id(connection, email)
        current = _role(connection, team_id, user_id)
        check_change(by, current, role)
        if current == "owner" and role != "owner":
            _keep_an_owner(connection, team_id, team)
        if current != role:
            insert_membership(connection, user_id, team_id, role)
    return current


def remove_member(store: Store, team: str, email: str, *, by: TeamRole) -> TeamRole | None:
    """Take the user of ``email`` out of ``team`` as a manager whose role is ``by``;
    the role they had (None: they were no member, and nothing changed).  UnknownTeam,
    NoAccount, OwnerOnly, or LastOwner when they are its last owner."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        team_id = _lock_team(connection, team)
        user_id = _user_id(connection, email)
        current = _role(connection, team_id, user_id)
        if current is None:
            return None
        check_change(by, current, None)
        if current == "owner":
            _keep_an_owner(connection, team_id, team)
        connection.execute(
            delete(memberships).where(
                memberships.c.user_id == user_id, memberships.c.team_id == team_id
            )
        )
    return current


def _lock_team(connection: Connection, team: str) -> int:
    """The team's id, its row locked until the transaction ends: every change of its
    memberships through this module waits for the one before."""
    team_id = connection.scalar(select(Team.id).where(Team.name == team).with_for_update())
    if team_id is None:
        raise UnknownTeam(f"there is no team {team!r}")
    return team_id


def _user_id(connection: Connection, email: str) -> int:
    user_id: int | None = connection.scalar(
        select(users.c.id).where(users.c.email == email.strip().lower())
    )
    if user_id is None:
        raise NoAccount(
            "There is no account with this email. Ask them to sign up at the developer "
            "portal, then add them."
        )
    return user_id


def _role(connection: Connection, team_id: int, user_id: int) -> TeamRole | None:
    role = connection.scalar(
        select(memberships.c.role).where(
            memberships.c.team_id == team_id, memberships.c.user_id == user_id
        )
    )
    return None if role is None else cast(TeamRole, role)


def _keep_an_owner(connection: Connection, team_id: int, team: str) -> None:
    """LastOwner unless the team has another owner besides the one about to go."""
    owners = connection.scalar(
        select(func.count())
        .select_from(memberships)
        .where(memberships.c.team_id == team_id, memberships.c.role == "owner")
    )
    if (owners or 0) <= 1:
        raise LastOwner(
            f"Team {team} must keep at least one owner: make another member owner first."
        )
