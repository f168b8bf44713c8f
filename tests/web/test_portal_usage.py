"""An app's usage on its page, over HTTP: the calls of the consumer the app is (to
any team's routes), never another app's or another team's, over the window chosen."""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from quiver.calls import Ingester
from quiver.store import Store
from tests.calls.synthetic import records, with_spend, write_spools
from tests.web.test_portal_pages import create_app, sign_up

HOUR = 3_600_000


def _ingest(store: Store, folder: Path, items: list[dict[str, Any]]) -> None:
    write_spools(folder, items, per_file=1000)
    assert Ingester(store.engine, folder).run_once() == len(items)


@pytest.fixture
def made(store: Store, tmp_path: Path) -> list[dict[str, Any]]:
    """600 calls of the last hour and 300 of two days ago, by the consumers of
    tests.calls.synthetic (``shop.carol`` is app ``carol`` of team ``shop``); half
    of the recent ones went to a model."""
    now = int(time.time() * 1000)
    recent = with_spend(records(600, now - HOUR + 60_000, HOUR - 120_000))
    older = records(300, now - 50 * HOUR, HOUR, seed=11)
    _ingest(store, tmp_path / "calls", [*recent, *older])
    return [*recent, *older]


def _stat(page: str, label: str) -> str:
    found = re.search(rf'{label}</p><p class="stat-value">([^<]+)<', page)
    assert found, f"no {label} figure"
    return found.group(1).strip()


def _carols(items: list[dict[str, Any]], since_ms: int) -> list[dict[str, Any]]:
    return [item for item in items if item["consumer"] == "shop.carol" and _ms(item) >= since_ms]


def _ms(item: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(item["time"]).timestamp() * 1000)


def test_an_app_page_shows_its_own_calls(client: httpx.Client, made: list[dict[str, Any]]) -> None:
    team = sign_up(client, "shop@example.com")
    assert team == "shop"
    create_app(client, team, "carol")
    page = client.get("/portal/apps/carol")
    assert page.status_code == 200
    text = page.text
    assert "Usage in the last 24 hours" in text
    day = _carols(made, int(time.time() * 1000) - 24 * HOUR)
    assert 0 < int(_stat(text, "Calls")) == len(day)
    errors = sum(item["status"] >= 500 for item in day)
    assert _stat(text, r"Errors \(5xx\)").startswith(str(errors))
    assert ">Requests and errors per hour<" in text and ">Latency p50, p95, p99<" in text
    assert "p50" in text and "p95" in text and "p99" in text and 'role="img"' in text
    spent = sum(item["ai"]["cost"] for item in day if "ai" in item)
    assert _stat(text, "AI spend").startswith(f"${spent:.4f}")
    assert 'aria-current="true">24 hours<' in text
    assert "charts.css" in text


def test_the_window_chooses_the_range_and_the_interval(
    client: httpx.Client, made: list[dict[str, Any]]
) -> None:
    team = sign_up(client, "shop@example.com")
    create_app(client, team, "carol")
    now = int(time.time() * 1000)
    hour = client.get("/portal/apps/carol?window=1h")
    assert "Usage in the last hour" in hour.text and ">Requests and errors per minute<" in hour.text
    assert int(_stat(hour.text, "Calls")) == len(_carols(made, now - HOUR - 60_000))
    week = client.get("/portal/apps/carol?window=7d")
    assert "Usage in the last 7 days" in week.text
    assert int(_stat(week.text, "Calls")) == len(_carols(made, 0))
    assert int(_stat(week.text, "Calls")) > int(_stat(hour.text, "Calls"))
    assert client.get("/portal/apps/carol?window=1y").status_code == 400


def test_another_apps_calls_are_not_shown(client: httpx.Client, made: list[dict[str, Any]]) -> None:
    team = sign_up(client, "shop@example.com")
    create_app(client, team, "dave")  # (no call was made with its key)
    page = client.get("/portal/apps/dave")
    assert "No calls in the last 24 hours" in page.text
    assert "Calls</p>" not in page.text and "AI spend" not in page.text


def test_another_teams_app_is_not_found(
    client: httpx.Client, made: list[dict[str, Any]], base_url: str
) -> None:
    with httpx.Client(base_url=base_url, timeout=30, headers={"Origin": base_url}) as owner:
        shop = sign_up(owner, "shop@example.com")
        create_app(owner, shop, "carol")
    other = sign_up(client, "eve@example.com")
    assert other == "eve"
    for address in ("/portal/apps/carol?team=shop", "/portal/apps/carol?team=shop&window=7d"):
        page = client.get(address)
        assert page.status_code == 404 and "Page not found" in page.text
    own = client.get("/portal/apps/carol")  # (eve's own team has no app carol)
    assert own.status_code == 404
