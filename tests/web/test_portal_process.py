"""The portal's catalog, apps and subscriptions served by a real admin process in
store mode (as ``quiver serve`` runs it): a developer gets a key and asks for a plan,
and the workflow's other side (the admin API) sees the request."""

from __future__ import annotations

from pathlib import Path

import httpx

from quiver.store import open_store
from quiver.store.secrets import sha256_hash
from tests.support.catalog import built_in
from tests.web.process import TOKEN, admin_with_pages
from tests.web.test_portal_pages import (
    OPENAPI,
    PLANS,
    api,
    consumer,
    create_app,
    post,
    publish,
    sign_up,
)


def test_a_developer_gets_a_key_and_requests_a_plan_of_a_real_admin_process(
    tmp_path: Path,
) -> None:
    path = tmp_path / "quiver.db"
    store = open_store(str(path), built_in())
    try:
        publish(store, "payments", api("orders", title="Orders API", openapi=OPENAPI, plans=PLANS))
    finally:
        store.close()
    with admin_with_pages(path) as port:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30, headers={"Origin": base}) as client:
            team = sign_up(client, "ada@example.com")
            assert "Orders API" in client.get("/portal/apis").text
            key = create_app(client, team, "my-shop")
            page = "/portal/apis/payments.orders"
            asked = post(client, page, f"{page}/subscribe", team=team, app="my-shop", plan="free")
            assert asked.status_code == 303
            assert "badge-pending" in client.get("/portal/subscriptions").text
            admin = httpx.get(
                f"{base}/subscriptions",
                params={"team": "payments"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
            assert admin.status_code == 200, admin.text
            [request] = admin.json()["data"]
            assert (request["team"], request["consumer"], request["state"]) == (
                team,
                "my-shop",
                "pending",
            )
    store = open_store(str(path), built_in())
    try:
        made = consumer(store, team, "my-shop")
    finally:
        store.close()
    assert made is not None
    assert made["credentials"]["key-auth"] == [{"key_hash": sha256_hash(key)}]
