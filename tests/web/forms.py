"""Filling the pages' forms from httpx, as a browser would."""

from __future__ import annotations

import re

import httpx

PASSWORD = "a long enough passphrase"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def submit(client: httpx.Client, page: str, action: str, **fields: str) -> httpx.Response:
    """Open ``page``, then post its form to ``action`` with the page's CSRF token."""
    shown = client.get(page)
    assert shown.status_code == 200, shown.text[:500]
    return client.post(action, data={"csrf": csrf_of(shown), **fields})
