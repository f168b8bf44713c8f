"""What ai-pii takes for personal data, and what it leaves alone."""

from __future__ import annotations

import pytest

from quiver.plugins.ai_guard.pii import ENTITIES, Finder, iban_valid, luhn

FINDER = Finder(ENTITIES, {})


@pytest.mark.parametrize(
    "text, masked",
    [
        ("write to jane.doe+ai@example.co.uk today", "write to [EMAIL] today"),
        ("call +33 6 12 34 56 78", "call [PHONE]"),
        ("call (555) 123-4567.", "call [PHONE]."),
        ("call 030 1234567 or 555.123.4567", "call [PHONE] or [PHONE]"),
        ("call +14155552671", "call [PHONE]"),
        ("card 4111 1111 1111 1111 ok", "card [CARD] ok"),
        ("card 5500-0000-0000-0004", "card [CARD]"),
        ("card 4111111111111111", "card [CARD]"),
        ("iban DE89 3704 0044 0532 0130 00 is mine", "iban [IBAN] is mine"),
        ("iban GB82WEST12345698765432", "iban [IBAN]"),
        ("key sk-proj-abcdefghijklmnopqrstuvwx!", "key [API_KEY]!"),
        ("key sk-ant-api03-abcdefghijklmnopqrstuvwx", "key [API_KEY]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [API_KEY]"),
        ("gh ghp_" + "a1" * 18, "gh [API_KEY]"),
        ("slack xoxb-1234567890-abcdef", "slack [API_KEY]"),
    ],
)
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert FINDER.mask(text)[0] == masked


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112",  # fails Luhn
        "iban DE89 3704 0044 0532 0130 01",  # fails mod-97
        "on 2024-01-15 at 10:00, year 2024 2024-01-15T10:00",
        "ip 192.168.100.200, version 10.0.19045.2965, v1.2.3",
        "order 1234567890 (a bare run of digits)",
        "total 1,234,567.89 EUR",
        "short 123-4567",
        "sk-short and AKIA1234",
        "an @ sign alone, user@ and @host",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert FINDER.mask(text) == (text, [])


def test_the_kinds_found_are_reported_in_order() -> None:
    masked, kinds = FINDER.mask("a@b.io then 4111111111111111 then a@b.io")
    assert masked == "[EMAIL] then [CARD] then [EMAIL]"
    assert kinds == ["email", "card", "email"]


def test_an_api_key_holding_digits_is_one_api_key() -> None:
    assert FINDER.mask("sk-12345678901234567890123")[1] == ["api_key"]


def test_only_the_kinds_asked_for_and_their_masks() -> None:
    finder = Finder(["email"], {"email": "<email>"})
    assert finder.mask("x@y.org 4111111111111111") == ("<email> 4111111111111111", ["email"])


def test_checksums() -> None:
    assert luhn("79927398713") and not luhn("79927398710")
    assert iban_valid("FR14 2004 1010 0505 0001 3M02 606")
    assert not iban_valid("FR14 2004 1010 0505 0001 3M02 607")
    assert not iban_valid("DE89")
