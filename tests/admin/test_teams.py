"""Teams and tokens, and what a team-scoped token can see of other teams: nothing."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from quiver.store import Store
from tests.admin.conftest import MakeClient
from tests.admin.problems import assert_problem

RED = {
    "targets": [
        {"name": "red-api", "url": "http://127.0.0.1:9001", "plugins": {"cors": {"origins": ["*"]}}}
    ],
    "routes": [{"name": "red-route", "paths": ["/red"], "target": "red-api"}],
    "consumers": [
        {"name": "carol", "credentials": {"key-auth": [{"key": "carol-key-0123456789"}]}}
    ],
}


def test_teams_are_created_listed_and_deleted(admin: httpx.Client) -> None:
    assert admin.get("/teams").json() == {"data": [{"name": "default"}], "next": None}
    created = admin.post("/teams", json={"name": "blue"})
    assert created.status_code == 201 and created.json() == {"name": "blue"}
    assert_problem(admin.post("/teams", json={"name": "blue"}), 409, "already-exists")
    assert_problem(admin.post("/teams", json={"name": "no spaces"}), 422, "invalid-request")
    assert [team["name"] for team in admin.get("/teams").json()["data"]] == ["blue", "default"]

    admin.post("/targets", params={"team": "blue"}, json={"name": "t", "url": "http://127.0.0.1:1"})
    body = assert_problem(admin.delete("/teams/blue"), 409, "conflict")
    assert "targets" in body["detail"]
    admin.delete("/targets/t", params={"team": "blue"})
    assert admin.delete("/teams/blue").status_code == 204
    assert_problem(admin.delete("/teams/blue"), 404, "team-not-found")
    assert_problem(admin.delete("/teams/default"), 409, "conflict")
    assert_problem(admin.get("/targets", params={"team": "blue"}), 404, "team-not-found")


def test_tokens_are_shown_once_and_never_listed_with_their_hash(
    admin: httpx.Client, anonymous: httpx.Client, store: Store
) -> None:
    admin.post("/teams", json={"name": "blue"})
    created = admin.post("/tokens", json={"name": "ci", "role": "editor", "team": "blue"})
    assert created.status_code == 201, created.text
    body = created.json()
    token = body.pop("token")
    assert token.startswith("qv_") and len(token) == 46
    assert body["name"] == "ci" and body["role"] == "editor" and body["team"] == "blue"
    assert created.headers["cache-control"] == "no-store"

    listing = admin.get("/tokens")
    names = {item["name"]: item for item in listing.json()["data"]}
    assert set(names) == {"root", "ci"}
    assert set(names["ci"]) == {"name", "role", "team", "created_at"}
    hashed = hashlib.sha256(token.encode()).hexdigest()
    assert token not in listing.text and hashed not in listing.text

    as_ci = {"Authorization": f"Bearer {token}"}
    assert anonymous.get("/targets", headers=as_ci).status_code == 200
    assert_problem(
        admin.post("/tokens", json={"name": "ci", "role": "viewer"}), 409, "already-exists"
    )
    body = assert_problem(
        admin.post("/tokens", json={"name": "x", "role": "viewer", "team": "nope"}),
        422,
        "invalid-request",
    )
    assert body["errors"][0]["pointer"] == "/team"
    assert_problem(
        admin.post("/tokens", json={"name": "x", "role": "owner"}), 422, "invalid-request"
    )

    assert admin.delete("/tokens/ci").status_code == 204
    assert_problem(anonymous.get("/targets", headers=as_ci), 401, "unauthorized")
    assert_problem(admin.delete("/tokens/ci"), 404, "not-found")


@pytest.fixture
def blue(make_client: MakeClient, admin: httpx.Client) -> httpx.Client:
    """An admin token of team blue, with team red full of entities beside it."""
    for name in ("blue", "red"):
        assert admin.post("/teams", json={"name": name}).status_code == 201
    assert (
        admin.post("/config/apply", params={"team": "red"}, json={"document": RED}).status_code
        == 200
    )
    admin.put("/plugins/cors", json={"origins": ["*"]})  # a global plugin of the default team
    return make_client("admin", team="blue")


def test_a_team_token_sees_nothing_of_other_teams(blue: httpx.Client, admin: httpx.Client) -> None:
    credential = admin.get("/consumers/carol/credentials", params={"team": "red"}).json()["data"][
        0
    ]["id"]
    red_revision = admin.get("/revisions", params={"team": "red"}).json()["data"][0]["number"]
    reads = [
        "/targets", "/targets/red-api", "/targets/red-api/nodes", "/routes", "/routes/red-route",
        "/consumers", "/consumers/carol", "/consumers/carol/credentials",
        f"/consumers/carol/credentials/{credential}", "/plugins", "/plugins/cors", "/config",
        "/revisions", f"/revisions/{red_revision}",
    ]  # fmt: skip
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/targets", {"name": "x", "url": "http://127.0.0.1:1"}),
        ("PUT", "/targets/red-api", {"url": "http://127.0.0.1:1"}),
        ("PATCH", "/targets/red-api", {"url": "http://127.0.0.1:1"}),
        ("DELETE", "/targets/red-api", None),
        ("PUT", "/targets/red-api/nodes", {"nodes": [{"url": "http://127.0.0.1:1"}]}),
        ("DELETE", "/routes/red-route", None),
        ("PUT", "/routes/red-route", {"paths": ["/"], "target": "red-api"}),
        ("DELETE", "/consumers/carol", None),
        ("POST", "/consumers/carol/credentials", {"plugin": "key-auth", "key": "k" * 20}),
        ("DELETE", f"/consumers/carol/credentials/{credential}", None),
        ("PUT", "/plugins/cors", {"origins": ["*"]}),
        ("DELETE", "/plugins/cors", None),
        ("POST", "/config/apply", {"document": {}}),
        ("POST", "/config/diff", {"document": {}}),
        ("POST", f"/revisions/{red_revision}/rollback", None),
    ]
    for team in ("red", "default"):
        for path in reads:
            other = blue.get(path, params={"team": team})
            missing = blue.get(path, params={"team": "no-such-team"})
            assert_problem(other, 404, "team-not-found")
            assert_problem(missing, 404, "team-not-found")
            assert other.json()["detail"].replace(team, "T") == missing.json()["detail"].replace(
                "no-such-team", "T"
            )
        for method, path, body in writes:
            response = blue.request(method, path, params={"team": team}, json=body)
            assert_problem(response, 404, "team-not-found")
    # in its own team, another team's entities are simply not there
    for path in reads[1:3] + reads[4:5] + reads[6:9] + reads[10:11]:
        assert_problem(blue.get(path), 404, "not-found")
    assert_problem(blue.get(f"/revisions/{red_revision}"), 404, "not-found")
    assert_problem(blue.post(f"/revisions/{red_revision}/rollback"), 404, "not-found")
    for path in ("/targets", "/routes", "/consumers", "/plugins", "/revisions"):
        assert blue.get(path).json() == {"data": [], "next": None}
    assert blue.get("/config").json() == {"revision": 0, "team": "blue", "document": {}}
    # and nothing it tried changed them
    assert admin.get("/config", params={"team": "red"}).json()["revision"] == red_revision


def test_a_team_token_works_in_its_own_team(blue: httpx.Client, admin: httpx.Client) -> None:
    same_name = {"name": "red-api", "url": "http://127.0.0.1:9009"}
    assert blue.post("/targets", json=same_name).status_code == 201
    assert blue.get("/targets/red-api", params={"team": "blue"}).json() == same_name
    assert (
        admin.get("/targets/red-api", params={"team": "red"}).json()["url"]
        == "http://127.0.0.1:9001"
    )
    [revision] = blue.get("/revisions").json()["data"]
    assert revision["team"] == "blue"
    assert_problem(admin.get(f"/revisions/{revision['number']}"), 404, "not-found")
    assert admin.get(f"/revisions/{revision['number']}", params={"team": "blue"}).status_code == 200
