"""The store: each team's declaration, changed only by applies that leave numbered
revisions behind.

    store = open_store("quiver.db", catalog)
    revision = store.apply(document, author="alice", message="add the orders API")
    store.current()            # the document as applied (keys and passwords hashed)
    store.rollback(revision.number - 1, author="alice")

Revision numbers are shared by all teams, start at 1 and have no gaps: an apply
locks the single ``head`` row before it reads anything (SQLite: ``BEGIN
IMMEDIATE`` takes the database's write lock), so applies run one at a time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from quiver.config import validate
from quiver.config.models import Settings
from quiver.config.plugin_set import PluginSet
from quiver.errors import ConfigError, ConfigIssue, StoreError
from quiver.store import rows
from quiver.store.diffing import Diff, diff, is_empty
from quiver.store.engine import WRITE, make_engine
from quiver.store.merged import TEAM_KEYS, api_owner, merge
from quiver.store.migrate import upgrade
from quiver.store.models import DEFAULT_TEAM, Head, RevisionRow, Team
from quiver.store.secrets import without_secrets
from quiver.store.subscriptions import approved as granted


@dataclass(frozen=True)
class Revision:
    number: int
    team: str
    author: str
    created_at: datetime
    message: str
    diff: Diff


@dataclass(frozen=True)
class Current:
    """A team's declaration document and the number of its latest revision (0: none)."""

    document: dict[str, Any]
    revision: int


@dataclass(frozen=True)
class Edit:
    """What :meth:`Store.edit` did: the new revision (None when nothing changed), the
    team's document after it as stored (secrets hashed) and its latest revision."""

    revision: Revision | None
    document: dict[str, Any]
    latest: int


class UnknownTeam(StoreError):
    """The team named does not exist."""


def open_store(url: str = "quiver.db", catalog: PluginSet | None = None) -> Store:
    """The store at ``url`` (a SQLite file path, ``sqlite:///...`` or
    ``postgresql://...``), its schema migrated forward first."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, catalog)


class Store:
    def __init__(self, engine: Engine, catalog: PluginSet | None = None) -> None:
        self.engine = engine
        self.catalog = catalog
        #: called in each revision's transaction, after it is written, with its
        #: connection, the revision and its diff (the admin API queues webhook
        #: events there); an exception aborts the revision
        self.revision_hooks: list[Callable[[Connection, Revision, Diff], None]] = []
        self._reads = sessionmaker(engine, expire_on_commit=False)
        self._writes = sessionmaker(
            engine.execution_options(**{WRITE: True}), expire_on_commit=False
        )

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Session]:
        with (self._writes if write else self._reads)() as session, session.begin():
            yield session

    def current(self, team: str | None = None) -> dict[str, Any]:
        """The team's declaration document (empty before its first apply)."""
        with self._transaction() as session:
            row = _team(session, team)
            return {} if row is None else rows.read(session, row)

    def diff(self, document: object, team: str | None = None) -> Diff:
        """What :meth:`apply` of ``document`` would change (ConfigError if it is invalid)."""
        with self._transaction() as session:
            documents = _documents(session)
            before = documents.get(team or DEFAULT_TEAM, {})
            return diff(before, self._stored_form(document, before, team, documents))

    def apply(
        self, document: object, author: str, message: str = "", team: str | None = None
    ) -> Revision | None:
        """Make ``document`` the team's declaration in one transaction: the new
        revision, or None when nothing changes.  ConfigError (with the messages a
        config file gets) when the document is invalid; nothing is written then."""
        return self.edit(team, lambda _current: document, author, message, create=True).revision

    def edit(
        self,
        team: str | None,
        mutate: Callable[[Current], object],
        author: str,
        message: str = "",
        *,
        create: bool = False,
        also: Callable[[Connection], None] | None = None,
    ) -> Edit:
        """Apply what ``mutate`` makes of the team's current declaration, all in one
        transaction under the lock applies take, so no other change slips in between
        reading and writing (an admin API's ``If-Match`` is checked in ``mutate``).

        ``mutate`` gets a copy of the document it may change in place or replace; an
        exception it raises aborts the edit with nothing written.  The team must
        exist (:class:`UnknownTeam` otherwise) unless ``create``.  ``also`` writes
        what goes with the change in its transaction (a subscription request's new
        state), even when the document does not change; what it raises aborts both.
        """
        with self._transaction(write=True) as session:
            head = session.scalars(select(Head).with_for_update()).one()
            row = _team(session, team)
            if row is None and not create:
                raise UnknownTeam(f"there is no team {team or DEFAULT_TEAM!r}")
            documents = _documents(session)
            before = {} if row is None else documents.get(row.name, {})
            latest = 0 if row is None else _latest(session, row)
            document = mutate(Current(copy.deepcopy(before), latest))
            if also is not None:
                also(session.connection())
            after = self._stored_form(document, before, team, documents)
            changes = diff(before, after)
            if is_empty(changes):
                return Edit(None, before, latest)
            name = team or DEFAULT_TEAM
            _check_grants(session.connection(), name, before, after, documents)
            self._check_merged(documents, name, after)
            row = row or _new_team(session, team or DEFAULT_TEAM)
            rows.write(session, row, after)
            head.revision += 1
            revision = RevisionRow(
                number=head.revision,
                team_id=row.id,
                author=author,
                created_at=datetime.now(UTC),
                message=message,
                diff=dict(changes),
                document=after,
            )
            session.add(revision)
            session.flush()
            made = _revision(revision, row.name)
            for hook in self.revision_hooks:
                hook(session.connection(), made, changes)
            return Edit(made, after, revision.number)

    def state(self, team: str | None = None) -> Current:
        """The team's document with the number of its latest revision (0 before its
        first), read together."""
        with self._transaction() as session:
            row = _team(session, team)
            if row is None:
                return Current({}, 0)
            return Current(rows.read(session, row), _latest(session, row))

    def head(self) -> int:
        """The number of the latest revision (0 before the first apply)."""
        with self._transaction() as session:
            return session.scalars(select(Head.revision)).one()

    def effective(self) -> tuple[int, dict[str, Any]]:
        """The latest revision's number and the declaration the data plane serves:
        every team's, merged (see quiver.store.merged), read in one transaction."""
        with self._transaction() as session:
            number = session.scalars(select(Head.revision)).one()
            return number, merge(_documents(session))

    def revisions(self, team: str | None = None) -> list[Revision]:
        """Every revision, oldest first (only the team's when one is named)."""
        with self._transaction() as session:
            query = select(RevisionRow, Team.name).join(Team).order_by(RevisionRow.number)
            if team is not None:
                query = query.where(Team.name == team)
            return [_revision(revision, name) for revision, name in session.execute(query)]

    def revision(self, number: int) -> Revision:
        with self._transaction() as session:
            revision = session.get(RevisionRow, number)
            if revision is None:
                raise StoreError(f"there is no revision {number}")
            return _revision(revision, session.get_one(Team, revision.team_id).name)

    def rollback(self, number: int, author: str, message: str | None = None) -> Revision | None:
        """Restore the state revision ``number`` left its team in, as a new revision."""
        with self._transaction() as session:
            revision = session.get(RevisionRow, number)
            if revision is None:
                raise StoreError(f"there is no revision {number}")
            document, team = revision.document, session.get_one(Team, revision.team_id).name
        return self.apply(document, author, message or f"roll back to revision {number}", team)

    def _stored_form(
        self,
        document: object,
        before: dict[str, Any],
        team: str | None,
        documents: Mapping[str, Mapping[str, Any]],
    ) -> dict[str, Any]:
        elsewhere = _apis_elsewhere(documents, team or DEFAULT_TEAM)
        config = validate(document, self.catalog, apis_elsewhere=elsewhere)
        data = dict(cast(Mapping[str, Any], document))  # validate refused anything else
        issues = [
            ConfigIssue(key, "a setting of the gateway process, not kept in the store")
            for key in data
            if key in Settings.model_fields
        ]
        if (team or DEFAULT_TEAM) != DEFAULT_TEAM:
            issues += [
                ConfigIssue(
                    key,
                    "belongs to the default team's declaration: another team's holds "
                    "only targets, routes, consumers and apis",
                )
                for key in data
                if key not in TEAM_KEYS and key not in Settings.model_fields
            ]
        if issues:
            raise ConfigError(issues)
        return without_secrets(data, config, before)

    def _check_merged(
        self, documents: dict[str, dict[str, Any]], team: str, after: dict[str, Any]
    ) -> None:
        """Refuse a team document that is valid alone but not beside the other teams'
        (the same key-auth key in two teams, say), without telling what the others hold."""
        if len(documents) <= 1 and set(documents) <= {team}:
            return
        documents = {**documents, team: after}
        try:
            validate(merge(documents), self.catalog)
        except ConfigError:
            raise ConfigError(
                [
                    ConfigIssue(
                        "",
                        "conflicts with what another team declares (a shared key? an API "
                        "or plan another team's consumers subscribe to?)",
                    )
                ]
            ) from None


def _apis_elsewhere(documents: Mapping[str, Mapping[str, Any]], team: str) -> dict[str, list[str]]:
    """The other teams' APIs, as a consumer of ``team`` names them
    (``payments.orders``), with the names of their plans."""
    found: dict[str, list[str]] = {}
    for owner, document in documents.items():
        if owner == team:
            continue
        for api in document.get("apis") or []:
            plans = [plan.get("name") for plan in api.get("plans") or []]
            found[f"{owner}.{api.get('name')}"] = [str(plan) for plan in plans]
    return found


def _check_grants(
    connection: Connection,
    team: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    documents: Mapping[str, Mapping[str, Any]],
) -> None:
    """Refuse a subscription to another team's API that the document adds without an
    approved request for it: only the API's team grants one (docs/apis.md), so a
    team cannot subscribe its consumers by writing their declaration."""
    held = {
        (consumer.get("name"), subscription.get("api"), subscription.get("plan"))
        for consumer in before.get("consumers") or []
        for subscription in consumer.get("subscriptions") or []
    }
    seen = {**documents, team: after}
    issues = []
    for index, consumer in enumerate(after.get("consumers") or []):
        name = consumer.get("name")
        for position, subscription in enumerate(consumer.get("subscriptions") or []):
            api, plan = subscription.get("api"), subscription.get("plan")
            owner, api_name = api_owner(team, api, seen)
            if owner == team or (name, api, plan) in held:
                continue
            if plan not in granted(connection, team, name, owner, api_name):
                issues.append(
                    ConfigIssue(
                        f"consumers[{index}].subscriptions[{position}].api",
                        f"'{api}' is another team's API: its team grants a subscription "
                        "by approving a request for it (POST /subscriptions)",
                    )
                )
    if issues:
        raise ConfigError(issues)


def _team(session: Session, name: str | None) -> Team | None:
    return session.scalars(select(Team).where(Team.name == (name or DEFAULT_TEAM))).first()


def _latest(session: Session, team: Team) -> int:
    query = select(func.max(RevisionRow.number)).where(RevisionRow.team_id == team.id)
    return session.scalar(query) or 0


def _documents(session: Session) -> dict[str, dict[str, Any]]:
    return {team.name: rows.read(session, team) for team in session.scalars(select(Team))}


def _new_team(session: Session, name: str) -> Team:
    team = Team(name=name, frame={})
    session.add(team)
    session.flush()
    return team


def _revision(row: RevisionRow, team: str) -> Revision:
    changes: Diff = row.diff  # type: ignore[assignment]
    created = row.created_at
    if created.tzinfo is None:  # SQLite keeps no time zone: it was written in UTC
        created = created.replace(tzinfo=UTC)
    return Revision(row.number, team, row.author, created, row.message, changes)
