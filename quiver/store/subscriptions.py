"""Subscription requests: a consumer asks for a plan of an API, an operator decides.

A request is ``pending`` until approved, rejected (with a reason) or revoked; an
approved one is revoked later.  The request is a row of its own, kept with who
asked and who decided; what the data plane acts on is the consumer's
``subscriptions`` in the team's declaration, which the admin API changes (as a
revision) when a request is approved or an approved one is revoked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text, insert, select, update

from quiver.store.engine import WRITE
from quiver.store.models import Base
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
)


@dataclass(frozen=True)
class SubscriptionRequest:
    id: int
    team: str
    api: str
    plan: str
    consumer: str
    state: SubscriptionState
    reason: str | None
    requested_by: str
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None

    def document(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "team": self.team,
            "api": self.api,
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
    store: Store, team: str, api: str, plan: str, consumer: str, requested_by: str
) -> SubscriptionRequest:
    """A new pending request."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        result = connection.execute(
            insert(subscriptions).values(
                team=team,
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
    found = get(store, team, key)
    assert found is not None
    return found


def get(store: Store, team: str, number: int) -> SubscriptionRequest | None:
    with store.engine.connect() as connection:
        row = connection.execute(
            select(subscriptions).where(subscriptions.c.id == number, subscriptions.c.team == team)
        ).first()
    return None if row is None else _request(row._mapping)


def listed(
    store: Store,
    team: str,
    *,
    state: str | None = None,
    api: str | None = None,
    consumer: str | None = None,
) -> list[SubscriptionRequest]:
    """The team's requests, oldest first, those matching every filter given."""
    query = select(subscriptions).where(subscriptions.c.team == team)
    for column, value in (("state", state), ("api", api), ("consumer", consumer)):
        if value is not None:
            query = query.where(subscriptions.c[column] == value)
    with store.engine.connect() as connection:
        rows = connection.execute(query.order_by(subscriptions.c.id)).all()
    return [_request(row._mapping) for row in rows]


def decide(
    store: Store,
    team: str,
    number: int,
    state: SubscriptionState,
    decided_by: str,
    *,
    was: tuple[SubscriptionState, ...],
    reason: str | None = None,
) -> SubscriptionRequest | None:
    """Move the request to ``state`` when it is in one of ``was``; None when it was
    not (another decision came first)."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        changed = connection.execute(
            update(subscriptions)
            .where(
                subscriptions.c.id == number,
                subscriptions.c.team == team,
                subscriptions.c.state.in_(was),
            )
            .values(state=state, decided_by=decided_by, decided_at=datetime.now(UTC), reason=reason)
        ).rowcount
    return get(store, team, number) if changed else None


def _request(row: Any) -> SubscriptionRequest:
    return SubscriptionRequest(
        id=row["id"],
        team=row["team"],
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
