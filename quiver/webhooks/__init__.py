"""Outbound webhooks: Standard Webhooks signing for senders and receivers
(``quiver.webhooks.verify``) and, in the control plane, the durable delivery
of events to subscribed endpoints."""

from quiver.errors import WebhookVerificationError as VerificationError
from quiver.webhooks.signing import (
    new_secret,
    sign,
    signed_headers,
    verify,
)

__all__ = ["VerificationError", "new_secret", "sign", "signed_headers", "verify"]
