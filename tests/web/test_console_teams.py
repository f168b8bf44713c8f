"""The console's teams and members over HTTP: who sees which team, who manages its
members (owners and operators), the last owner kept, unknown emails, other teams
told nothing, and every form's CSRF check."""

from __future__ import annotations

import re

import httpx
import pytest

from quiver.accounts.memberships import TeamRole, team_members
from quiver.accounts.users import create_user
from quiver.store import Store
from quiver.store.teams import create_team
from quiver.store.tokens import create_token
from tests.web.forms import PASSWORD, csrf_of, submit
from tests.web.test_console_helpers import member, sign_in

_MANAGING = ("Add member", "Change role of", "Remove ")


@pytest.fixture
def teams(store: Store) -> Store:
    """Team ``payments``: olive the owner, ada an admin, dev a developer, vic a viewer;
    team ``shop``: sam its owner; and nina, who has an account and no team."""
    create_team(store, "payments")
    create_team(store, "shop")
    people: tuple[tuple[str, str, TeamRole], ...] = (
        ("olive", "payments", "owner"),
        ("ada", "payments", "admin"),
        ("dev", "payments", "developer"),
        ("vic", "payments", "viewer"),
        ("sam", "shop", "owner"),
    )
    for name, team, role in people:
        member(store, f"{name}@example.com", team, role)
    create_user(store, "nina@example.com", PASSWORD, name="Nina")
    return store


def _roles(store: Store, team: str) -> dict[str, str]:
    return {found.email: found.role for found in team_members(store, team)}


def test_an_owner_adds_changes_and_removes_members(client: httpx.Client, teams: Store) -> None:
    sign_in(client, "olive@example.com")
    page = client.get("/console/teams/payments")
    assert page.status_code == 200
    assert '<label for="member-email">Email</label>' in page.text
    assert '<label for="member-role">Role</label>' in page.text
    assert 'aria-label="Change role of dev@example.com"' in page.text
    assert 'aria-label="Remove vic@example.com"' in page.text
    assert re.search(r'Role<span class="visually-hidden"> of dev@example.com</span>', page.text)

    added = submit(
        client,
        "/console/teams/payments",
        "/console/teams/payments/members",
        email=" Nina@Example.com ",
        role="viewer",
    )
    assert added.status_code == 303
    assert added.headers["location"] == (
        "/console/teams/payments?done=added&email=nina%40example.com"
    )
    assert "Added nina@example.com as viewer." in client.get(added.headers["location"]).text
    assert _roles(teams, "payments")["nina@example.com"] == "viewer"

    changed = submit(
        client,
        "/console/teams/payments",
        "/console/teams/payments/members/role",
        email="nina@example.com",
        role="owner",
    )
    assert changed.status_code == 303
    assert "nina@example.com is now owner." in client.get(changed.headers["location"]).text
    assert _roles(teams, "payments")["nina@example.com"] == "owner"

    removed = submit(
        client,
        "/console/teams/payments",
        "/console/teams/payments/members/remove",
        email="dev@example.com",
    )
    assert removed.status_code == 303
    assert "Removed dev@example.com from the team." in client.get(removed.headers["location"]).text
    assert "dev@example.com" not in _roles(teams, "payments")


def test_a_message_says_only_what_is_true(client: httpx.Client, teams: Store) -> None:
    sign_in(client, "olive@example.com")
    crafted = client.get("/console/teams/payments?done=added&email=evil@example.com")
    assert crafted.status_code == 200 and "Added evil" not in crafted.text
    claimed = client.get("/console/teams/payments?done=removed&email=ada@example.com")
    assert "Removed ada" not in claimed.text
    assert (
        "ada@example.com is now admin."
        in client.get("/console/teams/payments?done=changed&email=ada@example.com").text
    )


def test_an_unknown_email_is_told_next_to_the_email_field(
    client: httpx.Client, teams: Store
) -> None:
    sign_in(client, "olive@example.com")
    page = "/console/teams/payments"
    refused = submit(client, page, f"{page}/members", email="nobody@example.com", role="developer")
    assert refused.status_code == 400
    assert 'id="member-email-error"' in refused.text
    assert 'aria-describedby="member-email-hint member-email-error"' in refused.text
    assert "There is no account with this email" in refused.text
    assert "sign up at the developer portal" in refused.text
    assert 'value="nobody@example.com"' in refused.text, "what was typed is kept"
    empty = submit(client, page, f"{page}/members", email="", role="developer")
    assert empty.status_code == 400 and "Enter the email" in empty.text
    again = submit(client, page, f"{page}/members", email="dev@example.com", role="viewer")
    assert again.status_code == 400 and "is a member already" in again.text
    assert _roles(teams, "payments")["dev@example.com"] == "developer"
    odd = submit(client, page, f"{page}/members", email="nina@example.com", role="root")
    assert odd.status_code == 400 and "nina@example.com" not in _roles(teams, "payments")
    stranger = submit(client, page, f"{page}/members/role", email="nina@example.com", role="admin")
    assert stranger.status_code == 404, "a row's form never adds anybody"
    assert "nina@example.com" not in _roles(teams, "payments")


def test_the_last_owner_is_neither_demoted_nor_removed(client: httpx.Client, teams: Store) -> None:
    sign_in(client, "olive@example.com")
    page = "/console/teams/payments"
    for action, extra in (("role", {"role": "admin"}), ("remove", {})):
        refused = submit(
            client, page, f"{page}/members/{action}", email="olive@example.com", **extra
        )
        assert refused.status_code == 400, action
        assert "must keep at least one owner" in refused.text
        assert re.search(r'id="member-\d+-error"', refused.text)
        assert 'aria-invalid="true"' in refused.text
    assert _roles(teams, "payments")["olive@example.com"] == "owner"

    promoted = submit(client, page, f"{page}/members/role", email="ada@example.com", role="owner")
    assert promoted.status_code == 303
    left = submit(client, page, f"{page}/members/remove", email="olive@example.com")
    assert left.status_code == 303
    assert left.headers["location"] == "/console/teams?done=left&team=payments"
    assert (
        "You are no longer a member of team payments." in client.get(left.headers["location"]).text
    )
    assert client.get(page).status_code == 404
    assert _roles(teams, "payments")["ada@example.com"] == "owner"


@pytest.mark.parametrize("email", ["ada@example.com", "dev@example.com", "vic@example.com"])
def test_members_below_owner_see_the_list_without_forms_and_may_notsubmit(
    client: httpx.Client, teams: Store, email: str
) -> None:
    sign_in(client, email)
    page = client.get("/console/teams/payments")
    assert page.status_code == 200
    assert "olive@example.com" in page.text and "badge-owner" in page.text
    for text in _MANAGING:
        assert text not in page.text, text
    csrf = csrf_of(page)
    for action, fields in (
        ("members", {"email": "nina@example.com", "role": "viewer"}),
        ("members/role", {"email": "dev@example.com", "role": "owner"}),
        ("members/remove", {"email": "vic@example.com"}),
    ):
        refused = client.post(f"/console/teams/payments/{action}", data={"csrf": csrf, **fields})
        assert refused.status_code == 403, action
        assert "You do not have access to this page" in refused.text
    assert _roles(teams, "payments") == {
        "ada@example.com": "admin",
        "dev@example.com": "developer",
        "olive@example.com": "owner",
        "vic@example.com": "viewer",
    }


def test_another_team_is_not_found_exactly_like_a_missing_one(
    client: httpx.Client, teams: Store
) -> None:
    sign_in(client, "sam@example.com")
    hidden = client.get("/console/teams/payments")
    missing = client.get("/console/teams/nowhere")
    assert hidden.status_code == missing.status_code == 404
    assert "olive@example.com" not in hidden.text
    assert (
        hidden.text.replace("payments", "X").split("request-id")[0]
        == missing.text.replace("nowhere", "X").split("request-id")[0]
    )
    csrf = csrf_of(client.get("/console/teams/shop"))
    for action, fields in (
        ("members", {"email": "nina@example.com", "role": "owner"}),
        ("members/role", {"email": "olive@example.com", "role": "viewer"}),
        ("members/remove", {"email": "olive@example.com"}),
        ("delete", {}),
    ):
        refused = client.post(f"/console/teams/payments/{action}", data={"csrf": csrf, **fields})
        assert refused.status_code == 404, action
    listing = client.get("/console/teams")
    assert "/console/teams/shop" in listing.text and "payments" not in listing.text
    assert _roles(teams, "payments")["olive@example.com"] == "owner"


def test_every_form_needs_the_session_csrf_token_and_this_origin(
    client: httpx.Client, teams: Store
) -> None:
    create_user(teams, "root@example.com", PASSWORD, is_admin=True)
    sign_in(client, "root@example.com")
    csrf = csrf_of(client.get("/console/teams/payments"))
    for action, fields in (
        ("/console/teams", {"name": "billing"}),
        ("/console/teams/shop/delete", {}),
        ("/console/teams/payments/members", {"email": "nina@example.com", "role": "viewer"}),
        ("/console/teams/payments/members/role", {"email": "dev@example.com", "role": "viewer"}),
        ("/console/teams/payments/members/remove", {"email": "dev@example.com"}),
    ):
        forged = client.post(action, data={"csrf": "forged", **fields})
        assert forged.status_code == 403 and "This form was not accepted" in forged.text, action
        elsewhere = client.post(
            action, data={"csrf": csrf, **fields}, headers={"Origin": "http://evil.test"}
        )
        assert elsewhere.status_code == 403, action
    assert "nina@example.com" not in _roles(teams, "payments")
    assert _roles(teams, "payments")["dev@example.com"] == "developer"
    assert "billing" not in client.get("/console/teams").text
    assert client.get("/console/teams/shop").status_code == 200


def test_an_operator_creates_teams_and_deletes_empty_ones(
    client: httpx.Client, teams: Store
) -> None:
    create_user(teams, "root@example.com", PASSWORD, is_admin=True)
    sign_in(client, "root@example.com")
    listing = client.get("/console/teams")
    assert '<label for="team-name">Team name</label>' in listing.text
    assert 'aria-label="Delete team shop"' in listing.text
    assert 'aria-label="Delete team default"' not in listing.text
    row = re.search(
        r"/console/teams/payments\">payments</a></td>\s*<td>(.*?)</td>\s*<td>(\d+)", listing.text
    )
    assert row and "owner" in row.group(1) and row.group(2) == "4"

    for name, error in (
        ("", "Enter a team name."),
        ("Not Valid", "Use lowercase"),
        ("shop", "exists already"),
    ):
        refused = submit(client, "/console/teams", "/console/teams", name=name)
        assert refused.status_code == 400, name
        assert 'id="team-name-error"' in refused.text and error in refused.text

    created = submit(client, "/console/teams", "/console/teams", name="billing")
    assert created.status_code == 303
    assert "Created team billing." in client.get(created.headers["location"]).text
    team_page = client.get("/console/teams/billing")
    assert "No members" in team_page.text and "Add member" in team_page.text
    first = submit(
        client,
        "/console/teams/billing",
        "/console/teams/billing/members",
        email="nina@example.com",
        role="owner",
    )
    assert first.status_code == 303 and _roles(teams, "billing") == {"nina@example.com": "owner"}

    deleted = submit(client, "/console/teams", "/console/teams/billing/delete")
    assert deleted.status_code == 303
    assert "Deleted team billing" in client.get(deleted.headers["location"]).text
    assert client.get("/console/teams/billing").status_code == 404


def test_a_team_that_holds_entities_is_not_deleted(client: httpx.Client, teams: Store) -> None:
    teams.apply(
        {"targets": [{"name": "storefront", "url": "http://127.0.0.1:9"}]},
        author="test",
        team="shop",
    )
    create_user(teams, "root@example.com", PASSWORD, is_admin=True)
    sign_in(client, "root@example.com")
    refused = submit(client, "/console/teams", "/console/teams/shop/delete")
    assert refused.status_code == 400
    assert 'id="delete-shop-error"' in refused.text and "still holds targets" in refused.text
    assert client.get("/console/teams/shop").status_code == 200


def test_only_an_operator_creates_or_deletes_teams(client: httpx.Client, teams: Store) -> None:
    sign_in(client, "olive@example.com")
    listing = client.get("/console/teams")
    assert "Create team" not in listing.text and "Delete team" not in listing.text
    assert "/console/teams/payments" in listing.text and "shop" not in listing.text
    csrf = csrf_of(listing)
    assert client.post("/console/teams", data={"csrf": csrf, "name": "x"}).status_code == 403
    refused = client.post("/console/teams/payments/delete", data={"csrf": csrf})
    assert refused.status_code == 403
    assert client.get("/console/teams/payments").status_code == 200


def test_token_sessions_act_with_the_tokens_role(client: httpx.Client, teams: Store) -> None:
    _, team_admin = create_token(teams, "pay-ops", "admin", "payments")
    signed = submit(client, "/console/signin", "/console/signin/token", token=team_admin)
    assert signed.status_code == 303
    page = client.get("/console/teams/payments")
    assert page.status_code == 200 and "olive@example.com" in page.text
    assert "Add member" not in page.text, "a team's admin token is below owner"
    refused = client.post(
        "/console/teams/payments/members",
        data={"csrf": csrf_of(page), "email": "nina@example.com", "role": "viewer"},
    )
    assert refused.status_code == 403
    assert client.get("/console/teams/shop").status_code == 404

    _, root = create_token(teams, "root", "admin")
    with httpx.Client(base_url=str(client.base_url), headers=dict(client.headers)) as other:
        submit(other, "/console/signin", "/console/signin/token", token=root)
        listing = other.get("/console/teams")
        assert "Create team" in listing.text and "/console/teams/shop" in listing.text
        added = submit(
            other,
            "/console/teams/shop",
            "/console/teams/shop/members",
            email="nina@example.com",
            role="admin",
        )
        assert added.status_code == 303
    assert _roles(teams, "shop") == {"nina@example.com": "admin", "sam@example.com": "owner"}


def test_members_and_teams_paginate(client: httpx.Client, store: Store) -> None:
    create_team(store, "big")
    for number in range(23):
        member(store, f"m{number:02d}@example.com", "big", "owner" if number == 0 else "viewer")
    sign_in(client, "m00@example.com")
    first = client.get("/console/teams/big")
    assert "Page 1 of 2" in first.text and "23 in all" in first.text
    assert "m19@example.com" in first.text and "m20@example.com" not in first.text
    second = client.get("/console/teams/big?page=2")
    assert "m22@example.com" in second.text and "m01@example.com" not in second.text
    assert 'href="/console/teams/big?page=1"' in second.text
    listing = client.get("/console/teams")
    assert re.search(
        r"/console/teams/big\">big</a></td>\s*<td>.*?</td>\s*<td>23</td>", listing.text
    )
