"""A team's declaration document to rows and back.

Entities keep their row (and id) while they exist: an apply writes only what
changed (a changed entity in place; the plugins or credentials of an entity only
when they changed), so that changing one route of thousands touches a few rows.  A list or mapping
the rows fill is kept empty in the entity's document (``plugins: {}``,
``credentials: {key-auth: []}``), so a key that was written, even empty, reads back.
"""

from __future__ import annotations

import copy
from typing import Any, cast

from sqlalchemy import delete, null, select
from sqlalchemy.orm import Session

from quiver.store.models import ConsumerRow, CredentialRow, PluginRow, RouteRow, TargetRow, Team

Entity = TargetRow | RouteRow | ConsumerRow
Owner = tuple[str, int | None]  # ("route_id", 7), or ("", None) for global plugins
_LISTS: tuple[tuple[str, str, type[Entity]], ...] = (
    ("targets", "target", TargetRow),
    ("routes", "route", RouteRow),
    ("consumers", "consumer", ConsumerRow),
)


def read(session: Session, team: Team) -> dict[str, Any]:
    """The team's document, made of fresh objects (changing it changes no row).

    It selects columns rather than ORM objects: each JSON document is decoded anew,
    so nothing needs copying, and thousands of routes are read several times faster
    (a gateway in store mode reads every team's document at each revision)."""
    document = copy.deepcopy(team.frame)
    plugins: dict[Owner, dict[str, Any]] = {}
    attached = select(
        PluginRow.target_id,
        PluginRow.route_id,
        PluginRow.consumer_id,
        PluginRow.name,
        PluginRow.config,
    ).where(PluginRow.team_id == team.id)
    for target_id, route_id, consumer_id, plugin_name, config in session.execute(attached):
        owner: Owner = ("", None)
        for column, value in (
            ("target_id", target_id),
            ("route_id", route_id),
            ("consumer_id", consumer_id),
        ):
            if value is not None:
                owner = (column, value)
        plugins.setdefault(owner, {})[plugin_name] = config
    if "plugins" in document:
        document["plugins"] = plugins.get(("", None), {})
    names: dict[int, str] = {}
    credentials = _credentials_by_consumer(session, team)
    for key, kind, row_type in _LISTS:
        target = RouteRow.target_id if row_type is RouteRow else null()
        listed = (
            select(row_type.id, row_type.name, row_type.document, target)
            .where(row_type.team_id == team.id)
            .order_by(row_type.position)
        )
        items = []
        for row_id, name, item, target_id in session.execute(listed):
            if row_type is TargetRow:
                names[row_id] = name
            if target_id is not None:  # (a route's)
                item["target"] = names[target_id]
            if "plugins" in item:
                item["plugins"] = plugins.get((f"{kind}_id", row_id), {})
            if row_type is ConsumerRow and "credentials" in item:
                for plugin, credential in credentials.get(row_id, ()):
                    item["credentials"][plugin].append(credential)
            items.append(item)
        if key in document:
            document[key] = items
    return document


def _credentials_by_consumer(
    session: Session, team: Team
) -> dict[int, list[tuple[str, dict[str, Any]]]]:
    query = (
        select(CredentialRow.consumer_id, CredentialRow.plugin, CredentialRow.document)
        .where(CredentialRow.team_id == team.id)
        .order_by(CredentialRow.consumer_id, CredentialRow.plugin, CredentialRow.position)
    )
    found: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for consumer_id, plugin, document in session.execute(query):
        found.setdefault(consumer_id, []).append((plugin, document))
    return found


def write(session: Session, team: Team, document: dict[str, Any]) -> None:
    """Make the team's rows hold ``document`` (validated, secrets hashed)."""
    team.frame = {
        key: ([] if key in ("targets", "routes", "consumers") else {} if key == "plugins" else v)
        for key, v in document.items()
    }
    writer = _Writer(session, team)
    writer.plugins(("", None), document.get("plugins", {}))
    targets = writer.sync(TargetRow, document.get("targets", []))
    routes = [
        # (an AI route has no target)
        dict(route, target_id=targets[route["target"]] if "target" in route else None)
        for route in document.get("routes", [])
    ]
    writer.sync(RouteRow, routes)
    writer.sync(ConsumerRow, document.get("consumers", []))
    for row_type in (RouteRow, ConsumerRow, TargetRow):  # routes refer to targets: first
        gone = writer.gone.get(row_type, [])
        if gone:  # (their plugins and credentials go with them: ON DELETE CASCADE)
            session.execute(
                delete(row_type).where(row_type.id.in_(gone)),
                execution_options={"synchronize_session": False},
            )


class _Writer:
    """Writes one apply's changes: what each row holds now is read once up front."""

    def __init__(self, session: Session, team: Team) -> None:
        self.session, self.team = session, team
        self.gone: dict[type[Entity], list[int]] = {}
        self.attached: dict[Owner, dict[str, Any]] = {}
        for plugin in session.scalars(select(PluginRow).where(PluginRow.team_id == team.id)):
            owner = _owner_of(plugin)
            self.attached.setdefault(owner, {})[plugin.name] = plugin.config
        self.credentials = _credentials_by_consumer(session, team)

    def sync(self, row_type: type[Entity], items: list[dict[str, Any]]) -> dict[str, int]:
        """Rows of ``row_type`` for ``items`` in their order; the ids by name."""
        query = select(row_type).where(row_type.team_id == self.team.id)
        existing = {row.name: row for row in cast(list[Entity], self.session.scalars(query))}
        rows: list[tuple[Entity, dict[str, Any]]] = []
        for position, item in enumerate(items):
            stored = _stored(row_type, item)
            row = existing.pop(item["name"], None)
            if row is None:
                row = row_type(team_id=self.team.id, name=item["name"], position=position)
                row.document = stored
                self.session.add(row)
            else:
                if row.position != position:
                    row.position = position
                if row.document != stored:
                    row.document = stored
            if isinstance(row, RouteRow) and row.target_id != item["target_id"]:
                row.target_id = item["target_id"]
            rows.append((row, item))
        self.session.flush()  # once: the ids of the new rows
        self.gone[row_type] = [row.id for row in existing.values()]
        column = f"{row_type.__tablename__[:-1]}_id"
        for row, item in rows:
            self.plugins((column, row.id), item.get("plugins", {}))
            if isinstance(row, ConsumerRow):
                self._credentials(row, item.get("credentials", {}))
        return {row.name: row.id for row, _ in rows}

    def plugins(self, owner: Owner, plugins: dict[str, Any]) -> None:
        if self.attached.get(owner, {}) == plugins:
            return
        query = delete(PluginRow).where(PluginRow.team_id == self.team.id)
        for column in ("target_id", "route_id", "consumer_id"):
            attribute = getattr(PluginRow, column)
            mine = owner[0] == column
            query = query.where(attribute == owner[1] if mine else attribute.is_(None))
        self.session.execute(query, execution_options={"synchronize_session": False})
        columns = {owner[0]: owner[1]} if owner[0] else {}
        for name, config in plugins.items():
            self.session.add(PluginRow(team_id=self.team.id, name=name, config=config, **columns))

    def _credentials(self, consumer: ConsumerRow, credentials: dict[str, Any]) -> None:
        wanted = [(plugin, item) for plugin in sorted(credentials) for item in credentials[plugin]]
        if self.credentials.get(consumer.id, []) == wanted:
            return
        self.session.execute(
            delete(CredentialRow).where(CredentialRow.consumer_id == consumer.id),
            execution_options={"synchronize_session": False},
        )
        for plugin, items in credentials.items():
            for position, item in enumerate(items):
                self.session.add(
                    CredentialRow(
                        team_id=self.team.id,
                        consumer_id=consumer.id,
                        plugin=plugin,
                        position=position,
                        document=item,
                    )
                )


def _owner_of(plugin: PluginRow) -> Owner:
    for column in ("target_id", "route_id", "consumer_id"):
        value = getattr(plugin, column)
        if value is not None:
            return column, value
    return "", None


def _stored(row_type: type[Entity], item: dict[str, Any]) -> dict[str, Any]:
    """The entity's own document: its plugins and credentials are rows of their own
    (written empty, so that a key written empty reads back), a route's target a column."""
    stored = {k: v for k, v in item.items() if k != "target_id"}
    if "plugins" in stored:
        stored["plugins"] = {}
    if "credentials" in stored:
        stored["credentials"] = {name: [] for name in stored["credentials"]}
    if row_type is RouteRow:
        stored.pop("target", None)
    return stored
