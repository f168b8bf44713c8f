"""Webhook endpoints in the store: made through the admin API or declared in the
config file, each with its signing secrets (two while one rotates).

Secrets are HMAC keys the sender signs with, so they are stored as they are; they
are returned only by the calls that make them (``create_endpoint``,
``rotate_secret``), and an :class:`Endpoint` only counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from quiver.store.engine import WRITE
from quiver.store.webhooktables import webhook_attempts, webhook_deliveries, webhook_endpoints
from quiver.webhooks.signing import new_secret, secret_key


def writing(engine: Engine) -> Engine:
    return engine.execution_options(**{WRITE: True})


def live_secrets(secrets: list[dict[str, Any]], now_ms: int) -> list[str]:
    return [item["secret"] for item in secrets if _signs(item, now_ms)]


def _signs(item: dict[str, Any], now_ms: int) -> bool:
    return item.get("expires_ms") is None or item["expires_ms"] > now_ms


class EndpointExists(Exception):
    """An endpoint of that name exists already."""


class UnknownEndpoint(Exception):
    """No endpoint (or no message sent to it) of that name."""


@dataclass(frozen=True)
class Endpoint:
    name: str
    url: str
    event_types: list[str]
    description: str
    ordered: bool
    enabled: bool
    disabled_reason: str | None
    created_ms: int
    secrets: int  # how many secrets sign (2 during a rotation)


def _endpoint(row: Any, now_ms: int) -> Endpoint:
    return Endpoint(
        name=row.name,
        url=row.url,
        event_types=list(row.event_types),
        description=row.description,
        ordered=bool(row.ordered),
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        created_ms=row.created_ms,
        secrets=len(live_secrets(row.secrets, now_ms)),
    )


def create_endpoint(
    engine: Engine,
    name: str,
    url: str,
    *,
    now_ms: int,
    event_types: Sequence[str] = (),
    secret: str | None = None,
    description: str = "",
    ordered: bool = False,
) -> str:
    """Make an endpoint; returns its secret (``secret``, or a new one)."""
    secret = secret or new_secret()
    secret_key(secret)  # ValueError when it is not one
    try:
        with writing(engine).begin() as connection:
            connection.execute(
                insert(webhook_endpoints).values(
                    name=name,
                    url=url,
                    secrets=[{"secret": secret, "expires_ms": None}],
                    event_types=list(event_types),
                    description=description,
                    ordered=ordered,
                    enabled=True,
                    created_ms=now_ms,
                )
            )
    except IntegrityError:
        raise EndpointExists(f"there is a webhook endpoint {name!r} already") from None
    return secret


def list_endpoints(engine: Engine, now_ms: int) -> list[Endpoint]:
    with engine.connect() as connection:
        rows = connection.execute(select(webhook_endpoints).order_by(webhook_endpoints.c.name))
        return [_endpoint(row, now_ms) for row in rows]


def get_endpoint(engine: Engine, name: str, now_ms: int) -> Endpoint:
    with engine.connect() as connection:
        row = connection.execute(
            select(webhook_endpoints).where(webhook_endpoints.c.name == name)
        ).first()
    if row is None:
        raise UnknownEndpoint(f"there is no webhook endpoint {name!r}")
    return _endpoint(row, now_ms)


def update_endpoint(engine: Engine, name: str, now_ms: int, **changes: Any) -> Endpoint:
    """Change ``url``, ``event_types``, ``description``, ``ordered`` or ``enabled``;
    enabling an endpoint forgets its failures."""
    values = dict(changes)
    if not values:
        return get_endpoint(engine, name, now_ms)
    if values.get("enabled"):
        values.update(disabled_reason=None, failing_since_ms=None)
    with writing(engine).begin() as connection:
        done = connection.execute(
            update(webhook_endpoints).where(webhook_endpoints.c.name == name).values(**values)
        )
    if done.rowcount == 0:
        raise UnknownEndpoint(f"there is no webhook endpoint {name!r}")
    return get_endpoint(engine, name, now_ms)


def delete_endpoint(engine: Engine, name: str) -> None:
    with writing(engine).begin() as connection:
        found = connection.execute(
            select(webhook_endpoints.c.id).where(webhook_endpoints.c.name == name)
        ).scalar()
        if found is None:
            raise UnknownEndpoint(f"there is no webhook endpoint {name!r}")
        deliveries = select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.endpoint_id == found
        )
        # (explicitly: SQLite's cascades and PostgreSQL's agree, but say so)
        connection.execute(
            delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(deliveries))
        )
        connection.execute(
            delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == found)
        )
        connection.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == found))


def rotate_secret(
    engine: Engine, name: str, *, now_ms: int, grace_ms: int, secret: str | None = None
) -> str:
    """Sign with a new secret from now on, and with the current one(s) too for
    ``grace_ms`` more, so receivers can switch without losing a message."""
    secret = secret or new_secret()
    secret_key(secret)
    with writing(engine).begin() as connection:
        row = connection.execute(
            select(webhook_endpoints.c.secrets).where(webhook_endpoints.c.name == name)
        ).first()
        if row is None:
            raise UnknownEndpoint(f"there is no webhook endpoint {name!r}")
        live = [item for item in row.secrets if _signs(item, now_ms)][:1]
        kept = [{**item, "expires_ms": now_ms + grace_ms} for item in live]
        # the config file's secret is remembered, signing or not: see declare_endpoints
        kept += [
            {**item, "expires_ms": min(item["expires_ms"] or now_ms, now_ms)}
            for item in row.secrets
            if item.get("declared") and item not in live
        ]
        connection.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.name == name)
            .values(secrets=[{"secret": secret, "expires_ms": None}, *kept])
        )
    return secret


def declare_endpoints(engine: Engine, declared: Sequence[Any], *, now_ms: int) -> None:
    """Write the config file's endpoints (``quiver.config.webhooks.WebhookEndpoint``)
    to the store: a new one is created, an existing one takes the file's url, event
    types and ordering.  Its secret follows the file when the file's secret changed:
    the store remembers the one the file declared, so a rotation through the admin
    API stands across restarts for as long as the file says what it said."""
    e = webhook_endpoints
    with writing(engine).begin() as connection:
        for endpoint in declared:
            values = {
                "url": endpoint.url,
                "event_types": list(endpoint.event_types),
                "ordered": endpoint.ordered,
            }
            from_file = {"secret": endpoint.secret, "expires_ms": None, "declared": True}
            row = connection.execute(select(e.c.secrets).where(e.c.name == endpoint.name)).first()
            if row is None:
                connection.execute(
                    insert(e).values(
                        name=endpoint.name,
                        secrets=[from_file],
                        description="declared in the config file",
                        enabled=True,
                        created_ms=now_ms,
                        **values,
                    )
                )
                continue
            secrets = row.secrets
            before = next((item["secret"] for item in secrets if item.get("declared")), None)
            if before is None:  # made through the API, or before the store remembered
                if endpoint.secret in live_secrets(secrets, now_ms):
                    values["secrets"] = [
                        {**item, "declared": True} if item["secret"] == endpoint.secret else item
                        for item in secrets
                    ]
                else:
                    values["secrets"] = [from_file]
            elif before != endpoint.secret:  # the file changed: its secret, at once
                values["secrets"] = [from_file]
            connection.execute(update(e).where(e.c.name == endpoint.name).values(**values))
