"""API products in store mode: the subscription workflow through the admin API, and
what each step changes at the gateway, through a real ``quiver serve``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.store_mode.helpers import LIVE_WITHIN, TOKEN_LINE, admin_port, start_node
from tests.support.process import QuiverProcess
from tests.support.upstream import Upstream

KEY = "acme-key-0123456789abcdef"


def document(upstream: str, *, approval: str = "manual") -> dict[str, Any]:
    return {
        "targets": [{"name": "shop", "url": upstream}],
        "routes": [
            {"name": "orders", "paths": ["/orders"], "target": "shop"},
            {"name": "open", "paths": ["/open"], "target": "shop"},
        ],
        "apis": [
            {
                "name": "orders",
                "title": "Orders API",
                "routes": ["orders"],
                "state": "published",
                "plans": [
                    {
                        "name": "free",
                        "rate_limit": {"limit": 3, "window": "1m"},
                        "approval": approval,
                    }
                ],
            }
        ],
        "consumers": [{"name": "acme-app", "credentials": {"key-auth": [{"key": KEY}]}}],
    }


@dataclass
class Node:
    process: QuiverProcess
    admin: httpx.Client
    gateway: httpx.Client

    def revision(self) -> int:
        answer = self.admin.get("/config")
        assert answer.status_code == 200, answer.text
        number: int = answer.json()["revision"]
        return number

    def wait_served(self, revision: int) -> None:
        """The worker serves ``revision`` (it logged its reload) within a second."""
        pattern = rf"config reloaded from store revision {revision}\b"
        self.process.wait_for(pattern, timeout=LIVE_WITHIN)

    def apply(self, body: dict[str, Any]) -> None:
        answer = self.admin.post("/config/apply", json={"document": body})
        assert answer.status_code == 200, answer.text
        self.wait_served(answer.json()["revision"]["number"])

    def call(self, path: str = "/orders") -> httpx.Response:
        return self.gateway.get(path, headers={"apikey": KEY})


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with start_node(tmp_path) as process:
        port = process.wait_listening()
        [match] = process.wait_for(TOKEN_LINE)
        headers = {"Authorization": f"Bearer {match.group(1)}"}
        admin_url = f"http://127.0.0.1:{admin_port(process)}"
        with (
            httpx.Client(base_url=admin_url, headers=headers, timeout=10) as admin,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as gateway,
        ):
            yield Node(process, admin, gateway)
        assert process.stop() == 0


def test_a_subscription_is_requested_approved_limited_and_revoked(
    node: Node, upstream: Upstream
) -> None:
    node.apply(document(upstream.url))
    refused = node.call()
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["www-authenticate"] == 'Key realm="quiver"'
    problem = refused.json()
    assert problem["type"] == "urn:quiver:problem:subscription-required"
    assert "orders" in problem["detail"] and KEY not in refused.text
    assert problem["request_id"] == refused.headers["x-request-id"]
    assert node.gateway.get("/open").status_code == 200  # a route in no API

    asked = node.admin.post(
        "/subscriptions", json={"api": "orders", "plan": "free", "consumer": "acme-app"}
    )
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["state"] == "pending" and request["requested_by"] == "admin"
    assert asked.headers["location"] == f"/subscriptions/{request['id']}"
    assert node.call().status_code == 401  # pending is not approved
    again = node.admin.post(
        "/subscriptions", json={"api": "orders", "plan": "free", "consumer": "acme-app"}
    )
    assert again.status_code == 409

    before = node.revision()
    approved = node.admin.post(f"/subscriptions/{request['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    assert approved.json()["decided_by"] == "admin"
    assert node.revision() == before + 1
    consumer = node.admin.get("/consumers/acme-app").json()
    assert consumer["subscriptions"] == [{"api": "orders", "plan": "free"}]
    node.wait_served(before + 1)

    seen = len(upstream.requests)
    statuses = [node.call().status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert len(upstream.requests) == seen + 3
    assert upstream.requests[-1].header("x-quiver-plan") == "free"
    limited = node.call()
    assert limited.headers["content-type"] == "application/problem+json"
    assert "retry-after" in limited.headers and "ratelimit-policy" in limited.headers

    listed = node.admin.get("/subscriptions", params={"state": "approved", "api": "orders"})
    assert [item["id"] for item in listed.json()["data"]] == [request["id"]]
    assert node.admin.get("/subscriptions", params={"state": "pending"}).json()["data"] == []

    revoked = node.admin.delete(f"/subscriptions/{request['id']}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"
    node.wait_served(before + 2)
    assert node.call().status_code == 401
    assert "subscriptions" not in node.admin.get("/consumers/acme-app").json()
    assert node.admin.post(f"/subscriptions/{request['id']}/approve").status_code == 409


def test_a_rejection_needs_a_reason(node: Node, upstream: Upstream) -> None:
    node.apply(document(upstream.url))
    asked = node.admin.post(
        "/subscriptions", json={"api": "orders", "plan": "free", "consumer": "acme-app"}
    )
    number = asked.json()["id"]
    without = node.admin.post(f"/subscriptions/{number}/reject", json={})
    assert without.status_code == 422
    assert without.headers["content-type"] == "application/problem+json"
    empty = node.admin.post(f"/subscriptions/{number}/reject", json={"reason": ""})
    assert empty.status_code == 422
    rejected = node.admin.post(f"/subscriptions/{number}/reject", json={"reason": "who are you?"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["state"] == "rejected"
    assert rejected.json()["reason"] == "who are you?"
    assert node.admin.get(f"/subscriptions/{number}").json()["state"] == "rejected"
    assert node.admin.post(f"/subscriptions/{number}/approve").status_code == 409
    assert node.call().status_code == 401


def test_an_auto_approval_plan_subscribes_at_once(node: Node, upstream: Upstream) -> None:
    node.apply(document(upstream.url, approval="auto"))
    before = node.revision()
    asked = node.admin.post(
        "/subscriptions", json={"api": "orders", "plan": "free", "consumer": "acme-app"}
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["state"] == "approved"
    node.wait_served(before + 1)
    assert node.call().status_code == 200


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"api": "nothing", "plan": "free", "consumer": "acme-app"}, "no API 'nothing'"),
        ({"api": "orders", "plan": "gold", "consumer": "acme-app"}, "no plan 'gold'"),
        ({"api": "orders", "plan": "free", "consumer": "nobody"}, "no consumer 'nobody'"),
    ],
)
def test_a_request_for_what_does_not_exist_is_refused(
    node: Node, upstream: Upstream, body: dict[str, str], detail: str
) -> None:
    node.apply(document(upstream.url))
    answer = node.admin.post("/subscriptions", json=body)
    assert answer.status_code == 422
    assert detail in answer.json()["detail"]
    assert node.admin.get("/subscriptions").json()["data"] == []


def test_an_unknown_request_is_a_problem(node: Node) -> None:
    for answer in (
        node.admin.get("/subscriptions/999"),
        node.admin.post("/subscriptions/999/approve"),
        node.admin.delete("/subscriptions/999"),
    ):
        assert answer.status_code == 404
        assert answer.json()["type"] == "urn:quiver:problem:not-found"


def test_lifecycle_states_and_the_openapi_document_in_store_mode(
    node: Node, upstream: Upstream
) -> None:
    body = document(upstream.url)
    body["apis"] = [
        {
            "name": "orders",
            "routes": ["orders"],
            "state": "deprecated",
            "deprecation": {
                "date": "2026-12-01T00:00:00Z",
                "sunset": "2027-06-01T00:00:00Z",
                "link": "https://docs.example/orders/migrate",
            },
        },
        {
            "name": "open",
            "routes": ["open"],
            "state": "retired",
            "deprecation": {"date": "2026-12-01T00:00:00Z"},
        },
    ]
    node.apply(body)
    deprecated = node.gateway.get("/orders")
    assert deprecated.status_code == 200
    assert deprecated.headers["deprecation"] == "@1796083200"
    assert deprecated.headers["sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"
    assert deprecated.headers["link"] == '<https://docs.example/orders/migrate>; rel="deprecation"'
    seen = len(upstream.requests)
    retired = node.gateway.get("/open")
    assert retired.status_code == 410
    assert retired.json()["type"] == "urn:quiver:problem:api-retired"
    assert len(upstream.requests) == seen
    # the first route's target's /openapi.json (the echo node answers JSON describing
    # the request it got)
    fetched = node.admin.get("/apis/orders/openapi.json")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["path"] == "/openapi.json"
    missing = node.admin.get("/apis/nothing/openapi.json")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_generated_document_is_read_from_the_gateway(node: Node) -> None:
    node.apply(
        {
            "resources": [{"name": "notes", "fields": {"text": {"type": "string"}}}],
            "apis": [{"name": "notes", "title": "Notes", "routes": ["resource-notes"]}],
        }
    )
    served = node.gateway.get("/openapi/resources.json").json()
    fetched = node.admin.get("/apis/notes/openapi.json")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == served
    assert "/notes" in served["paths"]


def team_document(upstream: str) -> dict[str, Any]:
    """The payments team's APIs: orders (published, approved by hand) and a draft."""
    body = document(upstream)
    del body["consumers"]
    body["routes"].append({"name": "beta", "paths": ["/beta"], "target": "shop"})
    body["apis"].append(
        {"name": "beta", "routes": ["beta"], "state": "draft", "plans": [{"name": "free"}]}
    )
    return body


def test_a_team_subscribes_to_another_teams_api_which_that_team_approves(
    node: Node, upstream: Upstream
) -> None:
    for team in ("payments", "web", "elsewhere"):
        assert node.admin.post("/teams", json={"name": team}).status_code == 201
    tokens = {}
    for name, role, team in (
        ("payments-admin", "admin", "payments"),
        ("web-admin", "admin", "web"),
        ("elsewhere-admin", "admin", "elsewhere"),
    ):
        made = node.admin.post("/tokens", json={"name": name, "role": role, "team": team})
        assert made.status_code == 201, made.text
        tokens[team] = {"Authorization": f"Bearer {made.json()['token']}"}
    payments, web, elsewhere = tokens["payments"], tokens["web"], tokens["elsewhere"]

    applied = node.admin.post(
        "/config/apply", headers=payments, json={"document": team_document(upstream.url)}
    )
    assert applied.status_code == 200, applied.text
    apps = {"consumers": [{"name": "app", "credentials": {"key-auth": [{"key": KEY}]}}]}
    applied = node.admin.post("/config/apply", headers=web, json={"document": apps})
    assert applied.status_code == 200, applied.text
    node.wait_served(applied.json()["revision"]["number"])
    assert node.call().status_code == 401  # payments' API: a subscription is required

    # a team cannot grant itself another team's API by writing its declaration
    granted = {
        "consumers": [
            {**apps["consumers"][0], "subscriptions": [{"api": "payments.orders", "plan": "free"}]}
        ]
    }
    refused = node.admin.post("/config/apply", headers=web, json={"document": granted})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("consumers[0].subscriptions[0].api: ")
    assert "another team's API" in refused.json()["detail"]

    draft = {"api": "payments.beta", "plan": "free", "consumer": "app"}
    answer = node.admin.post("/subscriptions", headers=web, json=draft)
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert "draft" in answer.json()["detail"]
    body = {"api": "payments.orders", "plan": "free", "consumer": "app"}
    asked = node.admin.post("/subscriptions", headers=web, json=body)
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["state"] == "pending"
    assert (request["team"], request["api_team"], request["api"]) == (
        "web",
        "payments",
        "payments.orders",
    )
    path = f"/subscriptions/{request['id']}"

    # each of the two teams sees it; a third sees nothing
    for headers in (web, payments):
        assert node.admin.get(path, headers=headers).json()["id"] == request["id"]
        listed = node.admin.get("/subscriptions", headers=headers).json()["data"]
        assert [item["id"] for item in listed] == [request["id"]]
    assert node.admin.get("/subscriptions", headers=elsewhere).json()["data"] == []
    for answer in (
        node.admin.get(path, headers=elsewhere),
        node.admin.post(f"{path}/approve", headers=elsewhere),
        node.admin.post(f"{path}/reject", headers=elsewhere, json={"reason": "no"}),
        node.admin.delete(path, headers=elsewhere),
    ):
        assert answer.status_code == 404
        assert answer.json()["type"] == "urn:quiver:problem:not-found"
    # the consumer's team does not decide: the API's team does
    for answer in (
        node.admin.post(f"{path}/approve", headers=web),
        node.admin.post(f"{path}/reject", headers=web, json={"reason": "fine by us"}),
    ):
        assert answer.status_code == 403
        assert answer.headers["content-type"] == "application/problem+json"
    assert node.admin.get(path, headers=web).json()["state"] == "pending"
    assert node.call().status_code == 401

    approved = node.admin.post(f"{path}/approve", headers=payments)
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"
    assert approved.json()["decided_by"] == "payments-admin"
    app = node.admin.get("/consumers/app", headers=web).json()
    assert app["subscriptions"] == [{"api": "payments.orders", "plan": "free"}]
    [revision] = node.admin.get("/revisions", headers=web, params={"limit": 1}).json()["data"]
    assert revision["author"] == "payments-admin"  # (a revision of the consumer's team)
    assert revision["message"] == f"approve subscription {request['id']} of app to payments.orders"
    node.wait_served(revision["number"])  # within a second
    served = node.call()
    assert served.status_code == 200, served.text
    assert upstream.requests[-1].header("x-consumer-username") == "web.app"
    assert upstream.requests[-1].header("x-quiver-plan") == "free"

    # the consumer's team may drop it
    revoked = node.admin.delete(path, headers=web)
    assert revoked.status_code == 200, revoked.text
    node.wait_served(revision["number"] + 1)
    assert node.call().status_code == 401
