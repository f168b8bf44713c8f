"""The console's routes and targets over HTTP: each team's own, paginated, and the
nodes' health as the workers' metrics documents tell it (or "unknown")."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quiver.accounts.users import create_user
from quiver.admin import create_app
from quiver.observe.node_metrics import worker_path
from quiver.store import Store
from quiver.store.teams import create_team
from quiver.store.tokens import create_token
from quiver.web.site import mount_pages
from tests.admin.server import serving
from tests.support.catalog import built_in
from tests.web.forms import PASSWORD, csrf_of, submit
from tests.web.test_console_helpers import member, operator_client, sign_in, two_teams

_IDLE = {"breaker": None, "in_flight": 0, "open": 0, "idle": 0}


@pytest.fixture
def api(base_url: str, store: Store) -> Iterator[httpx.Client]:
    with operator_client(base_url, store) as client:
        yield client


def test_a_team_sees_its_own_routes_and_targets_only(
    client: httpx.Client, api: httpx.Client, store: Store
) -> None:
    two_teams(api, store)
    member(store, "sam@example.com", "shop", "developer")
    sign_in(client, "sam@example.com")
    routes = client.get("/console/routes")
    assert routes.status_code == 200
    assert "cart" in routes.text and "<code>/cart</code>" in routes.text
    assert "orders" not in routes.text and "payments" not in routes.text
    targets = client.get("/console/targets")
    assert targets.status_code == 200
    assert "storefront" in targets.text and "ledger" not in targets.text
    assert "http://127.0.0.1:9" in targets.text and "badge-health-unknown" in targets.text
    assert "Node health is unknown here" in targets.text
    assert 'href="/console/targets" aria-current="page"' in targets.text


def test_routes_paginate_and_an_empty_team_says_so(
    client: httpx.Client, api: httpx.Client, store: Store
) -> None:
    document = {
        "targets": [{"name": "t", "url": "http://127.0.0.1:9"}],
        "routes": [
            {"name": f"r{n:02d}", "paths": [f"/r{n:02d}"], "target": "t"} for n in range(25)
        ],
    }
    assert api.post("/config/apply", json={"document": document}).status_code == 200
    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    sign_in(client, "root@example.com")
    first = client.get("/console/routes")
    assert "Page 1 of 2" in first.text and "r19" in first.text and "r20" not in first.text
    second = client.get("/console/routes?page=2")
    assert "r24" in second.text and "r00" not in second.text

    with httpx.Client(base_url=str(client.base_url), headers=dict(client.headers)) as other:
        create_team(store, "empty")
        member(store, "eve@example.com", "empty", "owner")
        sign_in(other, "eve@example.com")
        assert "No routes" in other.get("/console/routes").text
        assert "No targets" in other.get("/console/targets").text


def test_node_health_comes_from_the_workers_documents(tmp_path: Path, store: Store) -> None:
    app = create_app(None, store, built_in())
    mount_pages(app, https=False)
    app.state.run_dir = tmp_path
    document = {
        "targets": [
            {
                "name": "pool",
                "nodes": [{"url": "http://10.0.0.1:80"}, {"url": "http://10.0.0.2:80"}],
            }
        ]
    }
    worker = {
        "pid": os.getpid(),
        "counters": {},
        "targets": {
            "pool": [
                {
                    "node": "10.0.0.1:80",
                    "up": True,
                    "breaker": None,
                    "in_flight": 0,
                    "open": 0,
                    "idle": 0,
                },
                {
                    "node": "10.0.0.2:80",
                    "up": False,
                    "breaker": None,
                    "in_flight": 0,
                    "open": 0,
                    "idle": 0,
                },
            ]
        },
    }
    worker_path(tmp_path, os.getpid()).write_text(json.dumps(worker))
    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    with serving(app) as url:
        with operator_client(url, store) as api:
            assert api.post("/config/apply", json={"document": document}).status_code == 200
        with httpx.Client(base_url=url, headers={"Origin": url}) as client:
            sign_in(client, "root@example.com")
            page = client.get("/console/targets")
    assert "Node health is unknown here" not in page.text
    assert "badge-health-up" in page.text and "badge-health-down" in page.text
    assert "1/1 workers" in page.text and "0/1 workers" in page.text


def test_a_team_token_sees_every_page_of_its_team_only(
    client: httpx.Client, api: httpx.Client, store: Store
) -> None:
    two_teams(api, store)
    _, token = create_token(store, "shop-ops", "admin", "shop")
    signed = submit(client, "/console/signin", "/console/signin/token", token=token)
    assert signed.status_code == 303
    for path in (
        "/console",
        "/console/routes",
        "/console/targets",
        "/console/subscriptions",
        "/console/revisions",
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "ledger" not in page.text and "payments-app" not in page.text, path
    assert "storefront" in client.get("/console/targets").text
    assert client.get("/console?team=payments").status_code == 404
    huge = client.post(
        "/console/subscriptions/99999999999999999999/approve",
        data={"csrf": csrf_of(client.get("/console/subscriptions"))},
    )
    assert huge.status_code in (400, 404)
