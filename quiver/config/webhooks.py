"""The ``webhooks:`` section: endpoints declared in the config file, and how the
admin API's process delivers to them (docs/webhooks.md).

Declared endpoints are written to the store when the admin API starts, beside the
ones made through ``/webhooks/endpoints``; a declared endpoint's url, event types,
secret and ordering follow the file at each start.  Secrets come from the
environment (``secret: ${ORDERS_WEBHOOK_SECRET}``), never written in the file.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from quiver.config.base import Duration, Strict
from quiver.config.upstream import NAME_PATTERN

#: 5s, 5m, 30m, 2h, 5h, then 10h six times: about three days
DEFAULT_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, *(36000.0,) * 6)
#: an event type: dotted lowercase words
EVENT_TYPE = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$"
#: what an endpoint subscribes to: an event type, or a prefix ending in ``.*``
SUBSCRIPTION = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?$"
#: the families of the events Quiver publishes itself: applications may not
#: publish in them, so a receiver can trust that Quiver sent such an event
RESERVED = (
    "config",
    "consumer",
    "credential",
    "node",
    "breaker",
    "quota",
    "budget",
    "subscription",
    "webhook",
)


def check_secret(value: str) -> str:
    """``value`` when it is a signing secret: ``whsec_`` and base64 of at least 16
    bytes (the prefix may be left out, as Standard Webhooks libraries allow)."""
    text = value.removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 bytes (24 is usual)")
    return value


#: a signing secret, checked (:func:`check_secret`)
SigningSecret = Annotated[str, AfterValidator(check_secret)]


class WebhookEndpoint(Strict):
    """An endpoint Quiver posts events to, signed per Standard Webhooks."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name of the endpoint.")
    url: str = Field(
        pattern=r"^https?://", description="Where events are POSTed (http:// or https://)."
    )
    secret: SigningSecret = Field(
        description="The `whsec_` signing secret (base64 after the prefix); write "
        "`${ENV_VAR}` rather than the secret itself.",
    )
    event_types: list[Annotated[str, Field(pattern=SUBSCRIPTION)]] = Field(
        default_factory=list,
        description="Event types it receives (`consumer.*` for a family); empty: all.",
    )
    ordered: bool = Field(
        False,
        description="Deliver its messages one at a time, in order: a failing message "
        "holds back the ones after it.",
    )


class WebhookSettings(Strict):
    """Webhook endpoints and their delivery: retries, dead letters, disabling."""

    endpoints: list[WebhookEndpoint] = Field(
        default_factory=list, description="Endpoints declared here (more through the admin API)."
    )
    retry_schedule: list[Duration] = Field(
        default_factory=lambda: list(DEFAULT_SCHEDULE),
        description="Waits between attempts of a failing message (each moved by up to "
        "10% at random); once they are spent, the message is dead-lettered.",
    )
    disable_after: Duration = Field(
        5 * 86400.0,
        description="An endpoint whose every attempt failed for this long is disabled "
        "and `webhook.endpoint.disabled` is published.",
    )
    timeout: Annotated[Duration, Field(gt=0)] = Field(
        15.0, description="How long one attempt may take."
    )
    retention: Duration = Field(
        30 * 86400.0,
        description="Delivered and dead messages older than this are deleted with their "
        "attempt logs (e.g. `30d`); pending ones stay until delivered or dead.",
    )

    @field_validator("endpoints")
    @classmethod
    def _names(cls, endpoints: list[WebhookEndpoint]) -> list[WebhookEndpoint]:
        seen: set[str] = set()
        for endpoint in endpoints:
            if endpoint.name in seen:
                raise ValueError(f"two endpoints are named {endpoint.name!r}")
            seen.add(endpoint.name)
        return endpoints
