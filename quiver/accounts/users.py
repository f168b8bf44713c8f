"""Users: made with a checked email and password, found by email, listed.

An email is stored lowercased (``Ada@Example.com`` and ``ada@example.com`` are one
account) and checked only for its shape: one ``@``, something on both sides, no
spaces.  A platform admin (``is_admin``) may act on every team in the console;
everybody else acts through their memberships (:mod:`quiver.accounts.memberships`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, RowMapping, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from quiver.accounts.passwords import hash_password
from quiver.errors import AccountError
from quiver.store import Store
from quiver.store.accounttables import users
from quiver.store.engine import WRITE

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 254
MAX_NAME = 200


class InvalidEmail(AccountError):
    """The text is not shaped like an email address."""

    field = "email"


class EmailTaken(AccountError):
    """An account with that email exists already."""

    field = "email"


@dataclass(frozen=True)
class User:
    """What may be told about a user: never the password's hash."""

    id: int
    email: str
    display_name: str
    is_admin: bool
    disabled: bool
    created_at: datetime

    @property
    def shown_name(self) -> str:
        """The display name, or the email when there is none."""
        return self.display_name or self.email


def normalize_email(text: str) -> str:
    """``text`` as stored: trimmed and lowercased; InvalidEmail when it is no email."""
    email = text.strip().lower()
    if not email:
        raise InvalidEmail("Enter your email address.")
    if len(email) > MAX_EMAIL or not _EMAIL.match(email):
        raise InvalidEmail("Enter an email address like name@example.com.")
    return email


def create_user(
    store: Store, email: str, password: str, *, name: str = "", is_admin: bool = False
) -> User:
    """A new user (its password hashed: slow, run it off the event loop)."""
    email = normalize_email(email)
    hashed = hash_password(password)
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        return insert_user(connection, email, hashed, name=name, is_admin=is_admin)


def insert_user(
    connection: Connection, email: str, password_hash: str, *, name: str, is_admin: bool
) -> User:
    """Insert a user in the caller's transaction; EmailTaken when the email has one."""
    if connection.scalar(select(users.c.id).where(users.c.email == email)) is not None:
        raise EmailTaken("An account with this email exists already.")
    row = {
        "email": email,
        "password_hash": password_hash,
        "display_name": name.strip()[:MAX_NAME],
        "is_admin": is_admin,
        "disabled": False,
        "created_at": datetime.now(UTC),
    }
    try:
        user_id = connection.execute(insert(users).values(**row).returning(users.c.id)).scalar_one()
    except IntegrityError as exc:  # made meanwhile by another process
        raise EmailTaken("An account with this email exists already.") from exc
    return _user({"id": user_id, **row})


def user_by_email(store: Store, email: str) -> tuple[User, str] | None:
    """The user of ``email`` (any case) and its password hash, or None."""
    with store.engine.connect() as connection:
        row = connection.execute(
            select(users).where(users.c.email == email.strip().lower())
        ).first()
    return None if row is None else (_user(row._mapping), row.password_hash)


def user_by_id(store: Store, user_id: int) -> User | None:
    with store.engine.connect() as connection:
        row = connection.execute(select(users).where(users.c.id == user_id)).first()
    return None if row is None else _user(row._mapping)


def list_users(store: Store) -> list[User]:
    """Every user, by email."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(users).order_by(users.c.email)).all()
    return [_user(row._mapping) for row in rows]


def count_users(store: Store) -> int:
    with store.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(users)) or 0


def set_disabled(store: Store, user_id: int, disabled: bool) -> bool:
    """Disable (or enable again) a user; whether there is one.  A disabled user's
    sessions stop working at their next request."""
    with store.engine.execution_options(**{WRITE: True}).begin() as connection:
        result = connection.execute(
            update(users).where(users.c.id == user_id).values(disabled=disabled)
        )
    return bool(result.rowcount)


def _user(row: RowMapping | dict[str, Any]) -> User:
    created: datetime = row["created_at"]
    if created.tzinfo is None:  # SQLite keeps no time zone: it was written in UTC
        created = created.replace(tzinfo=UTC)
    return User(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        is_admin=bool(row["is_admin"]),
        disabled=bool(row["disabled"]),
        created_at=created,
    )
