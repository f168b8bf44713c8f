"""The console's subscription requests over HTTP: who sees which, who decides, CSRF."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from quiver.accounts.users import create_user
from quiver.store import Store
from quiver.store.tokens import create_token
from tests.web.forms import PASSWORD, csrf_of, submit
from tests.web.test_console_helpers import member, operator_client, sign_in, two_teams


@pytest.fixture
def api(base_url: str, store: Store) -> Iterator[httpx.Client]:
    with operator_client(base_url, store) as client:
        yield client


def _state(api: httpx.Client, number: int, team: str) -> str:
    found = api.get(f"/subscriptions/{number}?team={team}")
    assert found.status_code == 200, found.text
    state: str = found.json()["state"]
    return state


def test_a_team_admin_approves_a_request_for_their_api(
    client: httpx.Client, api: httpx.Client, base_url: str, store: Store
) -> None:
    two_teams(api, store)
    member(store, "pat@example.com", "payments", "admin")
    sign_in(client, "pat@example.com")
    page = client.get("/console/subscriptions")
    assert page.status_code == 200
    assert "shop-app" in page.text and "payments.orders" in page.text
    assert 'aria-label="Approve request 1"' in page.text
    assert '<label for="reason-1">Reason</label>' in page.text
    approved = client.post("/console/subscriptions/1/approve", data={"csrf": csrf_of(page)})
    assert approved.status_code == 303
    assert approved.headers["location"] == "/console/subscriptions?done=approved"
    assert _state(api, 1, "payments") == "approved"
    shop = api.get("/config?team=shop").json()["document"]
    assert shop["consumers"][0]["subscriptions"] == [{"api": "payments.orders", "plan": "free"}]
    after = client.get(approved.headers["location"])
    assert "Approved: the consumer" in after.text
    assert re.search(r"badge-approved", after.text)
    assert "pat@example.com" in after.text, "the decision names who made it"
    again = client.post("/console/subscriptions/1/approve", data={"csrf": csrf_of(page)})
    assert again.status_code == 409 and "request-id" in again.text


def test_a_rejection_needs_a_reason_shown_next_to_its_field(
    client: httpx.Client, api: httpx.Client, base_url: str, store: Store
) -> None:
    two_teams(api, store)
    member(store, "pat@example.com", "payments", "owner")
    sign_in(client, "pat@example.com")
    page = client.get("/console/subscriptions")
    refused = client.post("/console/subscriptions/2/reject", data={"csrf": csrf_of(page)})
    assert refused.status_code == 400
    assert 'id="reason-2-error"' in refused.text
    assert 'aria-describedby="reason-2-error"' in refused.text
    assert "Give a reason" in refused.text
    assert _state(api, 2, "payments") == "pending"
    rejected = client.post(
        "/console/subscriptions/2/reject",
        data={"csrf": csrf_of(page), "reason": "internal use only"},
    )
    assert rejected.status_code == 303
    assert _state(api, 2, "payments") == "rejected"
    assert "internal use only" in client.get("/console/subscriptions").text


def test_every_decision_needs_the_session_csrf_token_and_this_origin(
    client: httpx.Client, api: httpx.Client, base_url: str, store: Store
) -> None:
    two_teams(api, store)
    member(store, "pat@example.com", "payments", "admin")
    sign_in(client, "pat@example.com")
    page = client.get("/console/subscriptions")
    for action, extra in (("approve", {}), ("reject", {"reason": "no"})):
        path = f"/console/subscriptions/1/{action}"
        forged = client.post(path, data={"csrf": "forged", **extra})
        assert forged.status_code == 403 and "This form was not accepted" in forged.text
        elsewhere = client.post(
            path, data={"csrf": csrf_of(page), **extra}, headers={"Origin": "http://evil.test"}
        )
        assert elsewhere.status_code == 403
    assert _state(api, 1, "payments") == "pending"


def test_a_viewer_sees_requests_without_buttons_and_may_not_decide(
    client: httpx.Client, api: httpx.Client, base_url: str, store: Store
) -> None:
    two_teams(api, store)
    member(store, "vic@example.com", "payments", "viewer")
    sign_in(client, "vic@example.com")
    page = client.get("/console/subscriptions")
    assert page.status_code == 200 and "shop-app" in page.text
    assert "Approve request" not in page.text and "reason-1" not in page.text
    for action in ("approve", "reject"):
        refused = client.post(
            f"/console/subscriptions/1/{action}", data={"csrf": csrf_of(page), "reason": "no"}
        )
        assert refused.status_code == 403
        assert "You do not have access to this page" in refused.text
    assert _state(api, 1, "payments") == "pending"


def test_the_consumers_team_sees_its_request_but_does_not_decide_it(
    client: httpx.Client, api: httpx.Client, base_url: str, store: Store
) -> None:
    two_teams(api, store)
    member(store, "sam@example.com", "shop", "owner")
    sign_in(client, "sam@example.com")
    page = client.get("/console/subscriptions")
    assert "shop-app" in page.text and "Approve request 1" not in page.text
    assert "payments-app" not in page.text, "another team's request is never shown"
    refused = client.post("/console/subscriptions/1/approve", data={"csrf": csrf_of(page)})
    assert refused.status_code == 404
    hidden = client.post("/console/subscriptions/2/approve", data={"csrf": csrf_of(page)})
    assert hidden.status_code == 404 and "payments-app" not in hidden.text


def test_an_admin_token_and_a_platform_admin_decide_in_every_team(
    client: httpx.Client, api: httpx.Client, base_url: str, store: Store
) -> None:
    two_teams(api, store)
    _, token = create_token(store, "ops", "admin")
    submit(client, "/console/signin", "/console/signin/token", token=token)
    page = client.get("/console/subscriptions")
    assert "Approve request 1" in page.text and "Approve request 2" in page.text
    assert client.post("/console/subscriptions/1/approve", data={"csrf": csrf_of(page)}).is_redirect
    assert _state(api, 1, "shop") == "approved"

    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    with httpx.Client(base_url=base_url, headers={"Origin": base_url}) as other:
        sign_in(other, "root@example.com")
        shown = other.get("/console/subscriptions")
        done = other.post("/console/subscriptions/2/approve", data={"csrf": csrf_of(shown)})
        assert done.status_code == 303
    assert _state(api, 2, "payments") == "approved"


def test_no_request_shows_the_empty_states(client: httpx.Client, store: Store) -> None:
    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    sign_in(client, "root@example.com")
    page = client.get("/console/subscriptions")
    assert "Nothing to decide" in page.text and "No decisions yet" in page.text
    assert 'href="/console/subscriptions" aria-current="page"' in page.text
