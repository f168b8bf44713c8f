"""/docs in a real browser: it renders from the admin API alone, and a call made from
it carries the token pasted into it."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import expect

from quiver.store import Store
from quiver.store.tokens import create_token


def test_the_docs_page_works_offline_and_calls_with_the_pasted_token(
    browser: Any,
    store: Store,
    base_url: str,
) -> None:
    store.apply({"targets": [{"name": "orders", "url": "http://127.0.0.1:9001"}]}, author="t")
    _, token = create_token(store, "docs-page", "viewer")
    page = browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    try:
        page.goto(f"{base_url}/docs")
        page.wait_for_selector("#operations-targets-list_entities_targets_get", timeout=20_000)
        assert page.locator(".opblock").count() > 20, "every operation is listed"

        page.click("button.authorize")
        page.fill(".auth-container input", token)
        page.click(".auth-btn-wrapper button.authorize")
        page.click("button.btn-done")

        operation = page.locator("#operations-targets-list_entities_targets_get")
        operation.locator(".opblock-summary").click()
        operation.locator("button.try-out__btn").click()
        with page.expect_response(lambda r: urlsplit(r.url).path == "/targets") as answered:
            operation.locator("button.execute").click()
        response = answered.value
        assert response.status == 200
        assert response.request.headers["authorization"] == f"Bearer {token}"
        assert response.json()["data"][0]["name"] == "orders"
        shown = operation.locator(".live-responses-table tbody .response-col_status")
        expect(shown.first).to_contain_text("200")  # and the page shows the answer
    finally:
        page.close()
    origin = urlsplit(base_url).netloc
    elsewhere = [url for url in requested if urlsplit(url).netloc not in (origin, "")]
    assert elsewhere == [], "the page loads nothing from outside the admin API"
    assert any("/docs/static/swagger-ui-bundle.js" in url for url in requested)
