"""The admin API with the portal and console mounted, served for real over a fresh
store; a Chromium for the browser tests, and where their screenshots go."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from quiver.admin import create_app
from quiver.store import Store, open_store
from quiver.web.site import mount_pages
from tests.admin.server import serving
from tests.support.browser import browser  # noqa: F401  (a fixture: pages in Chromium)
from tests.support.catalog import built_in
from tests.web.browsing import fresh_page

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "quiver.db"), built_in())
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def base_url(store: Store) -> Iterator[str]:
    app = create_app(None, store, built_in())
    mount_pages(app, https=False)
    with serving(app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    """A browser-like client: keeps cookies, sends this site's Origin on posts."""
    with httpx.Client(base_url=base_url, timeout=30, headers={"Origin": base_url}) as made:
        yield made


@pytest.fixture
def screenshots() -> Path:
    """Where the browser tests save their screenshots (``QUIVER_SCREENSHOTS``)."""
    folder = Path(os.environ.get("QUIVER_SCREENSHOTS") or ROOT / "tests-artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Page]:  # noqa: F811  (the fixture above)
    """A page of a fresh browser context, which must load nothing from outside the
    admin API (tests.web.browsing)."""
    yield from fresh_page(browser, base_url)
