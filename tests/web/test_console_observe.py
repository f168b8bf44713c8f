"""The console's recent errors, call pages, top consumers and AI spend over HTTP: what
the call log holds is what they show, a page at a time, scoped to the teams one sees."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from quiver.accounts.users import create_user
from quiver.calls import Ingester
from quiver.store import Store
from quiver.store.teams import create_team
from quiver.store.tokens import create_token
from tests.calls.synthetic import records, seen_by, with_spend, write_spools
from tests.web.forms import PASSWORD, submit
from tests.web.test_console_helpers import member, sign_in

_CALL_LINK = re.compile(r'href="/console/calls/([^"]+)"')
_NEXT = re.compile(r'rel="next" href="([^"]+)"')


def _ingest(store: Store, folder: Path, made: list[dict[str, Any]]) -> list[dict[str, Any]]:
    write_spools(folder, made, per_file=len(made))
    assert Ingester(store.engine, folder).run_once() == len(made)
    return made


@pytest.fixture
def logged(store: Store, tmp_path: Path) -> list[dict[str, Any]]:
    """300 calls of the last hour, every other one to a model; routes ``orders`` and
    ``users`` of team default, ``shop.cart`` of team shop (tests.calls.synthetic)."""
    create_team(store, "shop")
    now = int(time.time() * 1000)
    return _ingest(store, tmp_path / "calls", with_spend(records(300, now - 3_000_000, 2_900_000)))


def _operator(client: httpx.Client, store: Store) -> None:
    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    sign_in(client, "root@example.com")


def _errors(made: list[dict[str, Any]], team: str | None = None) -> list[str]:
    """The request ids of the calls answered 4xx or 5xx, newest first."""
    failed = [
        call for call in made if call["status"] >= 400 and (team is None or seen_by(call, team))
    ]
    failed.sort(key=lambda call: call["time"], reverse=True)
    return [call["request_id"] for call in failed]


def _every_page(client: httpx.Client, first: str) -> list[httpx.Response]:
    """The page at ``first``, then each one its "Next page" links to."""
    pages = [client.get(first)]
    while found := _NEXT.search(pages[-1].text):
        assert pages[-1].status_code == 200
        pages.append(client.get(found.group(1).replace("&amp;", "&")))
    return pages


def _row(page: str, name: str) -> list[str]:
    """The cells after the name cell of ``name``'s row in a table of the page."""
    found = re.search(
        rf'<td><span class="mono">{re.escape(name)}</span></td>(.*?)</tr>', page, re.S
    )
    assert found, f"no row of {name}"
    return re.findall(r'<td class="number">([^<]*)', found.group(1))


def test_recent_errors_are_listed_newest_first_a_page_at_a_time(
    client: httpx.Client, store: Store, logged: list[dict[str, Any]]
) -> None:
    _operator(client, store)
    pages = _every_page(client, "/console/errors")
    assert len(pages) > 2
    first = pages[0].text
    assert pages[0].status_code == 200 and "<h1>Recent errors</h1>" in first
    assert "every team" in first and "Page 1" in first
    for header in ("Time", "Status", "Method", "Path", "Route", "Consumer", "Request id"):
        assert f'<th scope="col">{header}</th>' in first
    assert "Page 2" in pages[1].text and 'href="/console/errors">First page</a>' in pages[1].text
    listed = [rid for page in pages for rid in _CALL_LINK.findall(page.text)]
    assert [len(_CALL_LINK.findall(page.text)) for page in pages[:-1]] == [20] * (len(pages) - 1)
    assert listed == _errors(logged)
    assert "shop.cart" in first and "orders" in first


def test_the_errors_narrow_to_one_class(
    client: httpx.Client, store: Store, logged: list[dict[str, Any]]
) -> None:
    _operator(client, store)
    pages = _every_page(client, "/console/errors?status=5xx")
    assert "?status=5xx&amp;cursor=" in pages[0].text
    listed = {rid for page in pages for rid in _CALL_LINK.findall(page.text)}
    assert listed == {call["request_id"] for call in logged if call["status"] >= 500}
    assert '<option value="5xx" selected>' in pages[0].text


def test_a_call_page_shows_its_record(
    client: httpx.Client, store: Store, logged: list[dict[str, Any]]
) -> None:
    _operator(client, store)
    call = next(c for c in logged if "ai" in c and c["consumer"] == "alice")
    shown = client.get(f"/console/calls/{call['request_id']}")
    assert shown.status_code == 200
    page = shown.text
    assert f'Call <span class="mono">{call["request_id"]}</span>' in page
    for label, value in (
        ("Status", str(call["status"])),
        ("Method", call["method"]),
        ("Path", call["path"]),
        ("Route", call["route"]),
        ("Target", call["target"]),
        ("Node", call["node"]),
        ("Consumer", "alice"),
        ("User agent", "synthetic/1"),
        ("Upstream", "1.5 ms"),
        ("Gateway", "0.25 ms"),
        ("Model", call["ai"]["model"]),
        ("Team", "data"),
        ("Prompt tokens", f"{call['ai']['prompt_tokens']:,}"),
        ("Time to first token", "12.5 ms"),
    ):
        assert re.search(rf"<dt>{label}</dt><dd>(<span class=\"mono\">)?{re.escape(value)}<", page)
    assert "AI spend" in page and "Header fields and bodies" in page
    missing = client.get("/console/calls/no-such-call")
    assert missing.status_code == 404 and "There is no call" in missing.text


def test_a_team_member_sees_only_their_teams_calls(
    client: httpx.Client, store: Store, logged: list[dict[str, Any]]
) -> None:
    member(store, "sam@example.com", "shop", "viewer")
    sign_in(client, "sam@example.com")
    errors = client.get("/console/errors")
    assert errors.status_code == 200 and 'team <span class="mono">shop</span>' in errors.text
    assert _CALL_LINK.findall(errors.text) == _errors(logged, "shop")[:20]
    shops = [call for call in logged if seen_by(call, "shop")]
    others = [call for call in logged if not seen_by(call, "shop")]
    assert client.get(f"/console/calls/{shops[0]['request_id']}").status_code == 200
    hidden = client.get(f"/console/calls/{others[0]['request_id']}")
    assert hidden.status_code == 404 and others[0]["path"] not in hidden.text
    for page in ("/console/errors", "/console/consumers", "/console/spend"):
        refused = client.get(f"{page}?team=default")
        assert refused.status_code == 404 and "There is no team" in refused.text

    consumers = client.get("/console/consumers").text
    counted = Counter(call["consumer"] for call in shops)
    for name in ("alice", "bob", "shop.carol"):
        assert _row(consumers, name)[0] == f"{counted[name]:,}"
    assert "(anonymous)" in consumers

    spend = client.get("/console/spend").text
    spent = [call for call in shops if "ai" in call]
    assert re.search(rf'AI calls</p><p class="stat-value">{len(spent)}<', spend)


def test_an_admin_token_that_views_every_team_sees_every_teams_calls(
    client: httpx.Client, store: Store, logged: list[dict[str, Any]]
) -> None:
    _, token = create_token(store, "watch", "viewer")
    signed = submit(client, "/console/signin", "/console/signin/token", token=token)
    assert signed.status_code == 303
    errors = client.get("/console/errors")
    assert _CALL_LINK.findall(errors.text) == _errors(logged)[:20]
    other = next(call for call in logged if call["route"] == "orders")
    assert client.get(f"/console/calls/{other['request_id']}").status_code == 200
    shop = client.get("/console/errors?team=shop")
    assert _CALL_LINK.findall(shop.text) == _errors(logged, "shop")[:20]
    for page in ("/console/consumers", "/console/spend"):
        assert client.get(page).status_code == 200


def test_top_consumers_count_the_calls_of_the_window(
    client: httpx.Client, store: Store, logged: list[dict[str, Any]]
) -> None:
    _operator(client, store)
    shown = client.get("/console/consumers")
    assert shown.status_code == 200 and "<h1>Top consumers</h1>" in shown.text
    page = shown.text
    assert '<option value="24h" selected>' in page
    assert 'role="img"' in page and "Top consumers by requests" in page
    for name, requests in Counter(call["consumer"] for call in logged).items():
        if name is None:
            continue
        cells = _row(page, name)
        failed = sum(1 for c in logged if c["consumer"] == name and c["status"] >= 500)
        assert cells[:3] == [f"{requests:,}", f"{failed:,}", f"{100 * failed / requests:.1f}%"]
        assert all(cell.endswith(" ms") for cell in cells[3:6])
    assert client.get("/console/consumers?window=7d").status_code == 200
    assert client.get("/console/consumers?window=2h").status_code == 400


def test_top_consumers_go_a_page_at_a_time(
    client: httpx.Client, store: Store, tmp_path: Path
) -> None:
    now = int(time.time() * 1000)
    made = records(90, now - 3_000_000, 2_900_000)
    for index, call in enumerate(made):
        call["consumer"] = f"app-{index % 45:02d}"
    _ingest(store, tmp_path / "calls", made)
    _operator(client, store)
    first = client.get("/console/consumers?window=7d").text
    assert "Page 1 of 3 &middot; 45 in all" in first
    assert 'href="/console/consumers?window=7d&amp;page=2"' in first
    last = client.get("/console/consumers?window=7d&page=3").text
    assert len(re.findall(r'<span class="mono">app-\d\d</span></td>', last)) == 5
    assert 'rel="prev" href="/console/consumers?window=7d&amp;page=2"' in last


def test_ai_spend_per_team_key_and_model(
    client: httpx.Client, store: Store, logged: list[dict[str, Any]]
) -> None:
    _operator(client, store)
    shown = client.get("/console/spend")
    assert shown.status_code == 200 and "<h1>AI spend</h1>" in shown.text
    page = shown.text
    spent = [call for call in logged if "ai" in call]
    tokens = sum(c["ai"]["prompt_tokens"] + c["ai"]["completion_tokens"] for c in spent)
    assert re.search(rf'Tokens</p><p class="stat-value">{tokens:,}<', page)
    for title in ("Spend per team", "Spend per key", "Spend per model", "Cost per hour"):
        assert f">{title}" in page
    assert page.count('role="img"') == 4
    for key, name in (("model", "gpt-4o-mini"), ("model", "claude-haiku"), ("team", "data")):
        group = [c["ai"] for c in spent if c["ai"].get(key) == name]
        total = sum(ai["prompt_tokens"] + ai["completion_tokens"] for ai in group)
        assert _row(page, name)[1:] == [
            f"{total:,}",
            f"{sum(ai['prompt_tokens'] for ai in group):,}",
            f"{sum(ai['completion_tokens'] for ai in group):,}",
            f"{len(group):,}",
        ]
    alice = [c for c in spent if c["consumer"] == "alice"]
    assert _row(page, "alice")[-1] == f"{len(alice):,}"
    assert client.get("/console/spend?window=1h").status_code == 200


def test_the_pages_are_in_the_navigation_and_say_when_nothing_is_logged(
    client: httpx.Client, store: Store
) -> None:
    _operator(client, store)
    home = client.get("/console").text
    for label, path in (("Errors", "errors"), ("Consumers", "consumers"), ("AI spend", "spend")):
        assert f'<a href="/console/{path}">{label}</a>' in home
    assert "No errors" in client.get("/console/errors").text
    assert "No calls in this window" in client.get("/console/consumers").text
    assert "No AI calls in this window" in client.get("/console/spend").text
    assert client.get("/console/errors?cursor=garbage").status_code == 422
