"""Passwords are kept as scrypt hashes in the agreed form and checked in constant time."""

from __future__ import annotations

import base64
import re

import pytest

from quiver.accounts.passwords import (
    DUMMY_HASH,
    MIN_LENGTH,
    WeakPassword,
    hash_password,
    verify_password,
)


def test_a_hash_is_scrypt_with_its_parameters_salt_and_digest() -> None:
    stored = hash_password("correct horse battery")
    match = re.fullmatch(r"scrypt\$32768\$8\$1\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)", stored)
    assert match, stored
    assert len(base64.b64decode(match.group(1))) == 16
    assert len(base64.b64decode(match.group(2))) == 32
    assert "correct horse" not in stored


def test_the_right_password_verifies_and_others_do_not() -> None:
    stored = hash_password("correct horse battery")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("correct horse battery") != hash_password("correct horse battery")


@pytest.mark.parametrize("password", ["", "short", "x" * (MIN_LENGTH - 1), "y" * 1025])
def test_a_short_or_absurd_password_is_refused_without_its_text(password: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        hash_password(password)
    assert refused.value.field == "password"
    if password:
        assert password not in str(refused.value)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "bcrypt$10$8$1$AAAA$BBBB",
        "scrypt$x$8$1$AAAA$BBBB",
        "scrypt$32768$8$1$!!!$BBBB",
        "scrypt$1048576$64$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",  # asks for 8 GiB
        "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$",
    ],
)
def test_a_damaged_hash_opens_nothing(stored: str) -> None:
    assert not verify_password("correct horse battery", stored)


def test_the_dummy_hash_takes_the_parameters_of_a_real_one_and_opens_nothing() -> None:
    assert DUMMY_HASH.split("$")[:4] == hash_password("correct horse battery").split("$")[:4]
    assert not verify_password("correct horse battery", DUMMY_HASH)
