"""A team's members through the admin API: who lists, who manages, who grants the
owner role, the last owner kept, and other teams told nothing."""

from __future__ import annotations

import httpx
import pytest

from quiver.accounts.memberships import assign_role
from quiver.accounts.users import create_user
from quiver.store import Store
from quiver.store.teams import create_team
from tests.admin.conftest import MakeClient
from tests.admin.problems import assert_problem

PASSWORD = "a long enough passphrase"


@pytest.fixture
def teams(store: Store) -> Store:
    """Team ``blue`` (olive the owner, dev a developer), team ``red`` (rose the owner),
    and sam, who has an account and no team."""
    create_team(store, "blue")
    create_team(store, "red")
    for name, team, role in (("olive", "blue", "owner"), ("dev", "blue", "developer")):
        create_user(store, f"{name}@example.com", PASSWORD, name=name.title())
        assign_role(store, team, f"{name}@example.com", role, by="owner")  # type: ignore[arg-type]
    create_user(store, "rose@example.com", PASSWORD)
    assign_role(store, "red", "rose@example.com", "owner", by="owner")
    create_user(store, "sam@example.com", PASSWORD, name="Sam")
    return store


def _roles(client: httpx.Client, team: str) -> dict[str, str]:
    listed = client.get(f"/teams/{team}/members")
    assert listed.status_code == 200, listed.text
    return {member["email"]: member["role"] for member in listed.json()["data"]}


def test_an_operator_token_adds_changes_and_removes_members(
    admin: httpx.Client, teams: Store
) -> None:
    listed = admin.get("/teams/blue/members")
    assert listed.json() == {
        "data": [
            {"email": "dev@example.com", "name": "Dev", "role": "developer"},
            {"email": "olive@example.com", "name": "Olive", "role": "owner"},
        ],
        "next": None,
    }
    added = admin.put("/teams/blue/members/Sam@Example.com", json={"role": "viewer"})
    assert added.status_code == 201, added.text
    assert added.json() == {"email": "sam@example.com", "name": "Sam", "role": "viewer"}
    assert added.headers["location"] == "/teams/blue/members/sam@example.com"
    changed = admin.put("/teams/blue/members/sam@example.com", json={"role": "owner"})
    assert changed.status_code == 200 and changed.json()["role"] == "owner"
    assert admin.put("/teams/blue/members/olive@example.com", json={"role": "admin"}).is_success
    assert_problem(admin.delete("/teams/blue/members/sam@example.com"), 409, "conflict")
    assert _roles(admin, "blue") == {
        "dev@example.com": "developer",
        "olive@example.com": "admin",
        "sam@example.com": "owner",
    }
    assert admin.put("/teams/blue/members/olive@example.com", json={"role": "owner"}).is_success
    assert admin.delete("/teams/blue/members/sam@example.com").status_code == 204
    assert_problem(admin.delete("/teams/blue/members/sam@example.com"), 404, "not-found")
    assert "sam@example.com" not in _roles(admin, "blue")


def test_the_last_owner_is_neither_demoted_nor_removed(admin: httpx.Client, teams: Store) -> None:
    body = assert_problem(
        admin.put("/teams/blue/members/olive@example.com", json={"role": "admin"}),
        409,
        "conflict",
    )
    assert "at least one owner" in body["detail"]
    assert_problem(admin.delete("/teams/blue/members/olive@example.com"), 409, "conflict")
    assert _roles(admin, "blue")["olive@example.com"] == "owner"


def test_an_unknown_email_or_team_is_not_found(admin: httpx.Client, teams: Store) -> None:
    body = assert_problem(
        admin.put("/teams/blue/members/nobody@example.com", json={"role": "viewer"}),
        404,
        "not-found",
    )
    assert "nobody@example.com" in body["detail"]
    assert_problem(admin.delete("/teams/blue/members/nobody@example.com"), 404, "not-found")
    assert_problem(admin.get("/teams/green/members"), 404, "team-not-found")
    assert_problem(
        admin.put("/teams/green/members/sam@example.com", json={"role": "viewer"}),
        404,
        "team-not-found",
    )


def test_a_role_must_be_one_of_the_four(admin: httpx.Client, teams: Store) -> None:
    path = "/teams/blue/members/sam@example.com"
    assert_problem(admin.put(path, json={"role": "superuser"}), 422, "invalid-request")
    assert_problem(admin.put(path, json={"role": "viewer", "x": 1}), 422, "invalid-request")
    assert_problem(admin.put(path, json={}), 422, "invalid-request")
    assert "sam@example.com" not in _roles(admin, "blue")


def test_a_team_admin_token_manages_the_members_below_owner(
    make_client: MakeClient, admin: httpx.Client, teams: Store
) -> None:
    blue = make_client("admin", "blue")
    assert blue.put("/teams/blue/members/sam@example.com", json={"role": "admin"}).is_success
    assert blue.put("/teams/blue/members/dev@example.com", json={"role": "viewer"}).is_success
    for path, role in (
        ("/teams/blue/members/sam@example.com", "owner"),  # grant the owner role
        ("/teams/blue/members/olive@example.com", "admin"),  # demote an owner
    ):
        body = assert_problem(blue.put(path, json={"role": role}), 403, "forbidden")
        assert "only an owner" in body["detail"]
    assert_problem(blue.delete("/teams/blue/members/olive@example.com"), 403, "forbidden")
    assert blue.delete("/teams/blue/members/dev@example.com").status_code == 204
    assert _roles(admin, "blue") == {"olive@example.com": "owner", "sam@example.com": "admin"}


@pytest.mark.parametrize(
    ("role", "team"), [("editor", "blue"), ("viewer", "blue"), ("viewer", None)]
)
def test_tokens_below_admin_list_members_and_change_nothing(
    make_client: MakeClient, teams: Store, role: str, team: str | None
) -> None:
    client = make_client(role, team)
    assert set(_roles(client, "blue")) == {"dev@example.com", "olive@example.com"}
    put = client.put("/teams/blue/members/sam@example.com", json={"role": "viewer"})
    assert_problem(put, 403, "forbidden")
    assert_problem(client.delete("/teams/blue/members/dev@example.com"), 403, "forbidden")
    assert "sam@example.com" not in _roles(client, "blue")


def test_a_team_token_is_told_another_team_does_not_exist(
    make_client: MakeClient, teams: Store
) -> None:
    red = make_client("admin", "red")
    for answer in (
        red.get("/teams/blue/members"),
        red.put("/teams/blue/members/sam@example.com", json={"role": "viewer"}),
        red.delete("/teams/blue/members/dev@example.com"),
    ):
        body = assert_problem(answer, 404, "team-not-found")
        assert body["detail"] == "there is no team 'blue'"
    missing = assert_problem(red.get("/teams/green/members"), 404, "team-not-found")
    assert missing["detail"] == "there is no team 'green'"
    assert set(_roles(red, "red")) == {"rose@example.com"}


def test_members_paginate_by_email(
    admin: httpx.Client, anonymous: httpx.Client, store: Store
) -> None:
    create_team(store, "big")
    for number in range(5):
        create_user(store, f"m{number}@example.com", PASSWORD)
        role = "owner" if number == 0 else "viewer"
        assert admin.put(f"/teams/big/members/m{number}@example.com", json={"role": role})
    first = admin.get("/teams/big/members", params={"limit": 2}).json()
    assert [member["email"] for member in first["data"]] == ["m0@example.com", "m1@example.com"]
    rest = admin.get("/teams/big/members", params={"limit": 10, "cursor": first["next"]}).json()
    assert [member["email"] for member in rest["data"]] == [
        "m2@example.com",
        "m3@example.com",
        "m4@example.com",
    ]
    assert rest["next"] is None
    assert_problem(anonymous.get("/teams/big/members"), 401, "unauthorized")


def test_the_members_endpoints_are_documented(anonymous: httpx.Client) -> None:
    paths = anonymous.get("/openapi.json").json()["paths"]
    schema = "#/components/schemas/{}".format
    listed = paths["/teams/{name}/members"]["get"]["responses"]["200"]
    assert listed["content"]["application/json"]["schema"] == {"$ref": schema("MemberPage")}
    put = paths["/teams/{name}/members/{email}"]["put"]
    body = put["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": schema("MemberRole")}
    for status in ("200", "201"):
        answer = put["responses"][status]["content"]["application/json"]["schema"]
        assert answer == {"$ref": schema("MemberDoc")}, status
    removed = paths["/teams/{name}/members/{email}"]["delete"]["responses"]
    assert "204" in removed and "without an owner" in removed["409"]["description"]
