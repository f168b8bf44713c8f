"""Signing in: one answer for a wrong password and an unknown email, after the same work;
refused while throttled; a disabled account stays shut."""

from __future__ import annotations

import pytest

from quiver.accounts import passwords
from quiver.accounts.passwords import DUMMY_HASH
from quiver.accounts.signin import (
    AccountDisabled,
    Throttled,
    WrongCredentials,
    sign_in,
    sign_in_with_token,
)
from quiver.accounts.throttle import ADDRESS_LIMIT, EMAIL_LIMIT
from quiver.accounts.users import create_user, set_disabled
from quiver.store import Store
from quiver.store.tokens import create_token

PASSWORD = "a long enough passphrase"


def test_the_right_password_signs_in_whatever_the_emails_case(store: Store) -> None:
    made = create_user(store, "ada@example.com", PASSWORD)
    assert sign_in(store, " Ada@Example.com", PASSWORD, "10.0.0.1") == made


def test_a_wrong_password_and_an_unknown_email_get_one_answer_after_one_check(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    checked: list[str] = []
    real = passwords.verify_password

    def counting(password: str, stored: str) -> bool:
        checked.append(stored)
        return real(password, stored)

    monkeypatch.setattr("quiver.accounts.signin.verify_password", counting)
    answers = []
    for email in ("ada@example.com", "nobody@example.com"):
        with pytest.raises(WrongCredentials) as refused:
            sign_in(store, email, "not the password", "10.0.0.1")
        answers.append(str(refused.value))
    assert answers == ["Email or password is wrong."] * 2
    assert len(checked) == 2 and checked[1] == DUMMY_HASH, "an unknown email costs a scrypt too"


def test_after_five_failures_even_the_right_password_is_refused(store: Store) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    for _ in range(EMAIL_LIMIT):
        with pytest.raises(WrongCredentials):
            sign_in(store, "ada@example.com", "not the password", "10.0.0.1")
    with pytest.raises(Throttled) as refused:
        sign_in(store, "ada@example.com", PASSWORD, "10.0.0.2")
    assert "Too many failed sign-ins for this email" in str(refused.value)
    assert 14 * 60 < refused.value.retry_after <= 15 * 60


def test_a_disabled_account_is_told_so_only_with_the_right_password(store: Store) -> None:
    user = create_user(store, "ada@example.com", PASSWORD)
    set_disabled(store, user.id, True)
    with pytest.raises(WrongCredentials):
        sign_in(store, "ada@example.com", "not the password", "10.0.0.1")
    with pytest.raises(AccountDisabled):
        sign_in(store, "ada@example.com", PASSWORD, "10.0.0.1")


def test_a_token_signs_in_and_wrong_ones_count_against_the_address(store: Store) -> None:
    info, token = create_token(store, "ops", "viewer")
    token_id, found = sign_in_with_token(store, f" {token} ", "10.0.0.1")
    assert found == info and token_id > 0
    for _ in range(ADDRESS_LIMIT):
        with pytest.raises(WrongCredentials):
            sign_in_with_token(store, "qv_" + "x" * 43, "10.0.0.1")
    with pytest.raises(Throttled):
        sign_in_with_token(store, token, "10.0.0.1")
    assert sign_in_with_token(store, token, "10.0.0.2")[1] == info
