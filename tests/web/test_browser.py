"""The sign-up and sign-in pages in Chromium: by their labels, with the keyboard alone,
loading nothing from elsewhere; each step saved as a full-page screenshot."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from quiver.accounts.throttle import EMAIL_LIMIT
from quiver.accounts.users import create_user
from quiver.store import Store
from quiver.store.teams import create_team
from quiver.store.tokens import create_token
from tests.web.browsing import shoot
from tests.web.forms import PASSWORD


def test_a_developer_signs_up_through_the_form_and_lands_on_the_portal(
    page: Page, base_url: str, screenshots: Path
) -> None:
    page.goto(f"{base_url}/portal/signup")
    expect(page.get_by_role("heading", name="Create your developer account")).to_be_visible()
    shoot(page, screenshots, "portal-signup")

    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    password = page.get_by_label("Password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#field-password-error")).to_have_text("Error: Use at least 12 characters.")
    shoot(page, screenshots, "portal-signup-error")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{base_url}/portal")
    expect(page.get_by_role("heading", name="Welcome, Ada Lovelace")).to_be_visible()
    expect(page.get_by_role("heading", name="Your apps")).to_be_visible()
    expect(page.get_by_role("link", name="Browse the API catalog")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    shoot(page, screenshots, "portal-home")


def test_console_sign_in_with_email_and_password(
    page: Page, base_url: str, store: Store, screenshots: Path
) -> None:
    create_user(store, "root@example.com", PASSWORD, name="Grace Hopper", is_admin=True)
    for team in ("payments", "search", "mobile"):
        create_team(store, team)
    page.goto(f"{base_url}/console")
    page.wait_for_url(f"{base_url}/console/signin")
    expect(page.get_by_label("Admin token")).to_be_visible()
    shoot(page, screenshots, "console-signin")

    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}/console")
    expect(page.get_by_text("Platform operator")).to_be_visible()
    expect(page.get_by_role("cell", name="payments")).to_be_visible()
    shoot(page, screenshots, "console-home")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base_url}/console/signin?signed_out=1")
    expect(page.get_by_role("status")).to_have_text("You are signed out.")


def test_console_sign_in_with_an_admin_token(
    page: Page, base_url: str, store: Store, screenshots: Path
) -> None:
    create_team(store, "payments")
    _, token = create_token(store, "payments-ops", "admin", "payments")
    page.goto(f"{base_url}/console/signin")
    page.get_by_label("Admin token").fill("qv_not-a-token")
    page.get_by_role("button", name="Sign in with token").click()
    expect(page.locator("#field-token-error")).to_contain_text("unknown or was revoked")
    shoot(page, screenshots, "console-signin-token-error")

    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in with token").click()
    page.wait_for_url(f"{base_url}/console")
    expect(page.get_by_text("token payments-ops").first).to_be_visible()
    expect(page.get_by_role("cell", name="payments")).to_be_visible()
    shoot(page, screenshots, "console-home-token")


def test_signing_in_with_the_keyboard_alone(
    page: Page, base_url: str, store: Store, screenshots: Path
) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    page.goto(f"{base_url}/portal/signin")
    focused = page.locator(":focus")
    expect(focused).to_have_attribute("id", "field-email")  # autofocus
    page.keyboard.press("Shift+Tab")
    expect(focused).to_have_attribute("class", "brand")
    page.keyboard.press("Shift+Tab")
    expect(focused).to_have_text("Skip to main content")
    shoot(page, screenshots, "portal-signin-skip-link")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(focused).to_have_attribute("id", "field-email")
    page.keyboard.type("ada@example.com")
    page.keyboard.press("Tab")
    expect(focused).to_have_attribute("id", "field-password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    expect(focused).to_have_text("Sign in")
    shoot(page, screenshots, "portal-signin-keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base_url}/portal")
    expect(page.get_by_role("heading", name="Your apps")).to_be_visible()


def test_wrong_passwords_then_throttling_show_on_the_form(
    page: Page, base_url: str, store: Store, screenshots: Path
) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    page.goto(f"{base_url}/portal/signin")
    for attempt in range(EMAIL_LIMIT + 1):
        page.get_by_label("Email").fill("ada@example.com")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        if attempt == 0:
            expect(page.get_by_role("alert")).to_contain_text("Email or password is wrong.")
            shoot(page, screenshots, "portal-signin-wrong-password")
    expect(page.get_by_role("alert")).to_contain_text(
        "Too many failed sign-ins for this email. Try again in 15 minutes."
    )
    expect(page.get_by_label("Email")).to_have_value("ada@example.com")
    shoot(page, screenshots, "portal-signin-throttled")


def test_an_unknown_page_is_a_friendly_page_with_the_request_id(
    page: Page, base_url: str, screenshots: Path
) -> None:
    answer = page.goto(f"{base_url}/portal/no-such-page")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.locator(".request-id code")).to_have_text(answer.headers["x-request-id"])
    shoot(page, screenshots, "portal-not-found")
