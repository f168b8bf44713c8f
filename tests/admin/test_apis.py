"""``/apis``, ``/apis/{name}/openapi.json`` and the team scope of ``/subscriptions``
through the admin API, and the webhook events of the subscription workflow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from quiver.store import Store, subscriptions
from quiver.store.merged import merge
from quiver.store.webhooktables import webhook_messages
from tests.admin.conftest import MakeClient
from tests.support.upstream import Conn, Upstream

OPENAPI = {"openapi": "3.1.0", "info": {"title": "Orders", "version": "1"}, "paths": {}}


def declare(client: httpx.Client, upstream: str, team: str | None = None) -> None:
    params = {"team": team} if team else {}
    document = {
        "targets": [{"name": "shop", "url": upstream}],
        "routes": [{"name": "orders", "paths": ["/orders"], "target": "shop"}],
        "apis": [
            {
                "name": "orders",
                "routes": ["orders"],
                "state": "published",
                "plans": [{"name": "free"}, {"name": "gold", "approval": "auto"}],
            }
        ],
        "consumers": [{"name": "acme-app"}],
    }
    answer = client.post("/config/apply", params=params, json={"document": document})
    assert answer.status_code == 200, answer.text


def serve_openapi(conn: Conn) -> None:
    while (request := conn.read_request()) is not None:
        status = 200 if request.path == "/openapi.json" else 404
        conn.respond(status, json.dumps(OPENAPI).encode(), [("Content-Type", "application/json")])


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream(serve_openapi) as server:
        yield server


def test_apis_are_entities_like_the_others(admin: httpx.Client, upstream: Upstream) -> None:
    declare(admin, upstream.url)
    assert [api["name"] for api in admin.get("/apis").json()["data"]] == ["orders"]
    patched = admin.patch(
        "/apis/orders",
        json={"state": "deprecated", "deprecation": {"date": "2026-12-01T00:00:00Z"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert admin.get("/apis/orders").json()["state"] == "deprecated"
    bad = admin.put("/apis/orders", json={"routes": ["nothing"]})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["location"].startswith("apis[0].routes[0]")
    made = admin.post("/apis", json={"name": "more", "routes": ["orders"]})
    assert made.status_code == 422  # a route is in one API at most
    assert "is in API 'orders' already" in made.text
    revisions = admin.get("/revisions", params={"limit": 1}).json()["data"]
    assert revisions[0]["changes"]["changed"] == 1


def test_the_openapi_document_of_an_api(admin: httpx.Client, upstream: Upstream) -> None:
    declare(admin, upstream.url)
    fetched = admin.get("/apis/orders/openapi.json")  # the first route's target's
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == OPENAPI
    inline = {**OPENAPI, "info": {"title": "Inline", "version": "2"}}
    assert admin.patch("/apis/orders", json={"openapi": inline}).status_code == 200
    assert admin.get("/apis/orders/openapi.json").json()["info"]["title"] == "Inline"
    elsewhere = {"url": "target://shop/missing.json"}
    assert admin.patch("/apis/orders", json={"openapi": None}).status_code == 200
    assert admin.patch("/apis/orders", json={"openapi": elsewhere}).status_code == 200
    missing = admin.get("/apis/orders/openapi.json")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "answered 404" in missing.json()["detail"]
    assert admin.get("/apis/nothing/openapi.json").status_code == 404


def test_a_team_subscribes_within_its_own_team(
    admin: httpx.Client, make_client: MakeClient, store: Store, upstream: Upstream
) -> None:
    assert admin.post("/teams", json={"name": "payments"}).status_code == 201
    team = make_client("editor", "payments")
    declare(team, upstream.url)
    declare(admin, upstream.url)
    asked = team.post(
        "/subscriptions", json={"api": "orders", "plan": "gold", "consumer": "acme-app"}
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["state"] == "approved" and asked.json()["team"] == "payments"
    _, merged = store.effective()
    [api] = [api for api in merged["apis"] if api["name"] == "payments.orders"]
    assert api["routes"] == ["payments.orders"]
    [consumer] = [c for c in merged["consumers"] if c["name"] == "payments.acme-app"]
    assert consumer["subscriptions"] == [{"api": "payments.orders", "plan": "gold"}]
    # the default team sees none of it, and a team token nothing of the default team's
    assert admin.get("/subscriptions").json()["data"] == []
    assert admin.get(f"/subscriptions/{asked.json()['id']}").status_code == 404
    mine = admin.post(
        "/subscriptions", json={"api": "orders", "plan": "free", "consumer": "acme-app"}
    )
    assert team.get(f"/subscriptions/{mine.json()['id']}").status_code == 404
    assert team.post(f"/subscriptions/{mine.json()['id']}/approve").status_code == 404
    viewer = make_client("viewer", "payments")
    assert viewer.get("/subscriptions").json()["data"][0]["id"] == asked.json()["id"]
    assert viewer.post(f"/subscriptions/{asked.json()['id']}/approve").status_code == 403


def test_each_step_publishes_its_webhook_event(
    admin: httpx.Client, store: Store, upstream: Upstream
) -> None:
    declare(admin, upstream.url)
    body = {"api": "orders", "plan": "free", "consumer": "acme-app"}
    first = admin.post("/subscriptions", json=body).json()["id"]
    admin.post(f"/subscriptions/{first}/reject", json={"reason": "not yet"})
    second = admin.post("/subscriptions", json=body).json()["id"]
    admin.post(f"/subscriptions/{second}/approve")
    admin.delete(f"/subscriptions/{second}")
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(webhook_messages.c.event_type, webhook_messages.c.payload).order_by(
                webhook_messages.c.id
            )
        ).all()
    events = [(row.event_type, json.loads(row.payload)["data"]) for row in rows]
    steps = [(kind, data["id"], data["state"]) for kind, data in events if "subscription" in kind]
    assert steps == [
        ("subscription.requested", first, "pending"),
        ("subscription.rejected", first, "rejected"),
        ("subscription.requested", second, "pending"),
        ("subscription.approved", second, "approved"),
        ("subscription.revoked", second, "revoked"),
    ]
    data: dict[str, Any] = [data for kind, data in events if "subscription" in kind][-1]
    assert data["consumer"] == "acme-app" and data["team"] == data["api_team"] == "default"


def test_without_a_gateway_a_generated_document_is_left_to_it(admin: httpx.Client) -> None:
    document = {
        "resources": [{"name": "notes", "fields": {"text": {"type": "string"}}}],
        "apis": [{"name": "notes", "routes": ["resource-notes"]}],
    }
    answer = admin.post("/config/apply", json={"document": document})
    assert answer.status_code == 200, answer.text
    left = admin.get("/apis/notes/openapi.json")
    assert left.status_code == 404
    assert left.headers["content-type"] == "application/problem+json"
    assert "GET /openapi/resources.json there" in left.json()["detail"]


def test_merged_names_of_subscriptions_to_other_teams_apis() -> None:
    api = {"name": "orders", "routes": ["orders"], "plans": [{"name": "free"}]}
    route = {"name": "orders", "paths": ["/orders"], "target": "shop"}
    documents: dict[str, dict[str, Any]] = {
        "default": {
            "routes": [route],
            "apis": [api],
            "consumers": [
                {"name": "a", "subscriptions": [{"api": "payments.orders", "plan": "free"}]}
            ],
        },
        "payments": {"routes": [route], "apis": [api]},
        "web": {
            "apis": [{**api, "name": "v1.orders", "routes": []}],
            "consumers": [
                {
                    "name": "b",
                    "subscriptions": [
                        {"api": "default.orders", "plan": "free"},
                        {"api": "payments.orders", "plan": "free"},
                        {"api": "v1.orders", "plan": "free"},  # its own, dotted
                    ],
                }
            ],
        },
    }
    merged = merge(documents)
    subscribed = {c["name"]: [s["api"] for s in c["subscriptions"]] for c in merged["consumers"]}
    assert subscribed == {
        "a": ["payments.orders"],
        "web.b": ["orders", "payments.orders", "web.v1.orders"],
    }
    assert documents["default"]["consumers"][0]["subscriptions"][0]["api"] == "payments.orders"


def test_a_subscription_to_an_api_no_team_has_names_its_key(
    admin: httpx.Client, make_client: MakeClient, upstream: Upstream
) -> None:
    assert admin.post("/teams", json={"name": "payments"}).status_code == 201
    assert admin.post("/teams", json={"name": "web"}).status_code == 201
    declare(make_client("admin", "payments"), upstream.url)
    web = make_client("admin", "web")
    for api, plan, location, message in (
        ("payments.nothing", "free", "api", "unknown API 'payments.nothing'"),
        ("nobody.orders", "free", "api", "unknown API 'nobody.orders'"),
        ("payments.orders", "gold-ish", "plan", "unknown plan 'gold-ish' of API 'payments.orders'"),
    ):
        consumer = {"name": "app", "subscriptions": [{"api": api, "plan": plan}]}
        answer = web.post("/config/apply", json={"document": {"consumers": [consumer]}})
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert detail.startswith(f"consumers[0].subscriptions[0].{location}: {message}")
        assert "'orders'" not in detail.removeprefix(
            f"consumers[0].subscriptions[0].{location}: {message}"
        )
    asked = web.post(
        "/subscriptions", json={"api": "nobody.orders", "plan": "free", "consumer": "app"}
    )
    assert asked.status_code == 422
    assert asked.headers["content-type"] == "application/problem+json"


def cross_team(
    admin: httpx.Client, make_client: MakeClient, upstream: str
) -> tuple[httpx.Client, httpx.Client, str]:
    """Teams payments (an API) and web (a consumer) and web's pending request."""
    for team in ("payments", "web"):
        assert admin.post("/teams", json={"name": team}).status_code == 201
    payments, web = make_client("admin", "payments"), make_client("editor", "web")
    declare(payments, upstream)
    applied = web.post("/config/apply", json={"document": {"consumers": [{"name": "app"}]}})
    assert applied.status_code == 200, applied.text
    body = {"api": "payments.orders", "plan": "free", "consumer": "app"}
    asked = web.post("/subscriptions", json=body)
    assert asked.status_code == 201, asked.text
    return payments, web, asked.json()["id"]


def subscribed(store: Store) -> list[dict[str, str]]:
    _, merged = store.effective()
    [consumer] = [c for c in merged["consumers"] if c["name"] == "web.app"]
    found: list[dict[str, str]] = consumer.get("subscriptions", [])
    return found


def test_an_approval_is_undone_whole_when_its_revision_fails(
    admin: httpx.Client, make_client: MakeClient, store: Store, upstream: Upstream
) -> None:
    payments, web, number = cross_team(admin, make_client, upstream.url)
    head = store.head()

    def failing(*_: object) -> None:
        raise RuntimeError("the disk is full")

    store.revision_hooks.append(failing)  # (the state is changed by then)
    failed = payments.post(f"/subscriptions/{number}/approve")
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    store.revision_hooks.remove(failing)
    assert web.get(f"/subscriptions/{number}").json()["state"] == "pending"
    assert store.head() == head and subscribed(store) == []
    again = payments.post(f"/subscriptions/{number}/approve")  # a retry completes it
    assert again.status_code == 200, again.text
    assert store.head() == head + 1
    assert subscribed(store) == [{"api": "payments.orders", "plan": "free"}]


def test_an_approval_is_undone_whole_when_its_state_change_fails(
    admin: httpx.Client,
    make_client: MakeClient,
    store: Store,
    upstream: Upstream,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payments, web, number = cross_team(admin, make_client, upstream.url)
    head = store.head()
    real = subscriptions.decide

    def decide_then_fail(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise RuntimeError("the connection dropped")

    monkeypatch.setattr(subscriptions, "decide", decide_then_fail)
    failed = payments.post(f"/subscriptions/{number}/approve")
    assert failed.status_code == 500
    monkeypatch.setattr(subscriptions, "decide", real)
    assert web.get(f"/subscriptions/{number}").json()["state"] == "pending"
    assert store.head() == head and subscribed(store) == []
    with store.engine.connect() as connection:
        events = connection.execute(select(webhook_messages.c.event_type)).scalars().all()
    assert "subscription.approved" not in events
    assert payments.post(f"/subscriptions/{number}/approve").status_code == 200
    assert subscribed(store) == [{"api": "payments.orders", "plan": "free"}]
    # revoking is one transaction too
    monkeypatch.setattr(subscriptions, "decide", decide_then_fail)
    assert web.delete(f"/subscriptions/{number}").status_code == 500
    assert subscribed(store) == [{"api": "payments.orders", "plan": "free"}]
    assert web.get(f"/subscriptions/{number}").json()["state"] == "approved"


def test_a_platform_admin_decides_for_any_team_and_an_editor_of_the_api_team_does_not(
    admin: httpx.Client, make_client: MakeClient, store: Store, upstream: Upstream
) -> None:
    _, _, number = cross_team(admin, make_client, upstream.url)
    editor = make_client("editor", "payments")
    assert editor.get(f"/subscriptions/{number}").status_code == 200
    assert editor.post(f"/subscriptions/{number}/approve").status_code == 403
    assert admin.get(f"/subscriptions/{number}").status_code == 404  # (team default)
    approved = admin.post(f"/subscriptions/{number}/approve", params={"team": "payments"})
    assert approved.status_code == 200, approved.text
    assert subscribed(store) == [{"api": "payments.orders", "plan": "free"}]
