"""The portal's catalog, apps and subscriptions, page by page over HTTP: what each
page shows, the CSRF check of every form, the role each change needs, and that a
developer never sees another team's apps or subscriptions."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from quiver.accounts.memberships import set_membership
from quiver.accounts.users import user_by_email
from quiver.store import Store
from quiver.store import subscriptions as requests
from quiver.store.secrets import sha256_hash
from quiver.store.tokens import create_token
from tests.web.forms import PASSWORD, csrf_of

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Orders", "version": "1.2"},
    "tags": [{"name": "orders", "description": "Orders of the shop."}],
    "paths": {
        "/orders/{id}": {
            "parameters": [{"name": "id", "in": "path", "schema": {"type": "integer"}}],
            "get": {
                "tags": ["orders"],
                "summary": "Get an order",
                "parameters": [
                    {"name": "expand", "in": "query", "schema": {"type": "boolean"}},
                ],
            },
        },
        "/orders": {
            "post": {
                "tags": ["orders"],
                "summary": "Place an order",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/New"}}
                    }
                },
            },
        },
    },
    "components": {
        "schemas": {
            "New": {
                "type": "object",
                "required": ["sku"],
                "properties": {
                    "sku": {"type": "string", "description": "What to buy."},
                    "count": {"type": "integer", "format": "int32"},
                },
            }
        }
    },
}


def api(name: str, state: str = "published", **more: Any) -> dict[str, Any]:
    made: dict[str, Any] = {"name": name, "routes": [name], "state": state, **more}
    if state in ("deprecated", "retired"):
        made["deprecation"] = {"date": "2026-12-01T00:00:00Z", "sunset": "2027-06-01T00:00:00Z"}
    return made


def publish(store: Store, team: str, *apis: dict[str, Any]) -> None:
    """``team`` (made when new) declaring ``apis``, each with a route of its name."""
    document = {
        "targets": [{"name": "shop", "url": "http://127.0.0.1:9"}],
        "routes": [
            {"name": item["name"], "paths": [f"/{item['name']}"], "target": "shop"} for item in apis
        ],
        "apis": list(apis),
    }
    store.apply(document, "test", "publish", team=team)


PLANS = [
    {"name": "free", "title": "Free", "rate_limit": {"limit": 3, "window": "1m"}},
    {"name": "gold", "quota": {"limit": 1000, "period": "month"}, "approval": "auto"},
]


@pytest.fixture
def shop(store: Store) -> Store:
    """Team ``payments`` with a published, a deprecated, a draft and a retired API."""
    publish(
        store,
        "payments",
        api(
            "orders",
            title="Orders API",
            description="Orders of the shop.",
            tags=["commerce"],
            version="1.2",
            openapi=OPENAPI,
            plans=PLANS,
        ),
        api("legacy", "deprecated", title="Legacy orders", tags=["old"], plans=PLANS[:1]),
        api("secret", "draft", title="Secret draft"),
        api("gone", "retired", title="Gone for good"),
    )
    return store


def sign_up(client: httpx.Client, email: str) -> str:
    """Sign up (and in) as ``email``: the name of the team made for them."""
    shown = client.get("/portal/signup")
    answer = client.post(
        "/portal/signup",
        data={"csrf": csrf_of(shown), "email": email, "password": PASSWORD},
    )
    assert answer.status_code == 303, answer.text[:500]
    return email.partition("@")[0]


def post(client: httpx.Client, page: str, action: str, **fields: str) -> httpx.Response:
    shown = client.get(page)
    assert shown.status_code == 200, shown.text[:500]
    return client.post(action, data={"csrf": csrf_of(shown), **fields})


def create_app(client: httpx.Client, team: str, name: str) -> str:
    """Create the app: the key its page shows once."""
    made = post(client, f"/portal/apps?team={team}", "/portal/apps", team=team, name=name)
    assert made.status_code == 201, made.text[:800]
    found = re.search(r'id="api-key"[^>]*value="([^"]+)"', made.text)
    assert found, made.text
    return found.group(1)


def consumer(store: Store, team: str, name: str) -> dict[str, Any] | None:
    document = store.current(team)
    return next((c for c in document.get("consumers") or [] if c["name"] == name), None)


@pytest.fixture
def other(base_url: str) -> Any:
    with httpx.Client(base_url=base_url, timeout=30, headers={"Origin": base_url}) as made:
        yield made


def test_the_catalog_lists_published_and_deprecated_apis_of_every_team(
    shop: Store, client: httpx.Client
) -> None:
    sign_up(client, "ada@example.com")
    page = client.get("/portal/apis")
    assert page.status_code == 200
    assert "Orders API" in page.text and "Legacy orders" in page.text
    assert "Deprecated" in page.text
    assert "Secret draft" not in page.text and "Gone for good" not in page.text
    assert 'href="/portal/apis/payments.orders"' in page.text
    assert "portal.css" in page.text


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("q=shop", "Orders API", "Legacy orders"),  # the description
        ("q=LEGACY", "Legacy orders", "Orders API"),  # the title, any case
        ("q=commerce", "Orders API", "Legacy orders"),  # a tag
        ("tag=old", "Legacy orders", "Orders API"),
        ("q=nothing-like-it", "No APIs found", "Orders API"),
    ],
)
def test_search_and_tags_narrow_the_catalog(
    shop: Store, client: httpx.Client, query: str, shown: str, hidden: str
) -> None:
    sign_up(client, "ada@example.com")
    page = client.get(f"/portal/apis?{query}")
    assert page.status_code == 200
    assert shown in page.text and hidden not in page.text


def test_the_catalog_paginates(store: Store, client: httpx.Client) -> None:
    publish(store, "many", *(api(f"api-{n:02}", title=f"Api {n:02}") for n in range(25)))
    sign_up(client, "ada@example.com")
    first = client.get("/portal/apis")
    assert "Api 00" in first.text and "Api 20" not in first.text
    assert "Page 1 of 2" in first.text and "Next page" in first.text
    assert 'href="/portal/apis?q=&amp;tag=&amp;page=2"' in first.text
    searched = client.get("/portal/apis?q=api")
    assert 'href="/portal/apis?q=api&amp;tag=&amp;page=2"' in searched.text
    second = client.get("/portal/apis?page=2")
    assert "Api 20" in second.text and "Api 24" in second.text and "Api 00" not in second.text


def test_an_api_page_shows_plans_deprecation_and_the_reference(
    shop: Store, client: httpx.Client
) -> None:
    sign_up(client, "ada@example.com")
    page = client.get("/portal/apis/payments.orders")
    assert page.status_code == 200
    text = page.text
    assert "Orders API" in text and "version 1.2" in text and "Published" in text
    assert "3 requests per 1m" in text and "1000 per month" in text
    assert "Manual approval" in text and "Automatic" in text
    assert '>GET</span> <span class="mono">/orders/{id}</span>' in text
    assert "Get an order" in text and "Place an order" in text
    assert '<td class="mono">expand</td><td>query</td><td class="mono">boolean</td>' in text
    assert '<td class="mono">sku</td><td class="mono">string</td><td>yes</td>' in text
    assert "What to buy." in text and "integer (int32)" in text
    assert "<script" not in text
    legacy = client.get("/portal/apis/payments.legacy")
    assert "it takes no new subscriptions" in legacy.text
    assert "Request subscription" not in legacy.text
    assert "deprecated since 2026-12-01" in legacy.text and "2027-06-01" in legacy.text
    assert "This API has no OpenAPI document" in legacy.text or "could not be read" in legacy.text


@pytest.mark.parametrize("name", ["payments.secret", "payments.gone", "payments.nope", "x.orders"])
def test_drafts_retired_and_unknown_apis_are_not_found(
    shop: Store, client: httpx.Client, name: str
) -> None:
    sign_up(client, "ada@example.com")
    page = client.get(f"/portal/apis/{name}")
    assert page.status_code == 404
    assert "Page not found" in page.text


def test_an_app_is_a_consumer_whose_key_is_shown_once(store: Store, client: httpx.Client) -> None:
    team = sign_up(client, "ada@example.com")
    before = len(store.revisions(team))
    key = create_app(client, team, "my-shop")
    assert key.startswith("qk_") and len(key) > 40
    made = consumer(store, team, "my-shop")
    assert made is not None
    assert made["credentials"]["key-auth"] == [{"key_hash": sha256_hash(key)}]
    assert len(store.revisions(team)) == before + 1
    for page in ("/portal/apps", "/portal/apps/my-shop", "/portal/subscriptions", "/portal"):
        shown = client.get(page)
        assert shown.status_code == 200, page
        assert key not in shown.text
    assert "my-shop" in client.get("/portal/apps").text
    assert 'href="/portal/apps/my-shop?team=ada"' in client.get("/portal").text


def test_creating_an_app_refuses_bad_and_taken_names_next_to_the_field(
    store: Store, client: httpx.Client
) -> None:
    team = sign_up(client, "ada@example.com")
    bad = post(client, "/portal/apps", "/portal/apps", team=team, name="Not a name!")
    assert bad.status_code == 400
    assert 'aria-invalid="true"' in bad.text and "Use lowercase letters" in bad.text
    create_app(client, team, "my-shop")
    taken = post(client, "/portal/apps", "/portal/apps", team=team, name="my-shop")
    assert taken.status_code == 400 and "has an app called my-shop already" in taken.text


def test_rotating_a_key_shows_a_new_one_once_and_revokes_the_old(
    store: Store, client: httpx.Client
) -> None:
    team = sign_up(client, "ada@example.com")
    old = create_app(client, team, "my-shop")
    page = f"/portal/apps/my-shop?team={team}"
    rotated = post(client, page, "/portal/apps/my-shop/rotate", team=team)
    assert rotated.status_code == 200
    new = re.search(r'id="api-key"[^>]*value="([^"]+)"', rotated.text)
    assert new and new.group(1) != old
    assert "The old key no longer works" in rotated.text
    made = consumer(store, team, "my-shop")
    assert made is not None
    assert made["credentials"]["key-auth"] == [{"key_hash": sha256_hash(new.group(1))}]


def test_revoking_a_key_keeps_the_app_without_one_until_a_new_key_is_made(
    store: Store, client: httpx.Client
) -> None:
    team = sign_up(client, "ada@example.com")
    create_app(client, team, "my-shop")
    page = f"/portal/apps/my-shop?team={team}"
    revoked = post(client, page, "/portal/apps/my-shop/revoke", team=team)
    assert revoked.status_code == 303
    made = consumer(store, team, "my-shop")
    assert made is not None and "credentials" not in made
    shown = client.get(revoked.headers["location"]).text
    assert "is revoked: it no longer works" in shown and "No key" in shown
    assert ">Create key</button>" in shown and "Revoke key" not in shown
    created = post(client, page, "/portal/apps/my-shop/rotate", team=team)
    assert created.status_code == 200
    key = re.search(r'id="api-key"[^>]*value="([^"]+)"', created.text)
    assert key and "The old key no longer works" not in created.text
    made = consumer(store, team, "my-shop")
    assert made is not None
    assert made["credentials"]["key-auth"] == [{"key_hash": sha256_hash(key.group(1))}]
    assert "Revoke key" in client.get(page).text


def test_deleting_an_app_removes_the_consumer(store: Store, client: httpx.Client) -> None:
    team = sign_up(client, "ada@example.com")
    create_app(client, team, "my-shop")
    page = f"/portal/apps/my-shop?team={team}"
    deleted = post(client, page, "/portal/apps/my-shop/delete", team=team)
    assert deleted.status_code == 303
    assert consumer(store, team, "my-shop") is None
    assert "is deleted" in client.get(deleted.headers["location"]).text
    assert client.get(page).status_code == 404


def test_subscribing_an_app_makes_a_pending_request(shop: Store, client: httpx.Client) -> None:
    team = sign_up(client, "ada@example.com")
    create_app(client, team, "my-shop")
    page = client.get("/portal/apis/payments.orders")
    assert 'name="app"' in page.text and "Request subscription" in page.text
    asked = client.post(
        "/portal/apis/payments.orders/subscribe",
        data={"csrf": csrf_of(page), "team": team, "app": "my-shop", "plan": "free"},
    )
    assert asked.status_code == 303
    listed = client.get(asked.headers["location"])
    assert "Your request for payments.orders is sent" in listed.text
    assert "badge-pending" in listed.text and "my-shop" in listed.text
    [made] = requests.listed(shop, team)
    wanted = ("payments", "orders", "free", "pending")
    assert (made.api_team, made.api, made.plan, made.state) == wanted
    assert made.requested_by == "portal:ada@example.com"
    again = client.post(
        "/portal/apis/payments.orders/subscribe",
        data={"csrf": csrf_of(page), "team": team, "app": "my-shop", "plan": "free"},
    )
    assert again.status_code == 400 and "pending or approved subscription" in again.text


def test_an_automatic_plan_is_approved_and_a_rejection_shows_its_reason(
    shop: Store, client: httpx.Client, base_url: str
) -> None:
    team = sign_up(client, "ada@example.com")
    create_app(client, team, "my-shop")
    create_app(client, team, "my-other")
    page = "/portal/apis/payments.orders"
    post(client, page, f"{page}/subscribe", team=team, app="my-shop", plan="gold")
    post(client, page, f"{page}/subscribe", team=team, app="my-other", plan="free")
    made = consumer(shop, team, "my-shop")
    assert made is not None
    assert made["subscriptions"] == [{"api": "payments.orders", "plan": "gold"}]
    _, token = create_token(shop, "ops", "admin", "payments")
    pending = [item for item in requests.listed(shop, team) if item.state == "pending"]
    answer = httpx.post(
        f"{base_url}/subscriptions/{pending[0].id}/reject",
        json={"reason": "Use the gold plan."},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    listed = client.get("/portal/subscriptions").text
    assert "badge-approved" in listed and "badge-rejected" in listed
    assert "Reason: Use the gold plan." in listed


def test_subscribing_refuses_a_missing_choice_next_to_its_field(
    shop: Store, client: httpx.Client
) -> None:
    team = sign_up(client, "ada@example.com")
    create_app(client, team, "my-shop")
    page = "/portal/apis/payments.orders"
    refused = post(client, page, f"{page}/subscribe", team=team, app="", plan="free")
    assert refused.status_code == 400
    assert "Choose an app." in refused.text and 'aria-invalid="true"' in refused.text


@pytest.mark.parametrize(
    "action",
    [
        "/portal/apps",
        "/portal/apps/my-shop/rotate",
        "/portal/apps/my-shop/delete",
        "/portal/apis/payments.orders/subscribe",
    ],
)
def test_every_form_needs_its_csrf_token(
    shop: Store, client: httpx.Client, base_url: str, action: str
) -> None:
    team = sign_up(client, "ada@example.com")
    create_app(client, team, "my-shop")
    fields = {"team": team, "name": "new-app", "app": "my-shop", "plan": "free"}
    for csrf in ("", "forged"):
        refused = client.post(action, data={"csrf": csrf, **fields})
        assert refused.status_code == 403, action
        assert "This form was not accepted" in refused.text
    shown = client.get("/portal/apps")
    elsewhere = client.post(
        action,
        data={"csrf": csrf_of(shown), **fields},
        headers={"Origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403
    assert consumer(shop, team, "my-shop") is not None
    assert consumer(shop, team, "new-app") is None
    assert requests.listed(shop, team) == []


def test_a_viewer_sees_apps_but_cannot_change_them(
    shop: Store, client: httpx.Client, other: httpx.Client
) -> None:
    team = sign_up(client, "ada@example.com")
    create_app(client, team, "my-shop")
    sign_up(other, "bob@example.com")
    found = user_by_email(shop, "bob@example.com")
    assert found is not None
    set_membership(shop, found[0].id, team, "viewer")
    apps = other.get(f"/portal/apps?team={team}")
    assert apps.status_code == 200 and "my-shop" in apps.text
    assert "Create app" not in apps.text
    app = other.get(f"/portal/apps/my-shop?team={team}")
    assert app.status_code == 200
    assert "Rotate key" not in app.text and "Delete app" not in app.text
    api = other.get(f"/portal/apis/payments.orders?team={team}")
    assert "Request subscription" not in api.text and "you can only look" in api.text
    csrf = csrf_of(apps)
    for action, fields in [
        ("/portal/apps", {"name": "mine"}),
        ("/portal/apps/my-shop/rotate", {}),
        ("/portal/apps/my-shop/delete", {}),
        ("/portal/apis/payments.orders/subscribe", {"app": "my-shop", "plan": "free"}),
    ]:
        refused = other.post(action, data={"csrf": csrf, "team": team, **fields})
        assert refused.status_code == 403, action
        assert "needs the developer role" in refused.text
    assert consumer(shop, team, "mine") is None
    assert consumer(shop, team, "my-shop") is not None
    assert requests.listed(shop, team) == []


def test_a_developer_never_sees_another_teams_apps_or_subscriptions(
    shop: Store, client: httpx.Client, other: httpx.Client
) -> None:
    team_a = sign_up(client, "ada@example.com")
    team_b = sign_up(other, "bob@example.com")
    create_app(other, team_b, "bobs-app")
    page = "/portal/apis/payments.orders"
    post(other, page, f"{page}/subscribe", team=team_b, app="bobs-app", plan="free")
    assert "bobs-app" not in client.get("/portal/apps").text
    assert "bobs-app" not in client.get("/portal/subscriptions").text
    for path in (
        f"/portal/apps?team={team_b}",
        f"/portal/apps/bobs-app?team={team_b}",
        "/portal/apps/bobs-app",  # (in their own team: no such app)
        f"/portal/subscriptions?team={team_b}",
        f"/portal/apis/payments.orders?team={team_b}",
    ):
        assert client.get(path).status_code == 404, path
    csrf = csrf_of(client.get("/portal/apps"))
    for action, fields in [
        ("/portal/apps", {"name": "sneaky"}),
        ("/portal/apps/bobs-app/rotate", {}),
        ("/portal/apps/bobs-app/delete", {}),
        ("/portal/apis/payments.orders/subscribe", {"app": "bobs-app", "plan": "gold"}),
    ]:
        refused = client.post(action, data={"csrf": csrf, "team": team_b, **fields})
        assert refused.status_code == 404, action
    own = client.post("/portal/apps/bobs-app/rotate", data={"csrf": csrf, "team": team_a})
    assert own.status_code == 404
    assert consumer(shop, team_b, "sneaky") is None
    assert [item.plan for item in requests.listed(shop, team_b)] == ["free"]
    assert requests.listed(shop, team_a) == []


def test_pages_need_a_signed_in_developer(shop: Store, client: httpx.Client) -> None:
    pages = ["/portal/apis", "/portal/apis/payments.orders"]
    pages += ["/portal/apps", "/portal/subscriptions"]
    for path in pages:
        answer = client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/portal/signin?next=")


def test_the_home_pages_catalog_link_leads_to_the_catalog(client: httpx.Client) -> None:
    sign_up(client, "ada@example.com")
    answer = client.get("/portal/catalog")
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/apis"


def test_the_apps_page_paginates_within_its_team(store: Store, client: httpx.Client) -> None:
    team = sign_up(client, "ada@example.com")
    consumers = [{"name": f"app-{n:02}"} for n in range(25)]
    store.apply({"consumers": consumers}, "test", "apps", team=team)
    first = client.get(f"/portal/apps?team={team}")
    assert "app-00" in first.text and "app-20" not in first.text
    assert f'href="/portal/apps?team={team}&amp;page=2"' in first.text
    second = client.get(f"/portal/apps?team={team}&page=2")
    assert "app-24" in second.text and "app-00" not in second.text
