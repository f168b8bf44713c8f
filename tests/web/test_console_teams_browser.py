"""The console's team page in Chromium: an owner adds a member, changes their role
and removes them, by labels and names alone; each step saved as a screenshot."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from quiver.accounts.memberships import team_members
from quiver.accounts.users import create_user
from quiver.store import Store
from quiver.store.teams import create_team
from tests.web.browsing import shoot
from tests.web.forms import PASSWORD
from tests.web.test_console_helpers import member


def test_an_owner_adds_a_member_changes_their_role_and_removes_them(
    page: Page, base_url: str, store: Store, screenshots: Path
) -> None:
    create_team(store, "payments")
    member(store, "olive@example.com", "payments", "owner")
    member(store, "dev@example.com", "payments", "developer")
    create_user(store, "nina@example.com", PASSWORD, name="Nina Simone")

    page.goto(f"{base_url}/console")
    page.get_by_label("Email").fill("olive@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}/console")

    page.get_by_role("link", name="Teams").click()
    expect(page.get_by_role("heading", name="Teams", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="payments")).to_be_visible()
    shoot(page, screenshots, "console-teams")

    page.get_by_role("link", name="payments").click()
    expect(page.get_by_role("heading", name="Team payments")).to_be_visible()
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#member-email-error")).to_contain_text("no account with this email")
    shoot(page, screenshots, "console-team-unknown-email")

    page.get_by_label("Email").fill("nina@example.com")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Add member").click()
    expect(page.get_by_role("status")).to_have_text("Added nina@example.com as viewer.")
    expect(page.get_by_role("cell", name="Nina Simone")).to_be_visible()
    shoot(page, screenshots, "console-team-member-added")

    page.get_by_label("Role of nina@example.com", exact=True).select_option("admin")
    page.get_by_role("button", name="Change role of nina@example.com").click()
    expect(page.get_by_role("status")).to_have_text("nina@example.com is now admin.")
    expect(page.get_by_label("Role of nina@example.com", exact=True)).to_have_value("admin")

    page.get_by_label("Role of olive@example.com", exact=True).select_option("developer")
    page.get_by_role("button", name="Change role of olive@example.com").click()
    expect(page.get_by_role("alert").or_(page.locator(".field-error"))).to_contain_text(
        "must keep at least one owner"
    )
    expect(page.get_by_label("Role of olive@example.com", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    shoot(page, screenshots, "console-team-last-owner")

    page.get_by_role("button", name="Remove nina@example.com").click()
    expect(page.get_by_role("status")).to_have_text("Removed nina@example.com from the team.")
    expect(page.get_by_role("cell", name="Nina Simone")).to_have_count(0)
    shoot(page, screenshots, "console-team-member-removed")

    roles = {found.email: found.role for found in team_members(store, "payments")}
    assert roles == {"dev@example.com": "developer", "olive@example.com": "owner"}
