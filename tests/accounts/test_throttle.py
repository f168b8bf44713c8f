"""Sign-in throttling: 5 failures per email or 20 per address in 15 minutes, counted in
the store so that every admin process agrees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from quiver.accounts import throttle
from quiver.accounts.throttle import (
    ADDRESS_LIMIT,
    EMAIL_LIMIT,
    WINDOW,
    Refusal,
    forget_failures,
    record_failure,
    refusal,
)
from quiver.store import Store, open_store
from quiver.store.accounttables import login_failures

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def fail(store: Store, times: int, email: str | None, address: str | None, at: datetime) -> None:
    for _ in range(times):
        record_failure(store, email, address, now=at)


def test_the_sixth_attempt_for_an_email_is_refused_until_the_window_ends(store: Store) -> None:
    fail(store, EMAIL_LIMIT - 1, "ada@example.com", "10.0.0.1", START)
    assert refusal(store, "ada@example.com", "10.0.0.9", now=START) is None
    fail(store, 1, "ada@example.com", "10.0.0.1", START + timedelta(minutes=5))
    refused = refusal(store, "ADA@example.com", "10.0.0.9", now=START + timedelta(minutes=6))
    assert refused == Refusal("email", 9 * 60)
    assert refused.message == "Too many failed sign-ins for this email. Try again in 9 minutes."
    assert refusal(store, "bob@example.com", "10.0.0.9", now=START) is None
    assert refusal(store, "ada@example.com", "10.0.0.9", now=START + WINDOW) is None


def test_twenty_failures_from_one_address_refuse_every_email_from_it(store: Store) -> None:
    for number in range(ADDRESS_LIMIT):
        record_failure(store, f"user{number}@example.com", "10.0.0.1", now=START)
    refused = refusal(store, "new@example.com", "10.0.0.1", now=START + timedelta(seconds=30))
    assert refused is not None and refused.kind == "address"
    assert "from your network" in refused.message and "15 minutes" in refused.message
    assert refusal(store, "new@example.com", "10.0.0.2", now=START) is None


def test_a_success_clears_the_emails_count_but_not_the_addresss(store: Store) -> None:
    fail(store, EMAIL_LIMIT, "ada@example.com", "10.0.0.1", START)
    forget_failures(store, "Ada@Example.com")
    assert refusal(store, "ada@example.com", None, now=START) is None
    with store.engine.connect() as connection:
        kinds = [row.kind for row in connection.execute(select(login_failures))]
    assert kinds == ["address"]


def test_a_window_starts_again_after_it_ends(store: Store) -> None:
    fail(store, EMAIL_LIMIT - 1, "ada@example.com", None, START)
    fail(store, EMAIL_LIMIT - 1, "ada@example.com", None, START + WINDOW)
    assert refusal(store, "ada@example.com", None, now=START + WINDOW) is None


def test_the_table_holds_digests_not_emails_or_addresses(store: Store) -> None:
    record_failure(store, "ada@example.com", "10.0.0.1", now=START)
    with store.engine.connect() as connection:
        rows = [tuple(row) for row in connection.execute(select(login_failures))]
    assert rows and "ada" not in str(rows) and "10.0.0.1" not in str(rows)


def test_two_processes_on_one_store_count_together(store_path: str, store: Store) -> None:
    other = open_store(store_path)
    try:
        fail(store, 3, "ada@example.com", None, START)
        fail(other, 2, "ada@example.com", None, START)
        assert refusal(store, "ada@example.com", None, now=START) is not None
        assert refusal(other, "ada@example.com", None, now=START) is not None
    finally:
        other.close()


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(1, "1 minute"), (60, "1 minute"), (61, "2 minutes"), (900, "15 minutes")],
)
def test_the_wait_is_told_in_whole_minutes(seconds: int, shown: str) -> None:
    assert shown in throttle.Refusal("email", seconds).message
