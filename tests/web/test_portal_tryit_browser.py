"""In Chromium, against a real ``quiver serve``: a developer gets a key, subscribes,
tries an operation from the API's page and reads the gateway's answer under it,
then sees the call on their app's page, charted; each step saved as a screenshot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from quiver.store import open_store
from tests.store_mode.helpers import admin_port, start_node
from tests.support.catalog import built_in
from tests.support.nodes import wait_until
from tests.support.process import QuiverProcess
from tests.support.upstream import Upstream
from tests.web.browsing import shoot
from tests.web.forms import PASSWORD
from tests.web.test_portal_tryit import publish_orders
from tests.web.test_portal_tryit_gateway import calls_shown, wait_served

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[QuiverProcess]:
    """A store-mode node (port 0) whose team ``payments`` publishes ``orders``."""
    home = tmp_path / "node"
    home.mkdir()
    with Upstream() as upstream:
        store = open_store(str(home / "quiver.db"), built_in())
        try:
            publish_orders(store, upstream.url)
        finally:
            store.close()
        with start_node(home) as process:
            process.wait_listening()
            yield process
            assert process.stop() == 0


@pytest.fixture
def base_url(node: QuiverProcess) -> str:
    """The node's own admin API: the pages there know its gateway."""
    return f"http://127.0.0.1:{admin_port(node)}"


def test_a_developer_tries_an_api_and_sees_the_call_on_the_apps_page(
    page: Page, base_url: str, node: QuiverProcess, tmp_path: Path, screenshots: Path
) -> None:
    page.goto(f"{base_url}/portal/signup")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{base_url}/portal")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Apps").click()
    page.get_by_label("App name").fill("my-shop")
    page.get_by_role("button", name="Create app").click()
    key = page.get_by_label("API key", exact=True).input_value()
    assert key.startswith("qk_")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="APIs").click()
    page.get_by_role("link", name="Orders API").click()
    page.get_by_label("App", exact=True).select_option("my-shop")
    page.get_by_label("Plan", exact=True).select_option("trial")
    page.get_by_role("button", name="Request subscription").click()
    expect(page.get_by_role("row").filter(has_text="payments.orders")).to_contain_text("approved")
    wait_served(node, tmp_path / "node")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="APIs").click()
    page.get_by_role("link", name="Orders API").click()
    operation = page.get_by_role("article", name="GET /orders/{id}")
    operation.locator("summary").click()
    operation.get_by_label("API key").fill(key)
    operation.get_by_label("id", exact=True).fill("7")
    operation.get_by_label("Query").fill("expand=true")
    shoot(page, screenshots, "portal-try-it-form")
    operation.get_by_role("button", name="Send GET /orders/{id}").click()

    operation = page.get_by_role("article", name="GET /orders/{id}")
    answer = operation.get_by_role("region", name="Answer")
    expect(answer).to_contain_text("200 OK")
    expect(answer.get_by_label("Body of the answer")).to_contain_text("/orders/7?expand=true")
    expect(answer.get_by_role("table", name="Header fields of the answer")).to_contain_text(
        "X-Request-ID"
    )
    expect(operation.get_by_label("API key")).to_have_value("")
    assert key not in page.content()
    answer.scroll_into_view_if_needed()
    shoot(page, screenshots, "portal-try-it-answer")

    placed = page.get_by_role("article", name="POST /orders")
    placed.locator("summary").click()
    expect(placed.get_by_label("Body (application/json)")).to_have_value(
        '{\n  "sku": "tea",\n  "count": 2\n}'
    )
    placed.get_by_role("button", name="Send POST /orders").click()
    expect(
        page.get_by_role("article", name="POST /orders").get_by_role("region", name="Answer")
    ).to_contain_text("401 Unauthorized")  # (no key given: key-auth refuses)

    app = f"{base_url}/portal/apps/my-shop?team=ada"
    wait_until(lambda: _shown_calls(page, app) >= 1, "the app's page shows the call", timeout=20)
    expect(page.get_by_role("heading", name="Usage in the last 24 hours")).to_be_visible()
    expect(page.get_by_role("img", name="Requests and errors per hour")).to_be_visible()
    expect(page.get_by_role("img", name="Latency per hour")).to_be_visible()
    shoot(page, screenshots, "portal-app-usage")
    page.get_by_role("navigation", name="Time window").get_by_role("link", name="1 hour").click()
    expect(page.get_by_role("heading", name="Usage in the last hour")).to_be_visible()
    expect(page.get_by_role("img", name="Requests and errors per minute")).to_be_visible()
    shoot(page, screenshots, "portal-app-usage-hour")


def _shown_calls(page: Page, address: str) -> int:
    page.goto(address)
    return calls_shown(page.content())
