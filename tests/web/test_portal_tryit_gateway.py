"""The portal's "Try it" through a real ``quiver serve`` in store mode, listening on
port 0: the admin process knows where its gateway listens, and a request tried from
an API's page is authenticated, gated by the plan, rate-limited and logged like any
call (the app's page then shows it), while the key appears in no page and no log."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quiver.store import open_store
from tests.store_mode.helpers import admin_port, start_node
from tests.support.catalog import built_in
from tests.support.nodes import wait_until
from tests.support.process import QuiverProcess
from tests.support.upstream import Upstream
from tests.web.test_portal_pages import create_app, post, sign_up
from tests.web.test_portal_tryit import PAGE, publish_orders, try_it

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with Upstream() as server:
        yield server


def wait_served(node: QuiverProcess, home: Path) -> None:
    """The node's worker serves the store's latest revision."""
    store = open_store(str(home / "quiver.db"), built_in())
    try:
        head, _ = store.effective()
    finally:
        store.close()
    node.wait_for(rf"(config reloaded from|serving) store revision {head}\b", timeout=10)


def status_shown(page: httpx.Response) -> int:
    found = re.search(r'<span class="badge badge-(?:ok|refused)">(\d{3})', page.text)
    assert found, page.text[:3000]
    return int(found.group(1))


def calls_shown(page: str) -> int:
    found = re.search(r'Calls</p><p class="stat-value">(\d+)<', page)
    return int(found.group(1)) if found else 0


def test_a_request_tried_goes_through_the_gateway_like_any_call(
    tmp_path: Path, upstream: Upstream
) -> None:
    home = tmp_path / "node"
    home.mkdir()
    store = open_store(str(home / "quiver.db"), built_in())
    try:
        publish_orders(store, upstream.url)
    finally:
        store.close()
    pages: list[str] = []
    with start_node(home) as node:
        gateway = node.wait_listening()
        base = f"http://127.0.0.1:{admin_port(node)}"
        node.wait_for(
            rf'the portal\'s "Try it" sends requests to the gateway at http://127\.0\.0\.1:{gateway}'
        )
        with httpx.Client(base_url=base, timeout=30, headers={"Origin": base}) as client:
            team = sign_up(client, "ada@example.com")
            key = create_app(client, team, "my-shop")
            wait_served(node, home)
            page = client.get(PAGE)
            assert f'through the gateway at <span class="mono">http://127.0.0.1:{gateway}<' in (
                page.text
            )

            anonymous = try_it(client, "get--orders-id", **{"path-id": "7"})
            assert status_shown(anonymous) == 401
            assert "urn:quiver:problem:unauthorized" in anonymous.text
            unsubscribed = try_it(client, "get--orders-id", key=key, **{"path-id": "7"})
            assert status_shown(unsubscribed) == 401
            assert "urn:quiver:problem:subscription-required" in unsubscribed.text
            assert upstream.requests == []

            subscribed = post(
                client, PAGE, f"{PAGE}/subscribe", team=team, app="my-shop", plan="trial"
            )
            assert subscribed.status_code == 303
            wait_served(node, home)
            tried = [
                try_it(client, "get--orders-id", key=key, **{"path-id": "7"}, query="expand=true")
                for _ in range(4)
            ]
            assert [status_shown(answer) for answer in tried] == [200, 200, 200, 429]
            assert len(upstream.requests) == 3
            sent = upstream.requests[0]
            assert sent.path == "/orders/7?expand=true"
            assert sent.header("x-quiver-plan") == "trial"
            assert sent.header("x-consumer-username") == f"{team}.my-shop"
            assert sent.header("apikey") is None  # (key-auth keeps it from the upstream)
            shown = html.unescape(tried[0].text)
            assert '"x-quiver-plan",\n      "trial"' in shown.lower()
            assert "ratelimit-policy" in tried[-1].text.lower()

            outside = try_it(client, "get--orders-id", key=key, **{"path-id": ".."})
            assert outside.status_code == 400
            assert "is not a path of this API&#39;s routes" in outside.text
            assert len(upstream.requests) == 3

            app = f"/portal/apps/my-shop?team={team}"
            wait_until(
                lambda: calls_shown(client.get(app).text) == 5, "the app's page shows its calls"
            )
            usage = client.get(app)
            assert "Requests and errors per hour" in usage.text and 'role="img"' in usage.text
            pages = [page.text, anonymous.text, unsubscribed.text, outside.text, usage.text]
            pages += [answer.text for answer in tried]
        assert node.stop() == 0
    for text in pages:
        assert key not in text
    assert key not in node.stderr
    assert f"Try it by ada@example.com: GET /orders/7 of API {PAGE.rsplit('/', 1)[1]}, 200" in (
        node.stderr
    )
