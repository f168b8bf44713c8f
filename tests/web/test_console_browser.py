"""The console in Chromium: an operator signs in, sees the overview's charts, and
approves a pending subscription request, by labels and names alone; each step
saved as a full-page screenshot."""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Page, expect

from quiver.calls import Ingester
from quiver.store import Store
from tests.calls.synthetic import records, write_spools
from tests.web.browsing import shoot
from tests.web.test_console_helpers import member, operator_client, two_teams


def test_an_operator_signs_in_and_approves_a_pending_request(
    page: Page, base_url: str, store: Store, screenshots: Path, tmp_path: Path
) -> None:
    with operator_client(base_url, store) as api:
        two_teams(api, store)
        now = int(time.time() * 1000)
        calls = records(600, now - 3_000_000, 2_900_000)
        for call in calls:  # (calls of payments' routes, which its admin sees)
            call["route"] = "payments." + call["route"].rpartition(".")[2]
        write_spools(tmp_path / "calls", calls, per_file=600)
        assert Ingester(store.engine, tmp_path / "calls").run_once() == 600
        member(store, "pat@example.com", "payments", "admin")

        page.goto(f"{base_url}/console")
        page.get_by_label("Email").fill("pat@example.com")
        page.get_by_label("Password", exact=True).fill("a long enough passphrase")
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(f"{base_url}/console")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        expect(page.get_by_role("img", name="Latency per minute")).to_be_visible()
        shoot(page, screenshots, "console-overview-traffic")

        page.get_by_role("link", name="Subscriptions").click()
        expect(page.get_by_role("heading", name="Subscription requests")).to_be_visible()
        shoot(page, screenshots, "console-subscriptions")

        page.get_by_role("button", name="Reject request 1").click()
        expect(page.get_by_label("Reason").first).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#reason-1-error")).to_contain_text("Give a reason")
        shoot(page, screenshots, "console-subscriptions-reason-error")

        page.get_by_role("button", name="Approve request 1").click()
        page.wait_for_url(f"{base_url}/console/subscriptions?done=approved")
        expect(page.get_by_role("status")).to_contain_text("Approved")
        expect(page.get_by_role("cell", name="approved")).to_be_visible()
        shoot(page, screenshots, "console-subscriptions-approved")

        page.get_by_role("link", name="Revisions").click()
        expect(page.get_by_role("heading", name="Revisions")).to_be_visible()
        shoot(page, screenshots, "console-revisions")
        page.get_by_role("link", name="Revision 1", exact=True).click()
        expect(page.get_by_role("link", name="Roll back to this revision")).to_be_visible()
        shoot(page, screenshots, "console-revision-diff")

        decided = api.get("/subscriptions/1?team=payments").json()
        assert decided["state"] == "approved" and decided["decided_by"] == "pat@example.com"
