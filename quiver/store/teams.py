"""Teams: created empty, listed, and deleted once they hold nothing.

A team is also created by the first apply that names it (:meth:`Store.apply`);
the admin API creates them explicitly, so that a mistyped team name is an error
rather than a new team.  Deleting a team removes its tokens and its revisions
with it: its history means nothing once the team is gone.  The ``default`` team
always exists.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError

from quiver.errors import StoreError
from quiver.store.models import (
    DEFAULT_TEAM,
    ConsumerRow,
    Head,
    PluginRow,
    RevisionRow,
    RouteRow,
    TargetRow,
    Team,
)
from quiver.store.repository import Store, UnknownTeam


class TeamExists(StoreError):
    """A team of that name exists already."""


class TeamNotEmpty(StoreError):
    """The team still holds entities (or is the default team)."""


def list_teams(store: Store) -> list[str]:
    """Every team's name, in order."""
    with store._transaction() as session:
        return list(session.scalars(select(Team.name).order_by(Team.name)))


def team_exists(store: Store, name: str) -> bool:
    with store._transaction() as session:
        return session.scalar(select(Team.id).where(Team.name == name)) is not None


def create_team(store: Store, name: str) -> None:
    try:
        with store._transaction(write=True) as session:
            if session.scalar(select(Team.id).where(Team.name == name)) is not None:
                raise TeamExists(f"a team named {name!r} exists already")
            session.add(Team(name=name, frame={}))
    except IntegrityError as exc:  # created meanwhile
        raise TeamExists(f"a team named {name!r} exists already") from exc


def delete_team(store: Store, name: str) -> None:
    """Remove an empty team with its tokens and revisions.  UnknownTeam when there
    is none; TeamNotEmpty when it is ``default`` or still holds entities."""
    if name == DEFAULT_TEAM:
        raise TeamNotEmpty("the default team cannot be deleted")
    with store._transaction(write=True) as session:
        session.scalars(select(Head).with_for_update()).one()  # no apply fills it meanwhile
        team = session.scalar(select(Team).where(Team.name == name))
        if team is None:
            raise UnknownTeam(f"there is no team {name!r}")
        for row_type in (TargetRow, RouteRow, ConsumerRow, PluginRow):
            if session.scalar(select(exists().where(row_type.team_id == team.id))):
                raise TeamNotEmpty(
                    f"team {name!r} still holds {row_type.__tablename__}: remove them first"
                )
        session.execute(delete(RevisionRow).where(RevisionRow.team_id == team.id))
        session.delete(team)
