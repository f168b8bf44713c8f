"""Subscription requests: a consumer asks for a plan of an API, the API's team decides.

A request is ``pending`` until approved, rejected (with a reason) or revoked; an
approved one is revoked later.  The request is a row of its own, kept with who
asked and who decided; what the data plane acts on is the consumer's
``subscriptions`` in its team's declaration, which the admin API changes (as a
revision, in the transaction that changes the request's state) when a request is
approved or an approved one is revoked.

A request belongs to two teams: the consumer's (``team``) and the API's
(``api_team``, the same one unless the consumer asks for another team's API).
Both see it; no other does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    or_,
    select,
    update,
)

from quiver.store.engine import WRITE
from quiver.store.models import Base

if TYPE_CHECKING:  # (the repository checks grants against this table: no import cycle)
    from quiver.store.repository import Store

SubscriptionState = Literal["pending", "approved", "rejected", "revoked"]

subscriptions = Table(
    "subscriptions",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("team", String(128), nullable=False),
    Column("api", String(128), nullable=False),
    Column("plan", String(128), nullable=False),
    Column("consumer", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("requested_by", String(128), nullable=False),
    Column("decided_by", String(128), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Index("ix_subscriptions_team_state", "team", "state"),
    # (nullable only as migration 0011 added it; it set the older rows' to `team`)
    Column("api_team", String(128), nullable=True),
    Index("ix_subscriptions_api_team_state", "api_team", "state"),
)


@dataclass(frozen=True)
class SubscriptionRequest:
    id: int
    team: str  # the consumer's
    api_team: str  # the API's: it decides
    api: str  # the API's name in its team
    plan: str
    consumer: str
    state: SubscriptionState
    reason: str | None
    requested_by: str
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None

    @property
    def reference(self) -> str:
        """The API as the consumer's ``subscriptions`` name it: qualified with its
        team's name when that is another team (``payments.orders``)."""
        return self.api if self.api_team == self.team else f"{self.api_team}.{self.api}"

    def visible_to(self, team: str) -> bool:
        return team in (self.team, self.api_team)

    def document(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "team": self.team,
            "api_team": self.api_team,
            "api": self.reference,
            "plan": self.plan,
            "consumer": self.consumer,
            "state": self.state,
            "reason": self.reason,
            "requested_by": self.requested_by,
            "decided_by": self.decided_by,
            "created_at": _iso(self.created_at),
            "decided_at": _iso(self.decided_at) if self.decided_at is not None else None,
        }


def request(
    store: Store, team: str, api_team: str, api: str, plan: str, consumer: str, requested_by: str
) -> SubscriptionRequest:
    """A new pending request of ``consumer`` (of ``team``) for ``api`` of ``api_team``."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        result = connection.execute(
            insert(subscriptions).values(
                team=team,
                api_team=api_team,
                api=api,
                plan=plan,
                consumer=consumer,
                state="pending",
                requested_by=requested_by,
                created_at=datetime.now(UTC),
            )
        )
        inserted = result.inserted_primary_key
        assert inserted is not None
        key: int = inserted[0]
    found = get(store, key)
    assert found is not None
    return found


def get(store: Store | Connection, number: int) -> SubscriptionRequest | None:
    """The request ``number``, whichever teams it belongs to (the caller checks that
    the team asking is one of them: :meth:`SubscriptionRequest.visible_to`)."""
    query = select(subscriptions).where(subscriptions.c.id == number)
    if isinstance(store, Connection):
        row = store.execute(query).first()
    else:
        with store.engine.connect() as connection:
            row = connection.execute(query).first()
    return None if row is None else _request(row._mapping)


def listed(
    store: Store,
    team: str,
    *,
    state: str | None = None,
    api: str | None = None,
    consumer: str | None = None,
) -> list[SubscriptionRequest]:
    """The requests the team sees (its consumers', and those to its APIs), oldest
    first, those matching every filter given.  ``api`` is the API as the consumers'
    subscriptions name it (``payments.orders``), or the name of an API of ``team``."""
    query = select(subscriptions).where(
        or_(subscriptions.c.team == team, subscriptions.c.api_team == team)
    )
    for column, value in (("state", state), ("consumer", consumer)):
        if value is not None:
            query = query.where(subscriptions.c[column] == value)
    if api is not None:
        # (narrows: the name as written, or without the team's name before it)
        query = query.where(subscriptions.c.api.in_({api, api.partition(".")[2]}))
    with store.engine.connect() as connection:
        rows = connection.execute(query.order_by(subscriptions.c.id)).all()
    found = [_request(row._mapping) for row in rows]
    if api is None:
        return found
    return [r for r in found if api == r.reference or (r.api_team == team and api == r.api)]


def live(store: Store, team: str, consumer: str, api_team: str, api: str) -> bool:
    """Whether the consumer has a pending or approved request for the API."""
    query = select(subscriptions.c.id).where(
        subscriptions.c.team == team,
        subscriptions.c.consumer == consumer,
        subscriptions.c.api == api,
        subscriptions.c.api_team == api_team,
        subscriptions.c.state.in_(("pending", "approved")),
    )
    with store.engine.connect() as connection:
        return connection.execute(query.limit(1)).first() is not None


def approved(connection: Connection, team: str, consumer: str, api_team: str, api: str) -> set[str]:
    """The plans the consumer of ``team`` holds an approved request for, to the API
    ``api`` of another team (what lets its declaration name that API)."""
    query = select(subscriptions.c.plan).where(
        subscriptions.c.team == team,
        subscriptions.c.consumer == consumer,
        subscriptions.c.api_team == api_team,
        subscriptions.c.api == api,
        subscriptions.c.state == "approved",
    )
    return set(connection.execute(query).scalars())


def decide(
    connection: Connection,
    number: int,
    state: SubscriptionState,
    decided_by: str,
    *,
    was: tuple[SubscriptionState, ...],
    reason: str | None = None,
) -> SubscriptionRequest | None:
    """Move the request to ``state`` when it is in one of ``was``, in the caller's
    transaction (the one that changes the consumer's declaration with it, if any);
    None when it was not (another decision came first)."""
    changed = connection.execute(
        update(subscriptions)
        .where(subscriptions.c.id == number, subscriptions.c.state.in_(was))
        .values(state=state, decided_by=decided_by, decided_at=datetime.now(UTC), reason=reason)
    ).rowcount
    return get(connection, number) if changed else None


def _request(row: Any) -> SubscriptionRequest:
    return SubscriptionRequest(
        id=row["id"],
        team=row["team"],
        api_team=row["api_team"] or row["team"],
        api=row["api"],
        plan=row["plan"],
        consumer=row["consumer"],
        state=row["state"],
        reason=row["reason"],
        requested_by=row["requested_by"],
        decided_by=row["decided_by"],
        created_at=_utc(row["created_at"]),
        decided_at=_utc(row["decided_at"]) if row["decided_at"] is not None else None,
    )


def _utc(moment: datetime) -> datetime:
    # (SQLite keeps no time zone: it was written in UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
