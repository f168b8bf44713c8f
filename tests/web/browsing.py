"""What the browser tests of the pages share: a page that may load nothing from
outside the admin API (the ``page`` fixture, in conftest.py), and screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page


def fresh_page(browser: Any, base_url: str) -> Iterator[Page]:
    """A page of a fresh browser context (1280 wide); once the test is done, that it
    requested nothing from another origin is checked."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened: Page = context.new_page()
    requested: list[str] = []
    opened.on("request", lambda request: requested.append(request.url))
    try:
        yield opened
    finally:
        context.close()
    origin = urlsplit(base_url).netloc
    assert [url for url in requested if urlsplit(url).netloc not in (origin, "")] == []


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
