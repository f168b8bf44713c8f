"""Sign-in throttling: after :data:`EMAIL_LIMIT` failures for one email, or
:data:`ADDRESS_LIMIT` from one client address, sign-ins are refused until
:data:`WINDOW` has passed since the first of them.

The counts live in the store (``login_failures``), so every admin process of a
cluster refuses alike and a restart forgets nothing.  A window starts at the first
failure of its key and is not moved by later ones: a refusal ends at a time that can
be told ("try again in 9 minutes").  An email is counted whether or not it has an
account, so that the refusal says nothing about which emails exist; a success clears
the email's count (not the address's: many people may share one).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from quiver.store import Store
from quiver.store.accounttables import login_failures
from quiver.store.engine import WRITE

EMAIL_LIMIT = 5
ADDRESS_LIMIT = 20
WINDOW = timedelta(minutes=15)
Kind = Literal["email", "address"]


@dataclass(frozen=True)
class Refusal:
    """Why sign-ins are refused for now, and for how long."""

    kind: Kind
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        if self.kind == "email":
            return f"Too many failed sign-ins for this email. Try again in {wait}."
        return f"Too many failed sign-ins from your network. Try again in {wait}."


def refusal(
    store: Store, email: str | None, address: str | None, *, now: datetime | None = None
) -> Refusal | None:
    """The refusal that holds for a sign-in as ``email`` from ``address``, if any."""
    now = now or datetime.now(UTC)
    keys = _keys(email, address)
    limits: dict[Kind, int] = {"email": EMAIL_LIMIT, "address": ADDRESS_LIMIT}
    with store.engine.connect() as connection:
        for kind, key in keys:
            row = connection.execute(
                select(login_failures.c.window_start, login_failures.c.failures).where(
                    login_failures.c.kind == kind, login_failures.c.key == key
                )
            ).first()
            if row is None or row.failures < limits[kind]:
                continue
            ends = _utc(row.window_start) + WINDOW
            if ends > now:
                return Refusal(kind, math.ceil((ends - now).total_seconds()))
    return None


def record_failure(
    store: Store, email: str | None, address: str | None, *, now: datetime | None = None
) -> None:
    """Count one failed sign-in against the email and the address."""
    now = now or datetime.now(UTC)
    for attempt in range(3):
        try:
            with store.engine.execution_options(**{WRITE: True}).begin() as connection:
                connection.execute(
                    delete(login_failures).where(login_failures.c.window_start < now - WINDOW)
                )
                for kind, key in _keys(email, address):
                    _count(connection, kind, key, now)
            return
        except IntegrityError:  # (PostgreSQL) another process counted the same new key
            if attempt == 2:
                raise


def forget_failures(store: Store, email: str) -> None:
    """A sign-in as ``email`` succeeded: its failures no longer count."""
    ((kind, key),) = _keys(email, None)
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        connection.execute(
            delete(login_failures).where(login_failures.c.kind == kind, login_failures.c.key == key)
        )


def _count(connection: Connection, kind: Kind, key: str, now: datetime) -> None:
    where = (login_failures.c.kind == kind, login_failures.c.key == key)
    row = connection.execute(
        select(login_failures.c.window_start).where(*where).with_for_update()
    ).first()
    if row is None:
        connection.execute(
            insert(login_failures).values(kind=kind, key=key, window_start=now, failures=1)
        )
    elif _utc(row.window_start) + WINDOW <= now:
        connection.execute(
            update(login_failures).where(*where).values(window_start=now, failures=1)
        )
    else:
        connection.execute(
            update(login_failures).where(*where).values(failures=login_failures.c.failures + 1)
        )


def _keys(email: str | None, address: str | None) -> list[tuple[Kind, str]]:
    keys: list[tuple[Kind, str]] = []
    if email is not None:
        keys.append(("email", _digest("email", email.strip().lower())))
    if address is not None:
        keys.append(("address", _digest("address", address)))
    return keys


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
