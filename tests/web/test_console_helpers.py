"""Teams, APIs and subscription requests for the console's tests, made through the
admin API as an operator would, and console sign-ins for each kind of person.
(No tests here: the console's test modules import these.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from quiver.accounts.memberships import TeamRole, set_membership
from quiver.accounts.users import create_user
from quiver.store import Store
from quiver.store.teams import create_team
from quiver.store.tokens import create_token
from tests.web.forms import PASSWORD, submit


def payments_document() -> dict[str, Any]:
    return {
        "targets": [{"name": "ledger", "url": "http://127.0.0.1:9"}],
        "routes": [{"name": "orders", "paths": ["/orders"], "target": "ledger"}],
        "apis": [
            {
                "name": "orders",
                "title": "Orders API",
                "routes": ["orders"],
                "state": "published",
                "plans": [{"name": "free", "approval": "manual"}],
            }
        ],
        "consumers": [{"name": "payments-app"}],
    }


def shop_document() -> dict[str, Any]:
    return {
        "targets": [{"name": "storefront", "url": "http://127.0.0.1:9"}],
        "routes": [{"name": "cart", "paths": ["/cart"], "target": "storefront"}],
        "consumers": [{"name": "shop-app"}],
    }


@contextmanager
def operator_client(base_url: str, store: Store) -> Iterator[httpx.Client]:
    """The admin API as a platform operator's token calls it."""
    _, token = create_token(store, "root", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        yield client


def two_teams(api: httpx.Client, store: Store) -> None:
    """Teams ``payments`` (an API needing approval) and ``shop``; a request of each
    team's consumer for payments' API (number 1 of shop's, 2 of payments')."""
    create_team(store, "payments")
    create_team(store, "shop")
    for team, document in (("payments", payments_document()), ("shop", shop_document())):
        applied = api.post(f"/config/apply?team={team}", json={"document": document})
        assert applied.status_code == 200, applied.text
    asked = (
        ("shop", {"api": "payments.orders", "plan": "free", "consumer": "shop-app"}),
        ("payments", {"api": "orders", "plan": "free", "consumer": "payments-app"}),
    )
    for team, body in asked:
        made = api.post(f"/subscriptions?team={team}", json=body)
        assert made.status_code == 201, made.text


def member(store: Store, email: str, team: str, role: TeamRole) -> None:
    made = create_user(store, email, PASSWORD)
    set_membership(store, made.id, team, role)


def sign_in(client: httpx.Client, email: str) -> None:
    signed = submit(client, "/console/signin", "/console/signin", email=email, password=PASSWORD)
    assert signed.status_code == 303, signed.text[:500]
