"""Debian's Chromium for Playwright: found, or installed with apt when missing.

Pages are tested in a real browser.  Playwright drives the system's Chromium
(``/usr/bin/chromium``), not a browser it downloads: tests never reach the
internet for anything but the Debian package, which is installed here when it is
missing (as root, with apt).  Without one the test is skipped with the reason, or
fails when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

_NAMES = ("chromium", "chromium-browser")


def chromium_path() -> str | None:
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _install() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
        capture_output=True,
        timeout=600,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def chromium() -> str:
    """The path of Chromium, installing Debian's package first when there is none."""
    path = chromium_path()
    if path is None:
        _install()
        path = chromium_path()
    if path is None:
        reason = "Chromium is not installed (apt-get install chromium) and could not be"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def browser() -> Iterator[object]:
    """A headless Chromium driven by Playwright, for one test: Playwright's sync API
    runs an event loop on this thread while it is open, which the tests after it
    (asyncio.run, run_until_complete) must not find running."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()
