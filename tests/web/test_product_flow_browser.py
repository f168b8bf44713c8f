"""The whole way of an API product, in Chromium against a real ``quiver serve``.

A team publishes an API whose plan needs approval.  A new developer signs up in the
portal, creates an app (its key shown once), and requests the plan; ``curl`` with the
key gets 401.  An operator, made with ``quiver admin user new``, signs in to the
console and approves the request; the same ``curl`` then gets 200 from the target,
and 429 past the plan's limit.  The developer sees the calls on the app's page and
revokes the key, which then gets 401.  Every page on the way is saved as a
screenshot.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.store_mode.helpers import TOKEN_LINE, admin_port, start_node
from tests.support.process import QuiverProcess, run_quiver
from tests.support.upstream import Upstream
from tests.web.browsing import fresh_page, shoot
from tests.web.test_portal_pages import OPENAPI

OPERATOR = "ops@example.com"
OPERATOR_PASSWORD = "operator passphrase 42"
DEVELOPER_PASSWORD = "developer passphrase 42"
#: the plan's limit: its fourth call in a minute is refused
LIMIT = 3


def payments(target_url: str) -> dict[str, Any]:
    """Team payments' declaration: the Orders API, published, its one plan manual."""
    return {
        "targets": [{"name": "shop", "url": target_url}],
        "routes": [{"name": "orders", "paths": ["/orders"], "target": "shop"}],
        "apis": [
            {
                "name": "orders",
                "title": "Orders API",
                "description": "Place and follow the orders of the shop.",
                "version": "1.0",
                "tags": ["commerce"],
                "routes": ["orders"],
                "state": "published",
                "openapi": OPENAPI,
                "plans": [
                    {
                        "name": "starter",
                        "title": "Starter",
                        "rate_limit": {"limit": LIMIT, "window": "1m"},
                        "approval": "manual",
                    }
                ],
            }
        ],
    }


class Gateway:
    """A store-mode node: its gateway port, admin URL and the root admin token."""

    def __init__(self, process: QuiverProcess, admin_url: str, token: str) -> None:
        self.process = process
        self.admin_url = admin_url
        self.admin = httpx.Client(
            base_url=admin_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def newest_revision(self, team: str) -> int:
        """The store revision of ``team``'s newest change."""
        answer = self.admin.get("/config", params={"team": team})
        assert answer.status_code == 200, answer.text
        newest: int = answer.json()["revision"]
        return newest

    def wait_served(self, revision: int) -> None:
        self.process.wait_for(rf"config reloaded from store revision {revision}\b", timeout=5)

    def curl(self, key: str | None, path: str = "/orders") -> tuple[int, str]:
        """``curl`` through the gateway, with the key in ``apikey`` (the status, the body)."""
        command = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "10"]
        if key is not None:
            command += ["-H", f"apikey: {key}"]
        command.append(f"http://127.0.0.1:{self.process.port}{path}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=True)
        body, _, status = done.stdout.rpartition("\n")
        return int(status), body


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    made = run_quiver(
        "admin",
        "user",
        "new",
        OPERATOR,
        "--name",
        "Grace Ops",
        "--password-stdin",
        cwd=_home(tmp_path),
        stdin=OPERATOR_PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    with start_node(_home(tmp_path)) as process:
        process.wait_listening()
        [match] = process.wait_for(TOKEN_LINE)
        node = Gateway(process, f"http://127.0.0.1:{admin_port(process)}", match.group(1))
        with node.admin:
            yield node
        assert process.stop() == 0


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "node"
    home.mkdir(exist_ok=True)
    return home


def publish(gateway: Gateway, target_url: str) -> None:
    made = gateway.admin.post("/teams", json={"name": "payments"})
    assert made.status_code == 201, made.text
    applied = gateway.admin.post(
        "/config/apply", params={"team": "payments"}, json={"document": payments(target_url)}
    )
    assert applied.status_code == 200, applied.text
    gateway.wait_served(applied.json()["revision"]["number"])


def test_a_new_developer_gets_an_approved_key_that_works_until_the_plan_limit(
    browser: Any, gateway: Gateway, tmp_path: Path, screenshots: Path
) -> None:
    with Upstream() as target:
        publish(gateway, target.url)
        for page in fresh_page(browser, gateway.admin_url):
            key = developer_signs_up_and_asks(page, gateway.admin_url, screenshots)
        status, body = gateway.curl(key)
        assert status == 401, body
        problem = json.loads(body)
        assert problem["type"] == "urn:quiver:problem:subscription-required"
        assert key not in body
        assert gateway.curl(None)[0] == 401
        assert [call for call in target.requests if call.path == "/orders"] == []

        for page in fresh_page(browser, gateway.admin_url):
            operator_approves(page, gateway.admin_url, screenshots)
        gateway.wait_served(gateway.newest_revision("dev"))  # (the app's team)

        for page in fresh_page(browser, gateway.admin_url):
            developer_sees_it_approved(page, gateway.admin_url, key, screenshots)
        statuses = [gateway.curl(key)[0] for _ in range(LIMIT + 1)]
        assert statuses == [200] * LIMIT + [429]
        served = [call for call in target.requests if call.path == "/orders"]
        assert len(served) == LIMIT
        assert served[0].header("x-quiver-plan") == "starter"
        status, body = gateway.curl("qk_not-a-key-anybody-was-given")
        assert status == 401, body

        for page in fresh_page(browser, gateway.admin_url):
            developer_revokes_the_key(page, gateway.admin_url, screenshots)
        gateway.wait_served(gateway.newest_revision("dev"))
        assert gateway.curl(key)[0] == 401


def developer_signs_up_and_asks(page: Page, base: str, screenshots: Path) -> str:
    """Sign up, create an app, copy its key, request the Starter plan; the key."""
    page.goto(f"{base}/portal/signup")
    shoot(page, screenshots, "flow-01-signup")
    page.get_by_label("Email").fill("dev@example.com")
    page.get_by_label("Password").fill(DEVELOPER_PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(f"{base}/portal")
    shoot(page, screenshots, "flow-02-portal-home")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Apps").click()
    page.get_by_label("App name").fill("checkout")
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="App checkout is ready")).to_be_visible()
    key = page.get_by_label("API key", exact=True).input_value()
    assert key.startswith("qk_")
    shoot(page, screenshots, "flow-03-key-shown-once")
    page.get_by_role("link", name="I have copied it: go to the app").click()
    expect(page.get_by_role("button", name="Rotate key")).to_be_visible()
    assert key not in page.content()
    shoot(page, screenshots, "flow-04-app")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="APIs").click()
    shoot(page, screenshots, "flow-05-catalog")
    page.get_by_role("link", name="Orders API").click()
    expect(page.get_by_role("article", name="POST /orders")).to_be_visible()
    page.get_by_label("App", exact=True).select_option("checkout")
    page.get_by_label("Plan", exact=True).select_option("starter")
    shoot(page, screenshots, "flow-06-api")
    page.get_by_role("button", name="Request subscription").click()
    page.wait_for_url(f"{base}/portal/subscriptions?*")
    row = page.get_by_role("row").filter(has_text="payments.orders")
    expect(row).to_contain_text("pending")
    shoot(page, screenshots, "flow-07-requested")
    return key


def operator_approves(page: Page, base: str, screenshots: Path) -> None:
    page.goto(f"{base}/console")
    page.get_by_label("Email").fill(OPERATOR)
    page.get_by_label("Password", exact=True).fill(OPERATOR_PASSWORD)
    shoot(page, screenshots, "flow-08-console-signin")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/console")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    shoot(page, screenshots, "flow-09-console-overview")
    page.get_by_role("link", name="Subscriptions").click()
    waiting = page.get_by_role("region", name="Waiting for a decision")
    expect(
        waiting.get_by_role("heading", name="#1 · checkout wants payments.orders")
    ).to_be_visible()
    shoot(page, screenshots, "flow-10-console-requests")
    page.get_by_role("button", name="Approve request 1").click()
    page.wait_for_url(f"{base}/console/subscriptions?done=approved")
    expect(page.get_by_role("status")).to_contain_text("Approved")
    shoot(page, screenshots, "flow-11-console-approved")


def developer_sees_it_approved(page: Page, base: str, key: str, screenshots: Path) -> None:
    page.goto(f"{base}/portal/signin")
    page.get_by_label("Email").fill("dev@example.com")
    page.get_by_label("Password").fill(DEVELOPER_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/portal")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Subscriptions").click()
    row = page.get_by_role("row").filter(has_text="payments.orders")
    expect(row).to_contain_text("approved")
    assert key not in page.content()
    shoot(page, screenshots, "flow-12-approved")


def developer_revokes_the_key(page: Page, base: str, screenshots: Path) -> None:
    page.goto(f"{base}/portal/signin")
    page.get_by_label("Email").fill("dev@example.com")
    page.get_by_label("Password").fill(DEVELOPER_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/portal")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Apps").click()
    page.get_by_role("link", name="checkout").click()
    expect(page.get_by_role("img", name=re.compile("Requests"))).to_be_visible()
    shoot(page, screenshots, "flow-13-app-usage")
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("status")).to_contain_text("is revoked: it no longer works")
    expect(page.get_by_role("button", name="Create key")).to_be_visible()
    shoot(page, screenshots, "flow-14-key-revoked")
