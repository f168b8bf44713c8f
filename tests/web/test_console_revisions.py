"""The console's revisions over HTTP: the list, a diff, and rolling back (admins only,
asked on a second page, CSRF), each team seeing only its own."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from quiver.store import Store
from tests.web.forms import csrf_of
from tests.web.test_console_helpers import (
    member,
    operator_client,
    shop_document,
    sign_in,
    two_teams,
)


@pytest.fixture
def api(base_url: str, store: Store) -> Iterator[httpx.Client]:
    with operator_client(base_url, store) as client:
        yield client


def _revisions(api: httpx.Client, team: str) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = api.get(f"/revisions?team={team}").json()["data"]
    return listed


def _change_shop(api: httpx.Client) -> int:
    """A second revision of shop: its route gets another path."""
    document = shop_document()
    document["routes"][0]["paths"] = ["/cart", "/basket"]
    applied = api.post("/config/apply?team=shop", json={"document": document})
    assert applied.status_code == 200, applied.text
    number: int = applied.json()["revision"]["number"]
    return number


def test_the_list_and_a_diff_show_who_changed_what(
    client: httpx.Client, api: httpx.Client, store: Store
) -> None:
    two_teams(api, store)
    changed = _change_shop(api)
    member(store, "sam@example.com", "shop", "admin")
    sign_in(client, "sam@example.com")
    listed = client.get("/console/revisions")
    assert listed.status_code == 200
    assert f'href="/console/revisions/{changed}"' in listed.text
    assert "root" in listed.text and "1 changed" in listed.text
    assert "payments" not in listed.text, "another team's revisions are not listed"
    page = client.get(f"/console/revisions/{changed}")
    assert page.status_code == 200
    assert "Changed route cart" in page.text
    assert re.search(r'class="diff-add".*?&#34;/basket&#34;', page.text, re.S)
    assert "Roll back to this revision" in page.text


def test_rolling_back_is_confirmed_on_a_second_page_and_makes_a_revision(
    client: httpx.Client, api: httpx.Client, store: Store
) -> None:
    two_teams(api, store)
    first = int(str(_revisions(api, "shop")[-1]["number"]))
    _change_shop(api)
    member(store, "sam@example.com", "shop", "admin")
    sign_in(client, "sam@example.com")
    confirm = client.get(f"/console/revisions/{first}/rollback")
    assert confirm.status_code == 200
    assert f"Roll back to revision {first}" in confirm.text and "Cancel" in confirm.text
    forged = client.post(f"/console/revisions/{first}/rollback", data={"csrf": "forged"})
    assert forged.status_code == 403
    elsewhere = client.post(
        f"/console/revisions/{first}/rollback",
        data={"csrf": csrf_of(confirm)},
        headers={"Origin": "http://evil.test"},
    )
    assert elsewhere.status_code == 403
    assert api.get("/config?team=shop").json()["document"]["routes"][0]["paths"] == [
        "/cart",
        "/basket",
    ]
    done = client.post(f"/console/revisions/{first}/rollback", data={"csrf": csrf_of(confirm)})
    assert done.status_code == 303
    newest = _revisions(api, "shop")[0]
    assert done.headers["location"] == f"/console/revisions/{newest['number']}?done=1"
    assert newest["author"] == "sam@example.com"
    assert api.get("/config?team=shop").json()["document"]["routes"][0]["paths"] == ["/cart"]
    assert "Rolled back" in client.get(done.headers["location"]).text


def test_a_viewer_may_not_roll_back(client: httpx.Client, api: httpx.Client, store: Store) -> None:
    two_teams(api, store)
    changed = _change_shop(api)
    member(store, "vic@example.com", "shop", "viewer")
    sign_in(client, "vic@example.com")
    page = client.get(f"/console/revisions/{changed}")
    assert page.status_code == 200 and "Roll back to this revision" not in page.text
    assert client.get(f"/console/revisions/{changed}/rollback").status_code == 403
    refused = client.post(f"/console/revisions/{changed}/rollback", data={"csrf": csrf_of(page)})
    assert refused.status_code == 403
    assert _revisions(api, "shop")[0]["number"] == changed


def test_another_teams_revision_is_not_found(
    client: httpx.Client, api: httpx.Client, store: Store
) -> None:
    two_teams(api, store)
    theirs = int(str(_revisions(api, "payments")[0]["number"]))
    member(store, "sam@example.com", "shop", "owner")
    sign_in(client, "sam@example.com")
    page = client.get("/console/revisions")
    for path in (f"/console/revisions/{theirs}", f"/console/revisions/{theirs}/rollback"):
        hidden = client.get(path)
        assert hidden.status_code == 404 and "Orders API" not in hidden.text
    refused = client.post(f"/console/revisions/{theirs}/rollback", data={"csrf": csrf_of(page)})
    assert refused.status_code == 404
    assert client.get("/console/revisions/999999").status_code == 404
