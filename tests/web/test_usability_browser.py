"""Every page of the portal and the console, as Chromium renders it, for a developer
and for a platform operator (who sees every form): each visible field has a visible
label, each button and link a name, each table a caption, each chart a name; the
pages load nothing from outside and run no script.  With the keyboard alone, Tab
reaches every link, button and field on the page, and each shows that it has focus.

The pages are those a crawl reaches from each surface's home page (tests.web.two_teams),
one of each kind: the call pages of the console differ only in their request id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from quiver.accounts.users import create_user
from quiver.store import Store
from tests.web.browsing import fresh_page
from tests.web.forms import PASSWORD
from tests.web.two_teams import console_sign_in, crawl, populate, portal_sign_in

#: what the audit finds wrong on the page it runs in (a list of sentences)
_AUDIT = """() => {
  const shown = (el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 1 && box.height > 1 && style.visibility !== 'hidden'
      && style.clip !== 'rect(0px, 0px, 0px, 0px)';
  };
  const text = (el) => (el.textContent || '').replace(/\\s+/g, ' ').trim();
  const what = (el) => el.outerHTML.slice(0, 140);
  const wrong = [];
  for (const field of document.querySelectorAll('input, select, textarea')) {
    if (field.type === 'hidden' || !shown(field)) continue;
    const labels = [...(field.labels || [])].filter((label) => shown(label) && text(label));
    if (!labels.length) wrong.push('a field without a visible label: ' + what(field));
  }
  for (const button of document.querySelectorAll('button, input[type=submit]')) {
    const name = button.getAttribute('aria-label') || text(button) || button.value;
    if (!name) wrong.push('a button without a name: ' + what(button));
  }
  for (const link of document.querySelectorAll('a[href]')) {
    if (!(link.getAttribute('aria-label') || text(link)))
      wrong.push('a link without a name: ' + what(link));
  }
  for (const table of document.querySelectorAll('table')) {
    const caption = table.querySelector('caption');
    if (!(caption && text(caption)) && !table.getAttribute('aria-label'))
      wrong.push('a table without a caption: ' + what(table));
  }
  for (const chart of document.querySelectorAll('svg[role=img]')) {
    if (!chart.getAttribute('aria-label') && !chart.getAttribute('aria-labelledby'))
      wrong.push('a chart without a name: ' + what(chart));
  }
  const ids = [...document.querySelectorAll('[id]')].map((el) => el.id);
  const twice = ids.filter((id, index) => ids.indexOf(id) !== index);
  if (twice.length) wrong.push('ids used twice: ' + [...new Set(twice)].join(', '));
  if (!document.querySelector('main')) wrong.push('no <main>');
  if (!document.querySelector('h1')) wrong.push('no <h1>');
  if (!document.documentElement.lang) wrong.push('no lang on <html>');
  if (document.querySelector('script')) wrong.push('a <script>');
  return wrong;
}"""


#: marks each visible control of the page (``data-audit``) and returns how many
_CONTROLS = """() => {
  const shown = (el) => {
    const box = el.getBoundingClientRect();
    return box.width > 1 && box.height > 1 && getComputedStyle(el).visibility !== 'hidden';
  };
  const controls = [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex="0"]'
  )].filter((el) => !el.disabled && shown(el));
  controls.forEach((el, index) => { el.dataset.audit = String(index); });
  return controls.length;
}"""
#: the control that has focus now (its mark, or null), and whether its focus shows
_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return [null, true];
  const style = getComputedStyle(el);
  const ring = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  return [el.dataset.audit ?? el.tagName, ring || style.boxShadow !== 'none'];
}"""


def kinds(urls: list[str]) -> list[str]:
    """One URL of each kind: the first of those that differ only in ids and numbers."""
    chosen: dict[str, str] = {}
    for url in sorted(urls):
        shape = re.sub(r"req-[a-z]+-\d+|\d+", "N", url)
        chosen.setdefault(shape, url)
    return sorted(chosen.values())


def audit(page: Page, base: str, urls: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for url in urls:
        answer = page.goto(base + url)
        assert answer is not None and answer.status in (200, 303), (url, answer and answer.status)
        wrong: list[str] = page.evaluate(_AUDIT) + tab_through(page)
        if wrong:
            found[url] = wrong
    return found


def tab_through(page: Page) -> list[str]:
    """What the keyboard cannot do on the page: controls Tab never reaches, and
    controls that do not show their focus."""
    count: int = page.evaluate(_CONTROLS)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    reached: set[str] = set()
    unseen: set[str] = set()
    for _ in range(count + 5):  # (the skip link and the page itself come first)
        page.keyboard.press("Tab")
        mark, ring = page.evaluate(_FOCUSED)
        if mark is None:
            continue
        if mark in reached:
            break  # round the page once
        reached.add(mark)
        if not ring:
            unseen.add(mark)
    missed = {str(index) for index in range(count)} - reached
    return [f"Tab does not reach control {mark}" for mark in sorted(missed)] + [
        f"control {mark} does not show its focus" for mark in sorted(unseen)
    ]


@pytest.mark.parametrize(
    ("email", "surface"),
    [
        ("dana@example.com", "portal"),
        ("dana@example.com", "console"),
        ("root@example.com", "portal"),
        ("root@example.com", "console"),
    ],
)
def test_every_page_labels_its_fields_and_names_its_buttons(
    browser: Any, base_url: str, store: Store, tmp_path: Path, email: str, surface: str
) -> None:
    populate(base_url, store, tmp_path)
    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    with httpx.Client(base_url=base_url, timeout=30, headers={"Origin": base_url}) as client:
        (portal_sign_in if surface == "portal" else console_sign_in)(client, email)
        urls = kinds(list(crawl(client, f"/{surface}")))
        cookies = [
            {"name": cookie.name, "value": cookie.value or "", "url": base_url}
            for cookie in client.cookies.jar
        ]
    assert len(urls) >= (5 if surface == "portal" else 12), urls
    for page in fresh_page(browser, base_url):
        page.context.add_cookies(cookies)  # type: ignore[arg-type]
        page.goto(f"{base_url}/{surface}")
        assert page.url.endswith(f"/{surface}"), page.url  # (signed in)
        assert audit(page, base_url, urls) == {}
