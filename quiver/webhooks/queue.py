"""The webhook queue in the store: publishing, claiming due deliveries, recording
what an attempt gave, replay, the logs and the purge of old messages.

Every function takes the store's engine and the time (epoch ms) it acts at, so a
test can drive days of retries without waiting.  Publishing writes the message
and one pending delivery per enabled endpoint subscribed to its type in one
transaction: once ``publish`` returns, the event is durable.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from quiver.config.units import format_duration
from quiver.config.webhooks import DEFAULT_SCHEDULE
from quiver.store.webhooktables import (
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_messages,
)
from quiver.webhooks.endpoints import UnknownEndpoint, live_secrets, writing

State = Literal["pending", "delivered", "dead"]
#: the event Quiver publishes when it disables an endpoint that kept failing
ENDPOINT_DISABLED = "webhook.endpoint.disabled"


#: set whenever this process publishes: the senders waiting for due deliveries
#: look again (see :func:`listen`)
_listeners: set[threading.Event] = set()


def listen(event: threading.Event, *, stop: bool = False) -> None:
    """Have ``event`` set whenever this process publishes (``stop``: no longer)."""
    if stop:
        _listeners.discard(event)
    else:
        _listeners.add(event)


def _announce() -> None:
    for event in list(_listeners):
        event.set()


class MessageExists(Exception):
    """A message of that id was published already."""


@dataclass(frozen=True)
class Claim:
    """A delivery a sender holds until ``claimed_until_ms``."""

    delivery_id: int
    endpoint_id: int
    endpoint: str
    url: str
    secrets: list[str]
    msg_id: str
    event_type: str
    payload: str
    attempts: int


def _subscribed(event_types: list[str], event_type: str) -> bool:
    if not event_types:
        return True
    return any(
        wanted == event_type or (wanted.endswith(".*") and event_type.startswith(wanted[:-1]))
        for wanted in event_types
    )


def publish(
    engine: Engine | Connection,
    event_type: str,
    data: Any,
    *,
    now_ms: int,
    msg_id: str | None = None,
) -> str:
    """Queue ``event_type`` with ``data`` to every enabled endpoint subscribed to it;
    returns the message id (the ``webhook-id`` receivers de-duplicate on)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).isoformat().replace("+00:00", "Z")
    payload = json.dumps(
        {"type": event_type, "timestamp": stamp, "data": data}, separators=(",", ":")
    )
    if isinstance(engine, Connection):
        _publish(engine, msg_id, event_type, payload, now_ms)
        _announce()  # (the caller's transaction may not be committed yet: a look is cheap)
        return msg_id
    try:
        with writing(engine).begin() as connection:
            _publish(connection, msg_id, event_type, payload, now_ms)
    except IntegrityError:
        raise MessageExists(f"a message {msg_id!r} was published already") from None
    _announce()
    return msg_id


def _publish(connection: Connection, msg_id: str, event_type: str, payload: str, now: int) -> None:
    message = connection.execute(
        insert(webhook_messages)
        .values(msg_id=msg_id, event_type=event_type, payload=payload, created_ms=now)
        .returning(webhook_messages.c.id)
    ).scalar_one()
    endpoints = connection.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
            webhook_endpoints.c.enabled.is_(True)
        )
    ).all()
    rows = [
        {
            "message_id": message,
            "endpoint_id": endpoint.id,
            "state": "pending",
            "attempts": 0,
            "next_attempt_ms": now,
            "claimed_until_ms": 0,
            "updated_ms": now,
        }
        for endpoint in endpoints
        if _subscribed(list(endpoint.event_types), event_type)
    ]
    if rows:
        connection.execute(insert(webhook_deliveries), rows)


def claim(
    engine: Engine,
    *,
    now_ms: int,
    lease_ms: int,
    limit: int = 50,
    per_endpoint: int | None = None,
    held: Mapping[int, int] | None = None,
) -> list[Claim]:
    """Take up to ``limit`` due deliveries for ``lease_ms``.  On PostgreSQL the rows
    are locked with SKIP LOCKED, so two senders never take the same one; SQLite's
    write transaction (BEGIN IMMEDIATE) lets one sender claim at a time.  An ordered
    endpoint's delivery is due only when no older one of it is pending.

    ``per_endpoint``: at most that many deliveries of one endpoint, counting those the
    caller ``held`` already (endpoint id → deliveries), so that a slow endpoint
    cannot take every post a sender has in flight."""
    d, e, m = webhook_deliveries, webhook_endpoints, webhook_messages
    held = held or {}
    full = _full(per_endpoint, held)
    query = (
        select(d.c.id, d.c.attempts, e.c.id.label("endpoint_id"), e.c.name, e.c.url)
        .add_columns(e.c.secrets, m.c.msg_id, m.c.event_type, m.c.payload)
        .join(e, e.c.id == d.c.endpoint_id)
        .join(m, m.c.id == d.c.message_id)
        .where(
            *_sendable(full),
            d.c.next_attempt_ms <= now_ms,
            d.c.claimed_until_ms <= now_ms,
        )
        .order_by(d.c.next_attempt_ms, d.c.id)
        .limit(limit if per_endpoint is None else limit * per_endpoint)
        .with_for_update(skip_locked=True, of=d)
    )
    with writing(engine).begin() as connection:
        rows = connection.execute(query).all()
        if per_endpoint is not None:
            rows = _shared_out(list(rows), limit, per_endpoint, held)
        if rows:
            connection.execute(
                update(d)
                .where(d.c.id.in_([row.id for row in rows]))
                .values(claimed_until_ms=now_ms + lease_ms)
            )
    return [
        Claim(
            delivery_id=row.id,
            endpoint_id=row.endpoint_id,
            endpoint=row.name,
            url=row.url,
            secrets=live_secrets(row.secrets, now_ms),
            msg_id=row.msg_id,
            event_type=row.event_type,
            payload=row.payload,
            attempts=row.attempts,
        )
        for row in rows
    ]


def _shared_out(
    rows: list[Any], limit: int, per_endpoint: int, held: Mapping[int, int]
) -> list[Any]:
    """The first ``limit`` of ``rows`` (in due order) with no endpoint past
    ``per_endpoint`` (the rest stay unclaimed, for the next look)."""
    counts = dict(held)
    kept = []
    for row in rows:
        count = counts.get(row.endpoint_id, 0)
        if count < per_endpoint:
            counts[row.endpoint_id] = count + 1
            kept.append(row)
            if len(kept) == limit:
                break
    return kept


def _full(per_endpoint: int | None, held: Mapping[int, int]) -> list[int]:
    """The endpoints that hold their share (``per_endpoint``) of the posts in flight."""
    if per_endpoint is None:
        return []
    return [endpoint for endpoint, count in held.items() if count >= per_endpoint]


def _sendable(full: list[int]) -> tuple[ColumnElement[bool], ...]:
    """The pending deliveries a sender may claim once due: of an enabled endpoint
    not among ``full``, and for an ordered endpoint the oldest pending one only."""
    d, e = webhook_deliveries, webhook_endpoints
    older = webhook_deliveries.alias("older")
    blocked = exists().where(
        and_(
            older.c.endpoint_id == d.c.endpoint_id, older.c.state == "pending", older.c.id < d.c.id
        )
    )
    return (
        d.c.state == "pending",
        e.c.enabled.is_(True),
        (e.c.ordered.is_(False)) | ~blocked,
        e.c.id.not_in(full),
    )


def next_due_ms(
    engine: Engine, *, per_endpoint: int | None = None, held: Mapping[int, int] | None = None
) -> int | None:
    """When the soonest delivery a sender may claim falls due (epoch ms; a claimed
    one when its lease ends), or None when none is pending.  ``per_endpoint`` and
    ``held`` as for :func:`claim`: endpoints at their share are left out."""
    d, e = webhook_deliveries, webhook_endpoints
    due = case(
        (d.c.claimed_until_ms > d.c.next_attempt_ms, d.c.claimed_until_ms),
        else_=d.c.next_attempt_ms,
    )
    full = _full(per_endpoint, held or {})
    query = select(func.min(due)).join(e, e.c.id == d.c.endpoint_id).where(*_sendable(full))
    with engine.connect() as connection:
        soonest = connection.execute(query).scalar()
    return None if soonest is None else int(soonest)


@dataclass(frozen=True)
class Policy:
    """When to try again, when to give up, when to disable an endpoint."""

    schedule: tuple[float, ...] = DEFAULT_SCHEDULE  # seconds after each failed attempt
    jitter: float = 0.1  # each delay is moved by up to this fraction, either way
    disable_after_s: float = 5 * 86400  # an endpoint failing this long is disabled

    def delay_ms(self, attempt: int, rng: random.Random) -> int:
        base = self.schedule[attempt - 1]
        return int(base * 1000 * (1 + rng.uniform(-self.jitter, self.jitter)))


def record(
    engine: Engine,
    job: Claim,
    *,
    now_ms: int,
    status: int | None,
    latency_ms: int,
    error: str | None,
    policy: Policy,
    rng: random.Random,
) -> State:
    """Log an attempt and move its delivery on: delivered on a 2xx, else retried
    after the schedule's next delay, or dead once the schedule is spent.  An
    endpoint failing for ``disable_after_s`` is disabled, and an event says so."""
    d, e = webhook_deliveries, webhook_endpoints
    ok = status is not None and 200 <= status < 300
    attempts = job.attempts + 1
    state: State = "delivered" if ok else "pending"
    next_ms = now_ms
    if not ok:
        if attempts > len(policy.schedule):
            state = "dead"
        else:
            next_ms = now_ms + policy.delay_ms(attempts, rng)
    with writing(engine).begin() as connection:
        moved = connection.execute(
            update(d)
            .where(d.c.id == job.delivery_id)
            .values(
                state=state,
                attempts=attempts,
                next_attempt_ms=next_ms,
                claimed_until_ms=0,
                last_status=status,
                updated_ms=now_ms,
            )
        )
        if moved.rowcount == 0:  # its endpoint was deleted meanwhile: nothing to log
            return state
        connection.execute(
            insert(webhook_attempts).values(
                delivery_id=job.delivery_id,
                endpoint_id=job.endpoint_id,
                time_ms=now_ms,
                status=status,
                latency_ms=latency_ms,
                error=error,
            )
        )
        if ok:
            connection.execute(
                update(e).where(e.c.id == job.endpoint_id).values(failing_since_ms=None)
            )
        else:
            _note_failure(connection, job, now_ms, policy)
    return state


def _note_failure(connection: Connection, job: Claim, now_ms: int, policy: Policy) -> None:
    e = webhook_endpoints
    row = connection.execute(
        select(e.c.failing_since_ms, e.c.enabled, e.c.url).where(e.c.id == job.endpoint_id)
    ).first()
    if row is None or not row.enabled:
        return
    if row.failing_since_ms is None:
        connection.execute(
            update(e).where(e.c.id == job.endpoint_id).values(failing_since_ms=now_ms)
        )
        return
    if now_ms - row.failing_since_ms < policy.disable_after_s * 1000:
        return
    reason = f"every attempt failed for {format_duration((now_ms - row.failing_since_ms) / 1000)}"
    connection.execute(
        update(e).where(e.c.id == job.endpoint_id).values(enabled=False, disabled_reason=reason)
    )
    _publish_disabled(connection, job.endpoint, row.url, reason, now_ms)


def _publish_disabled(connection: Connection, name: str, url: str, reason: str, now: int) -> None:
    publish(
        connection, ENDPOINT_DISABLED, {"endpoint": name, "url": url, "reason": reason}, now_ms=now
    )


def replay(engine: Engine, endpoint: str, msg_id: str, *, now_ms: int) -> None:
    """Send a message to an endpoint again from the start of the schedule,
    whatever became of it (delivered, dead or pending)."""
    d, e, m = webhook_deliveries, webhook_endpoints, webhook_messages
    with writing(engine).begin() as connection:
        endpoint_id = connection.execute(select(e.c.id).where(e.c.name == endpoint)).scalar()
        message_id = connection.execute(select(m.c.id).where(m.c.msg_id == msg_id)).scalar()
        if endpoint_id is None or message_id is None:
            raise UnknownEndpoint(f"there is no message {msg_id!r} for endpoint {endpoint!r}")
        values = {
            "state": "pending",
            "attempts": 0,
            "next_attempt_ms": now_ms,
            "claimed_until_ms": 0,
            "updated_ms": now_ms,
        }
        done = connection.execute(
            update(d)
            .where(d.c.endpoint_id == endpoint_id, d.c.message_id == message_id)
            .values(**values)
        )
        if done.rowcount == 0:
            connection.execute(
                insert(d).values(message_id=message_id, endpoint_id=endpoint_id, **values)
            )


def deliveries(
    engine: Engine, endpoint: str, *, state: State | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """An endpoint's messages, newest first, with their state and attempts."""
    d, e, m = webhook_deliveries, webhook_endpoints, webhook_messages
    query = (
        select(
            m.c.msg_id,
            m.c.event_type,
            m.c.created_ms,
            d.c.state,
            d.c.attempts,
            d.c.next_attempt_ms,
            d.c.last_status,
        )
        .join(d, d.c.message_id == m.c.id)
        .join(e, e.c.id == d.c.endpoint_id)
        .where(e.c.name == endpoint)
        .order_by(d.c.id.desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(d.c.state == state)
    with engine.connect() as connection:
        _known(connection, endpoint)
        return [dict(row._mapping) for row in connection.execute(query)]


def attempts(engine: Engine, endpoint: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """An endpoint's delivery log, newest first: time, message, status, latency, error."""
    a, d, e, m = webhook_attempts, webhook_deliveries, webhook_endpoints, webhook_messages
    query = (
        select(a.c.time_ms, m.c.msg_id, m.c.event_type, a.c.status, a.c.latency_ms, a.c.error)
        .join(d, d.c.id == a.c.delivery_id)
        .join(m, m.c.id == d.c.message_id)
        .join(e, e.c.id == a.c.endpoint_id)
        .where(e.c.name == endpoint)
        .order_by(a.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        _known(connection, endpoint)
        return [dict(row._mapping) for row in connection.execute(query)]


def _known(connection: Connection, endpoint: str) -> None:
    count = connection.execute(
        select(func.count()).where(webhook_endpoints.c.name == endpoint)
    ).scalar_one()
    if not count:
        raise UnknownEndpoint(f"there is no webhook endpoint {endpoint!r}")


def purge(engine: Engine, *, before_ms: int) -> int:
    """Delete the messages published before ``before_ms`` that no endpoint still
    waits for (each delivery delivered or dead), with their deliveries and attempts;
    how many went."""
    a, d, m = webhook_attempts, webhook_deliveries, webhook_messages
    waiting = exists().where(d.c.message_id == m.c.id, d.c.state == "pending")
    with writing(engine).begin() as connection:
        old = [
            row.id
            for row in connection.execute(
                select(m.c.id).where(m.c.created_ms < before_ms, ~waiting).limit(10_000)
            )
        ]
        if not old:
            return 0
        deliveries = select(d.c.id).where(d.c.message_id.in_(old))
        connection.execute(delete(a).where(a.c.delivery_id.in_(deliveries)))
        connection.execute(delete(d).where(d.c.message_id.in_(old)))
        connection.execute(delete(m).where(m.c.id.in_(old)))
    return len(old)
