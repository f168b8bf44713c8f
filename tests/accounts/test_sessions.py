"""Web sessions: only a hash of the id is kept; they end idle, at their lifetime, on
sign-out and with their holder."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from quiver.accounts.sessions import (
    IDLE,
    LIFETIME,
    create_session,
    end_session,
    end_sessions_of,
    find_session,
)
from quiver.accounts.users import create_user
from quiver.store import Store
from quiver.store.accounttables import web_sessions
from quiver.store.tokens import create_token, identify, revoke_token

PASSWORD = "a long enough passphrase"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_the_store_keeps_the_sha256_of_the_id_never_the_id(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    session_id, session = create_session(store, "portal", user_id=user.id)
    assert len(session_id) >= 43
    with store.engine.connect() as connection:
        row = connection.execute(select(web_sessions)).one()
    assert row.session_hash == hashlib.sha256(session_id.encode()).hexdigest()
    assert session_id not in str(tuple(row))
    assert row.csrf == session.csrf and len(session.csrf) >= 43
    assert session.csrf not in repr(session)


def test_a_session_is_found_by_its_id_on_its_own_surface_only(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    session_id, session = create_session(store, "portal", user_id=user.id)
    found = find_session(store, session_id, "portal")
    assert found is not None and (found.id, found.user_id) == (session.id, user.id)
    assert find_session(store, session_id, "console") is None
    assert find_session(store, session_id + "x", "portal") is None


def test_a_session_ends_after_twelve_idle_hours(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    session_id, _ = create_session(store, "console", user_id=user.id, now=START)
    later = START + IDLE - timedelta(seconds=1)
    assert find_session(store, session_id, "console", now=later) is not None
    # that request counted as activity: the idle clock starts again from it
    assert find_session(store, session_id, "console", now=later + IDLE - timedelta(seconds=1))
    assert find_session(store, session_id, "console", now=later + IDLE + IDLE) is None
    assert find_session(store, session_id, "console", now=later) is None  # deleted


def test_a_session_ends_seven_days_after_it_began_however_busy(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    session_id, session = create_session(store, "portal", user_id=user.id, now=START)
    assert session.expires_at == START + LIFETIME
    moment = START + timedelta(hours=6)
    while moment < START + LIFETIME:
        assert find_session(store, session_id, "portal", now=moment) is not None
        moment += timedelta(hours=6)
    assert find_session(store, session_id, "portal", now=START + LIFETIME) is None


def test_signing_out_ends_the_session(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    session_id, _ = create_session(store, "portal", user_id=user.id)
    other_id, _ = create_session(store, "portal", user_id=user.id)
    end_session(store, session_id)
    end_session(store, session_id)  # twice is fine
    assert find_session(store, session_id, "portal") is None
    assert find_session(store, other_id, "portal") is not None
    assert end_sessions_of(store, user.id) == 1
    assert find_session(store, other_id, "portal") is None


def test_a_token_session_ends_when_the_token_is_revoked(store: Store) -> None:
    _, token = create_token(store, "ops", "admin")
    found = identify(store, token)
    assert found is not None
    session_id, session = create_session(store, "console", token_id=found[0])
    assert session.user_id is None and session.token_id == found[0]
    assert find_session(store, session_id, "console") is not None
    revoke_token(store, "ops")
    assert find_session(store, session_id, "console") is None


def test_a_session_has_exactly_one_holder(store: Store) -> None:
    with pytest.raises(ValueError):
        create_session(store, "portal")
    with pytest.raises(ValueError):
        create_session(store, "portal", user_id=1, token_id=1)


def test_ended_sessions_are_swept_when_a_new_one_begins(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    create_session(store, "portal", user_id=user.id, now=START)
    create_session(store, "portal", user_id=user.id, now=START + LIFETIME + timedelta(days=1))
    with store.engine.connect() as connection:
        assert len(connection.execute(select(web_sessions)).all()) == 1
