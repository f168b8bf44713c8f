"""Signatures interoperate with the ``standardwebhooks`` library both ways, with
rotation (two secrets, two signatures) and clear refusals."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from quiver.webhooks import VerificationError, new_secret, sign, signed_headers, verify

BODY = b'{"type":"consumer.created","data":{"name":"alice"}}'


def test_what_we_sign_the_standard_library_verifies() -> None:
    secret = new_secret()
    headers = signed_headers([secret], "msg_1", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == {
        "type": "consumer.created",
        "data": {"name": "alice"},
    }


def test_what_the_standard_library_signs_we_verify() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    signature = Webhook(secret).sign("msg_2", now, BODY)
    assert signature == sign(secret, "msg_2", now, BODY)
    headers = {
        "Webhook-Id": "msg_2",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": signature,
    }
    verify(secret, headers, BODY)


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = signed_headers([new, old], "msg_3", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        verify(secret, headers, BODY)
        Webhook(secret).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_a_receiver_may_know_two_secrets() -> None:
    old, new = new_secret(), new_secret()
    headers = signed_headers([old], "msg_4", int(time.time()), BODY)
    verify([new, old], headers, BODY)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b), "no webhook signature"),
        (lambda h, b: (h, b + b" "), "no webhook signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "webhook-id"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "not an integer"),
        (lambda h, b: ({**h, "webhook-timestamp": "1000"}, b), "too old"),
        (lambda h, b: ({**h, "webhook-timestamp": str(2**40)}, b), "in the future"),
    ],
)
def test_what_does_not_hold_is_refused_with_the_reason(change, message) -> None:  # type: ignore[no-untyped-def]
    secret = new_secret()
    headers, body = change(signed_headers([secret], "msg_5", int(time.time()), BODY), BODY)
    with pytest.raises(VerificationError, match=message):
        verify(secret, headers, body)


def test_an_old_timestamp_passes_within_a_wider_tolerance() -> None:
    secret = new_secret()
    headers = signed_headers([secret], "msg_6", 1000, BODY)
    verify(secret, headers, BODY, tolerance=10, now=1005)


def test_a_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="whsec_"):
        sign("whsec_not base64!", "msg", 1, BODY)
