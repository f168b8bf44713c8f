"""The console's pages of the call log in Chromium: an operator signs in, opens the
recent errors, follows a request id to its call's record, then looks at the top
consumers and the AI spend, by labels and names alone; each page saved as a
full-page screenshot."""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from quiver.accounts.users import create_user
from quiver.calls import Ingester
from quiver.store import Store
from quiver.store.teams import create_team
from tests.calls.synthetic import records, with_spend, write_spools
from tests.web.browsing import shoot
from tests.web.forms import PASSWORD


def test_an_operator_follows_an_error_to_its_call_and_reads_usage(
    page: Page, base_url: str, store: Store, screenshots: Path, tmp_path: Path
) -> None:
    create_team(store, "shop")
    now = int(time.time() * 1000)
    calls = with_spend(records(400, now - 3_000_000, 2_900_000))
    write_spools(tmp_path / "calls", calls, per_file=400)
    assert Ingester(store.engine, tmp_path / "calls").run_once() == 400
    create_user(store, "root@example.com", PASSWORD, is_admin=True)

    page.goto(f"{base_url}/console")
    page.get_by_label("Email").fill("root@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}/console")

    page.get_by_role("link", name="Errors", exact=True).click()
    expect(page.get_by_role("heading", name="Recent errors")).to_be_visible()
    expect(page.get_by_role("table")).to_contain_text("shop.cart")
    shoot(page, screenshots, "console-errors")

    page.get_by_role("link", name="Next page").click()
    expect(page.get_by_text("Page 2", exact=True)).to_be_visible()
    page.get_by_role("link", name="First page").click()
    newest = max((c for c in calls if c["status"] >= 400), key=lambda c: c["time"])
    page.get_by_role("link", name=newest["request_id"]).click()
    page.wait_for_url(f"{base_url}/console/calls/{newest['request_id']}")
    expect(page.get_by_role("heading", name=f"Call {newest['request_id']}")).to_be_visible()
    expect(page.get_by_role("definition").filter(has_text=newest["path"])).to_be_visible()
    shoot(page, screenshots, "console-call")

    page.get_by_role("link", name="Consumers", exact=True).click()
    expect(page.get_by_role("heading", name="Top consumers")).to_be_visible()
    expect(page.get_by_role("img", name="Top consumers by requests")).to_be_visible()
    page.get_by_label("Window").select_option(label="Last 7 days")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r".*/console/consumers\?team=&window=7d$"))
    expect(page.get_by_role("cell", name="alice", exact=True)).to_be_visible()
    shoot(page, screenshots, "console-consumers")

    page.get_by_role("link", name="AI spend", exact=True).click()
    expect(page.get_by_role("heading", name="AI spend", exact=True)).to_be_visible()
    for title in ("Spend per team", "Spend per key", "Spend per model"):
        expect(page.get_by_role("img", name=title)).to_be_visible()
    page.get_by_label("Team", exact=True).select_option("shop")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("team shop")).to_be_visible()
    shoot(page, screenshots, "console-spend")
