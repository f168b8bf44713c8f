"""Signing and verifying webhooks as the Standard Webhooks spec says.

A message is signed with HMAC-SHA256 over ``"{webhook-id}.{webhook-timestamp}.{body}"``
with the endpoint's secret; the ``webhook-signature`` header holds one or more
space-separated ``v1,<base64 signature>``.  While a secret is rotated, the sender
signs with both the new and the old one, so a receiver knowing either accepts it.

Secrets are written ``whsec_<base64 of 24 to 64 random bytes>``::

    secret = new_secret()
    headers = signed_headers([secret], "msg_2Lx...", int(time.time()), body)
    verify(secret, headers, body)  # raises VerificationError when it does not hold
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import time
from collections.abc import Iterable, Mapping
from datetime import datetime

from quiver.errors import WebhookVerificationError as VerificationError

PREFIX = "whsec_"
#: how far (seconds) a timestamp may be from now, either way, by default
TOLERANCE = 300


def new_secret(size: int = 32) -> str:
    """A fresh ``whsec_`` secret of ``size`` random bytes."""
    return PREFIX + base64.b64encode(_random.token_bytes(size)).decode()


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key a secret stands for: ``whsec_`` + base64, or raw bytes."""
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.removeprefix(PREFIX)
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def _timestamp(timestamp: int | datetime) -> int:
    return int(timestamp.timestamp()) if isinstance(timestamp, datetime) else int(timestamp)


def sign(secret: str | bytes, msg_id: str, timestamp: int | datetime, payload: bytes | str) -> str:
    """The ``v1,<base64>`` signature of one message with one secret."""
    body = payload.encode() if isinstance(payload, str) else payload
    signed = f"{msg_id}.{_timestamp(timestamp)}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    secrets: Iterable[str | bytes], msg_id: str, timestamp: int | datetime, payload: bytes | str
) -> dict[str, str]:
    """The three headers of a message signed with every one of ``secrets``."""
    signatures = " ".join(sign(secret, msg_id, timestamp, payload) for secret in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(_timestamp(timestamp)),
        "webhook-signature": signatures,
    }


def verify(
    secrets: str | bytes | Iterable[str | bytes],
    headers: Mapping[str, str],
    payload: bytes | str,
    *,
    tolerance: int = TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a received webhook; :class:`VerificationError` says why when it fails.

    ``secrets`` is one secret or several (during a rotation, the old and the new);
    ``headers`` the request's headers (any case); ``payload`` the body exactly as
    received.  A timestamp more than ``tolerance`` seconds away from ``now`` is
    refused, so a captured message cannot be replayed later.
    """
    keys = [secrets] if isinstance(secrets, (str, bytes)) else list(secrets)
    if not keys:
        raise ValueError("verify needs at least one secret")
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    header = lowered.get("webhook-signature")
    missing = [
        name
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", stamp),
            ("webhook-signature", header),
        )
        if not value
    ]
    if missing or msg_id is None or stamp is None or header is None:
        raise VerificationError(f"the webhook lacks the header(s) {', '.join(missing)}")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise VerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise VerificationError("webhook-timestamp is too old")
    if timestamp > current + tolerance:
        raise VerificationError("webhook-timestamp is in the future")
    given = [part.encode() for part in header.split(" ") if part.startswith("v1,")]
    for key in keys:
        expected = sign(key, msg_id, timestamp, payload).encode()
        # (every comparison runs, in constant time, whatever matched before)
        if any([hmac.compare_digest(expected, signature) for signature in given]):
            return
    raise VerificationError("no webhook signature matches the secret(s)")
