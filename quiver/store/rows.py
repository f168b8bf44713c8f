"""A team's declaration document to rows and back.

Entities keep their row (and id) while they exist: an apply updates a changed
entity in place and replaces only its plugins and credentials.  A list or mapping
the rows fill is kept empty in the entity's document (``plugins: {}``,
``credentials: {key-auth: []}``), so a key that was written, even empty, reads back.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from quiver.store.models import ConsumerRow, CredentialRow, PluginRow, RouteRow, TargetRow, Team

Entity = TargetRow | RouteRow | ConsumerRow
_LISTS: tuple[tuple[str, str, type[Entity]], ...] = (
    ("targets", "target", TargetRow),
    ("routes", "route", RouteRow),
    ("consumers", "consumer", ConsumerRow),
)


def read(session: Session, team: Team) -> dict[str, Any]:
    document = copy.deepcopy(team.frame)
    plugins: dict[tuple[str, int | None], dict[str, Any]] = {}
    for plugin in session.scalars(select(PluginRow).where(PluginRow.team_id == team.id)):
        owner = (
            ("target", plugin.target_id)
            if plugin.target_id is not None
            else ("route", plugin.route_id)
            if plugin.route_id is not None
            else ("consumer", plugin.consumer_id)
            if plugin.consumer_id is not None
            else ("global", None)
        )
        plugins.setdefault(owner, {})[plugin.name] = copy.deepcopy(plugin.config)
    if "plugins" in document:
        document["plugins"] = plugins.get(("global", None), {})
    names: dict[int, str] = {}
    for key, kind, row_type in _LISTS:
        query = select(row_type).where(row_type.team_id == team.id).order_by(row_type.position)
        rows = cast(list[Entity], session.scalars(query).all())
        items = []
        for row in rows:
            item = copy.deepcopy(row.document)
            if isinstance(row, TargetRow):
                names[row.id] = row.name
            if isinstance(row, RouteRow):
                item["target"] = names[row.target_id]
            if "plugins" in item:
                item["plugins"] = plugins.get((kind, row.id), {})
            if isinstance(row, ConsumerRow) and "credentials" in item:
                _fill_credentials(session, row, item["credentials"])
            items.append(item)
        if key in document:
            document[key] = items
    return document


def _fill_credentials(session: Session, consumer: ConsumerRow, into: dict[str, Any]) -> None:
    query = select(CredentialRow).where(CredentialRow.consumer_id == consumer.id)
    for row in session.scalars(query.order_by(CredentialRow.plugin, CredentialRow.position)):
        into[row.plugin].append(copy.deepcopy(row.document))


def write(session: Session, team: Team, document: dict[str, Any]) -> None:
    """Make the team's rows hold ``document`` (validated, secrets hashed)."""
    team.frame = {
        key: ([] if key in ("targets", "routes", "consumers") else {} if key == "plugins" else v)
        for key, v in document.items()
    }
    _replace_plugins(session, team, document.get("plugins", {}), {})
    targets = _sync(session, team, TargetRow, document.get("targets", []))
    routes = [
        dict(route, target_id=targets[route["target"]]) for route in document.get("routes", [])
    ]
    _sync(session, team, RouteRow, routes)
    _sync(session, team, ConsumerRow, document.get("consumers", []))
    for row_type in (RouteRow, ConsumerRow, TargetRow):  # routes refer to targets: first
        keep = [item["name"] for item in document.get(row_type.__tablename__, [])]
        session.execute(
            delete(row_type).where(row_type.team_id == team.id, row_type.name.not_in(keep))
        )


def _sync(
    session: Session, team: Team, row_type: type[Entity], items: list[dict[str, Any]]
) -> dict[str, int]:
    query = select(row_type).where(row_type.team_id == team.id)
    existing = {row.name: row for row in cast(list[Entity], session.scalars(query).all())}
    ids: dict[str, int] = {}
    for position, item in enumerate(items):
        stored = {k: v for k, v in item.items() if k != "target_id"}
        if "plugins" in stored:
            stored["plugins"] = {}
        if "credentials" in stored:
            stored["credentials"] = {name: [] for name in stored["credentials"]}
        if row_type is RouteRow:
            del stored["target"]
        row: Entity | None = existing.get(item["name"])
        if row is None:
            row = row_type(team_id=team.id, name=item["name"], position=position, document=stored)
            session.add(row)
        else:
            row.position, row.document = position, stored
        if isinstance(row, RouteRow):
            row.target_id = item["target_id"]
        session.flush()
        ids[row.name] = row.id
        owner = {f"{row_type.__tablename__[:-1]}_id": row.id}
        _replace_plugins(session, team, item.get("plugins", {}), owner)
        if isinstance(row, ConsumerRow):
            _replace_credentials(session, team, row, item.get("credentials", {}))
    return ids


def _replace_plugins(
    session: Session, team: Team, plugins: dict[str, Any], owner: dict[str, int]
) -> None:
    query = delete(PluginRow).where(PluginRow.team_id == team.id)
    for column in ("target_id", "route_id", "consumer_id"):
        value = owner.get(column)
        attribute = getattr(PluginRow, column)
        query = query.where(attribute.is_(None) if value is None else attribute == value)
    session.execute(query)
    for name, config in plugins.items():
        session.add(PluginRow(team_id=team.id, name=name, config=config, **owner))


def _replace_credentials(
    session: Session, team: Team, consumer: ConsumerRow, credentials: dict[str, Any]
) -> None:
    session.execute(delete(CredentialRow).where(CredentialRow.consumer_id == consumer.id))
    for plugin, items in credentials.items():
        for position, item in enumerate(items):
            session.add(
                CredentialRow(
                    team_id=team.id,
                    consumer_id=consumer.id,
                    plugin=plugin,
                    position=position,
                    document=item,
                )
            )
