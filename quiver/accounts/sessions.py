"""Web sessions: a random id in a cookie, its SHA-256 in the store.

A session belongs to one surface (``portal`` or ``console``) and one holder: a
user, or in the console the admin token that opened it.  It ends after
:data:`IDLE` without a request, :data:`LIFETIME` after it began whatever happens,
when its holder signs out, and with its holder (a deleted user, a revoked token).
Each session has its own CSRF secret, which the pages put in every form.

``last_seen`` is written at most once every :data:`_TOUCH_EVERY`, so that reading
pages does not turn every request into a write.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import delete, insert, or_, select, update

from quiver.store import Store
from quiver.store.accounttables import web_sessions
from quiver.store.engine import WRITE

Surface = Literal["portal", "console"]
IDLE = timedelta(hours=12)
LIFETIME = timedelta(days=7)
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class WebSession:
    id: int
    surface: Surface
    user_id: int | None
    token_id: int | None
    csrf: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    last_seen: datetime

    def ends_at(self) -> datetime:
        """When it ends unless used again."""
        return min(self.expires_at, self.last_seen + IDLE)


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def create_session(
    store: Store,
    surface: Surface,
    *,
    user_id: int | None = None,
    token_id: int | None = None,
    now: datetime | None = None,
) -> tuple[str, WebSession]:
    """A new session of the user or token: its id (for the cookie, nowhere else) and
    what is kept of it.  Sessions that ended are swept out meanwhile."""
    if (user_id is None) == (token_id is None):
        raise ValueError("a session belongs to a user or to a token")
    now = now or datetime.now(UTC)
    session_id = secrets.token_urlsafe(32)
    row = {
        "session_hash": session_hash(session_id),
        "user_id": user_id,
        "token_id": token_id,
        "surface": surface,
        "csrf": secrets.token_urlsafe(32),
        "created_at": now,
        "expires_at": now + LIFETIME,
        "last_seen": now,
    }
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        connection.execute(
            delete(web_sessions).where(
                or_(web_sessions.c.expires_at < now, web_sessions.c.last_seen < now - IDLE)
            )
        )
        made = connection.execute(insert(web_sessions).values(**row).returning(web_sessions.c.id))
        row["id"] = made.scalar_one()
    return session_id, _session(row)


def find_session(
    store: Store, session_id: str, surface: Surface, *, now: datetime | None = None
) -> WebSession | None:
    """The live session of ``session_id`` on ``surface``, or None (one that ended is
    deleted on the way)."""
    now = now or datetime.now(UTC)
    hashed = session_hash(session_id)
    with store.engine.connect() as connection:
        row = connection.execute(
            select(web_sessions).where(web_sessions.c.session_hash == hashed)
        ).first()
    if row is None:
        return None
    found = _session(row._mapping)
    if found.surface != surface:
        return None
    if now >= found.ends_at():
        end_session(store, session_id)
        return None
    if now - found.last_seen >= _TOUCH_EVERY:
        with store.engine.execution_options(**{WRITE: True}).begin() as connection:
            connection.execute(
                update(web_sessions).where(web_sessions.c.id == found.id).values(last_seen=now)
            )
    return found


def end_session(store: Store, session_id: str) -> None:
    """Sign out: the session is gone (nothing happens when it already was)."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        connection.execute(
            delete(web_sessions).where(web_sessions.c.session_hash == session_hash(session_id))
        )


def end_sessions_of(store: Store, user_id: int) -> int:
    """End every session of a user (a changed password, a disabled account)."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        result = connection.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))
    return int(result.rowcount)


def _session(row: Mapping[Any, Any]) -> WebSession:
    return WebSession(
        id=cast(int, row["id"]),
        surface=cast(Surface, row["surface"]),
        user_id=cast("int | None", row["user_id"]),
        token_id=cast("int | None", row["token_id"]),
        csrf=cast(str, row["csrf"]),
        created_at=_utc(row["created_at"]),
        expires_at=_utc(row["expires_at"]),
        last_seen=_utc(row["last_seen"]),
    )


def _utc(value: object) -> datetime:
    moment = cast(datetime, value)
    # SQLite keeps no time zone: every time here was written in UTC
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
