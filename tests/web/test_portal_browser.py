"""A developer's whole way through the portal in Chromium: sign up, create an app and
see its key once, find a published API in the catalog, request its manual-approval
plan, and see the request pending; each page saved as a full-page screenshot."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from quiver.store import Store
from quiver.store.secrets import sha256_hash
from tests.web.browsing import shoot
from tests.web.forms import PASSWORD
from tests.web.test_portal_pages import OPENAPI, PLANS, api, consumer, publish


def test_a_developer_gets_a_key_and_requests_a_plan_that_needs_approval(
    page: Page, base_url: str, store: Store, screenshots: Path
) -> None:
    publish(
        store,
        "payments",
        api(
            "orders",
            title="Orders API",
            description="Place and follow the orders of the shop.",
            tags=["commerce", "orders"],
            version="1.2",
            openapi=OPENAPI,
            plans=PLANS,
        ),
        api(
            "legacy",
            "deprecated",
            title="Legacy orders",
            description="The v1 orders API.",
            tags=["commerce"],
            plans=PLANS[:1],
        ),
        api(
            "stock",
            title="Stock levels",
            description="What the warehouse holds.",
            tags=["warehouse"],
            plans=PLANS[1:],
        ),
    )
    page.goto(f"{base_url}/portal/signup")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{base_url}/portal")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Apps").click()
    expect(page.get_by_role("heading", name="No apps yet")).to_be_visible()
    shoot(page, screenshots, "portal-apps-empty")
    page.get_by_label("App name").fill("my-shop")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="App my-shop is ready")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("it is shown only once")
    key = page.get_by_label("API key", exact=True).input_value()
    assert key.startswith("qk_")
    shoot(page, screenshots, "portal-app-key")
    made = consumer(store, "ada", "my-shop")
    assert made is not None
    assert made["credentials"]["key-auth"] == [{"key_hash": sha256_hash(key)}]

    page.get_by_role("link", name="I have copied it: go to the app").click()
    expect(page.get_by_role("button", name="Rotate key")).to_be_visible()
    assert key not in page.content()
    shoot(page, screenshots, "portal-app")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="APIs").click()
    expect(page.get_by_role("link", name="Orders API")).to_be_visible()
    expect(page.get_by_text("Deprecated")).to_be_visible()
    shoot(page, screenshots, "portal-catalog")
    page.get_by_label("Search", exact=True).fill("shop")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="Stock levels")).to_have_count(0)
    shoot(page, screenshots, "portal-catalog-search")

    page.get_by_role("link", name="Orders API").click()
    expect(page.get_by_role("heading", name="API reference")).to_be_visible()
    expect(page.get_by_role("table", name="The plans of Orders API")).to_be_visible()
    expect(page.get_by_role("article", name="POST /orders")).to_contain_text("What to buy.")
    page.get_by_label("App", exact=True).select_option("my-shop")
    page.get_by_label("Plan", exact=True).select_option("free")
    shoot(page, screenshots, "portal-api")
    page.get_by_role("button", name="Request subscription").click()

    page.wait_for_url(f"{base_url}/portal/subscriptions?*")
    expect(page.get_by_role("status")).to_contain_text("Your request for payments.orders is sent")
    row = page.get_by_role("row").filter(has_text="payments.orders")
    expect(row).to_contain_text("my-shop")
    expect(row).to_contain_text("pending")
    shoot(page, screenshots, "portal-subscriptions")

    page.get_by_role("link", name="my-shop").first.click()
    expect(page.get_by_role("table", name="The subscription requests of my-shop")).to_contain_text(
        "pending"
    )
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Apps").click()
    expect(page.get_by_role("table", name="The apps of team ada")).to_contain_text("my-shop")
    shoot(page, screenshots, "portal-apps")
