"""Tokens and roles: 401 without a valid token, 403 when the role is too low."""

from __future__ import annotations

import httpx
import pytest

from quiver.store import Store
from quiver.store.tokens import create_token, revoke_token
from tests.admin.conftest import MakeClient
from tests.admin.problems import assert_problem

TARGET = {"name": "orders", "url": "http://127.0.0.1:9001"}


@pytest.mark.parametrize("path", ["/targets", "/config", "/revisions", "/tokens", "/teams"])
def test_a_call_without_a_token_is_401_with_a_bearer_challenge(
    anonymous: httpx.Client, path: str
) -> None:
    response = anonymous.get(path)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_unknown_token_is_401(anonymous: httpx.Client) -> None:
    response = anonymous.get("/targets", headers={"Authorization": "Bearer qv_" + "x" * 43})
    assert_problem(response, 401, "unauthorized")
    response = anonymous.get("/targets", headers={"Authorization": "Basic dTpw"})
    assert_problem(response, 401, "unauthorized")


def test_a_revoked_token_is_401(store: Store, anonymous: httpx.Client) -> None:
    _, token = create_token(store, "temporary", "viewer")
    headers = {"Authorization": f"Bearer {token}"}
    assert anonymous.get("/targets", headers=headers).status_code == 200
    assert revoke_token(store, "temporary")
    assert_problem(anonymous.get("/targets", headers=headers), 401, "unauthorized")


def test_public_endpoints_need_no_token(anonymous: httpx.Client) -> None:
    assert anonymous.get("/health").json() == {"status": "ok"}
    assert anonymous.get("/openapi.json").json()["openapi"] == "3.1.0"
    assert anonymous.get("/docs").status_code == 200
    assert anonymous.get("/docs/static/swagger-ui.css").status_code == 200


def test_every_response_carries_a_request_id(anonymous: httpx.Client, admin: httpx.Client) -> None:
    ids = {
        anonymous.get("/health").headers["x-request-id"],
        anonymous.get("/targets").headers["x-request-id"],
        admin.get("/targets").headers["x-request-id"],
        admin.get("/nothing/here").headers["x-request-id"],
    }
    assert len(ids) == 4 and all(len(value) == 32 for value in ids)


def test_a_viewer_reads_but_cannot_write(make_client: MakeClient, admin: httpx.Client) -> None:
    assert admin.post("/targets", json=TARGET).status_code == 201
    viewer = make_client("viewer")
    assert viewer.get("/targets").json()["data"] == [TARGET]
    assert viewer.get("/targets/orders").status_code == 200
    assert viewer.get("/config").status_code == 200
    assert viewer.get("/revisions").status_code == 200
    for response in (
        viewer.post("/targets", json={**TARGET, "name": "other"}),
        viewer.put("/targets/orders", json=TARGET),
        viewer.patch("/targets/orders", json={"url": "http://127.0.0.1:9002"}),
        viewer.delete("/targets/orders"),
        viewer.put("/plugins/cors", json={}),
        viewer.post("/config/apply", json={"document": {}}),
        viewer.post("/revisions/1/rollback"),
    ):
        body = assert_problem(response, 403, "forbidden")
        assert "viewer" in body["detail"]
    assert admin.get("/targets").json()["data"] == [TARGET]


def test_an_editor_writes_entities_but_manages_no_tokens_or_teams(
    make_client: MakeClient,
) -> None:
    editor = make_client("editor")
    assert editor.post("/targets", json=TARGET).status_code == 201
    assert editor.post("/config/diff", json={"document": {}}).status_code == 200
    for response in (
        editor.get("/tokens"),
        editor.post("/tokens", json={"name": "x", "role": "viewer"}),
        editor.delete("/tokens/x"),
        editor.get("/teams"),
        editor.post("/teams", json={"name": "x"}),
        editor.delete("/teams/x"),
    ):
        assert_problem(response, 403, "forbidden")


def test_a_team_scoped_admin_manages_no_tokens_or_teams(
    make_client: MakeClient, admin: httpx.Client
) -> None:
    assert admin.post("/teams", json={"name": "blue"}).status_code == 201
    blue_admin = make_client("admin", team="blue")
    assert blue_admin.post("/targets", json=TARGET).status_code == 201
    for response in (blue_admin.get("/tokens"), blue_admin.get("/teams")):
        body = assert_problem(response, 403, "forbidden")
        assert "scoped to a team" in body["detail"]


def test_writes_are_attributed_to_the_token_name(make_client: MakeClient) -> None:
    editor = make_client("editor", name="deploy-bot")
    editor.post("/targets", json=TARGET, params={"message": "add orders"})
    editor.delete("/targets/orders")
    revisions = editor.get("/revisions").json()["data"]
    assert [(item["author"], item["message"]) for item in revisions] == [
        ("deploy-bot", "DELETE /targets/orders"),
        ("deploy-bot", "add orders"),
    ]


def test_a_malformed_request_without_a_valid_token_is_401(anonymous: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    for extra in ({}, {"Authorization": "Bearer qv_unknown"}):
        response = anonymous.post("/targets", content=b"{bad", headers={**headers, **extra})
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
        assert_problem(
            anonymous.get("/targets", params={"limit": 0}, headers=extra), 401, "unauthorized"
        )
