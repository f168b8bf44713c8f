"""Signing up and signing in, throttled, without telling which emails have accounts.

A wrong password and an unknown email get the same :class:`WrongCredentials`, after
the same work: an unknown email's attempt is checked against a dummy scrypt hash.
Every failure counts against the email and the client address
(:mod:`quiver.accounts.throttle`); while either is over its limit the attempt is
refused with :class:`Throttled` before any password is checked.

Signing up makes the user, a team of their own named after the email (``ada`` for
``ada@example.com``, then ``ada-2``...) and the user's ``owner`` membership of it, in
one transaction.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from quiver.accounts import throttle
from quiver.accounts.memberships import insert_membership
from quiver.accounts.passwords import DUMMY_HASH, hash_password, verify_password
from quiver.accounts.users import User, insert_user, normalize_email, user_by_email
from quiver.errors import AccountError
from quiver.store import Store
from quiver.store.engine import WRITE
from quiver.store.models import Team
from quiver.store.tokens import TokenInfo, identify

_NOT_NAME = re.compile(r"[^a-z0-9._-]+")
_TEAM_NAME_LENGTH = 40


class WrongCredentials(AccountError):
    """The email and password (or the token) do not open an account."""


class AccountDisabled(AccountError):
    """The password is right, and the account is disabled."""


class Throttled(AccountError):
    """Too many failures lately; ``retry_after`` seconds until sign-ins are taken again."""

    def __init__(self, refusal: throttle.Refusal) -> None:
        super().__init__(refusal.message)
        self.retry_after = refusal.retry_after


@dataclass(frozen=True)
class SignedUp:
    user: User
    team: str


def sign_in(
    store: Store, email: str, password: str, address: str | None, *, now: datetime | None = None
) -> User:
    """The user ``email`` and ``password`` open, or WrongCredentials, AccountDisabled or
    Throttled.  Slow on purpose (scrypt): run it off the event loop."""
    email = email.strip().lower()
    refused = throttle.refusal(store, email, address, now=now)
    if refused is not None:
        raise Throttled(refused)
    found = user_by_email(store, email) if email else None
    matches = verify_password(password, found[1] if found is not None else DUMMY_HASH)
    if found is None or not matches:
        throttle.record_failure(store, email, address, now=now)
        raise WrongCredentials("Email or password is wrong.")
    user = found[0]
    if user.disabled:
        raise AccountDisabled("This account is disabled. Ask an operator to enable it.")
    throttle.forget_failures(store, email)
    return user


def sign_in_with_token(
    store: Store, token: str, address: str | None, *, now: datetime | None = None
) -> tuple[int, TokenInfo]:
    """The admin token ``token`` is (its row id and description), or WrongCredentials or
    Throttled (failures count against the address)."""
    refused = throttle.refusal(store, None, address, now=now)
    if refused is not None:
        raise Throttled(refused)
    found = identify(store, token.strip()) if token.strip() else None
    if found is None:
        throttle.record_failure(store, None, address, now=now)
        raise WrongCredentials("This admin token is unknown or was revoked.")
    return found


def sign_up(store: Store, email: str, password: str, name: str = "") -> SignedUp:
    """A new user owning a new team of their own (InvalidEmail, WeakPassword or
    EmailTaken when it cannot be made)."""
    email = normalize_email(email)
    hashed = hash_password(password)
    for attempt in range(3):
        try:
            with store.engine.execution_options(**{WRITE: True}).begin() as connection:
                user = insert_user(connection, email, hashed, name=name, is_admin=False)
                team = _free_team_name(connection, team_name_for(email))
                team_id = connection.execute(
                    insert(Team).values(name=team, frame={}).returning(Team.id)
                ).scalar_one()
                insert_membership(connection, user.id, team_id, "owner")
                return SignedUp(user, team)
        except IntegrityError:  # (PostgreSQL) a team of that name was made meanwhile
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def team_name_for(email: str) -> str:
    """A team name made of the email's local part: lowercase letters, digits, ``.``,
    ``_`` and ``-``, starting with a letter or digit."""
    local = email.partition("@")[0].lower()
    name = _NOT_NAME.sub("-", local).strip("._-")[:_TEAM_NAME_LENGTH].rstrip("._-")
    return name or "team"


def _free_team_name(connection: Connection, base: str) -> str:
    for number in range(1, 100):
        name = base if number == 1 else f"{base}-{number}"
        if connection.scalar(select(Team.id).where(Team.name == name)) is None:
            return name
    return f"{base}-{secrets.token_hex(4)}"
