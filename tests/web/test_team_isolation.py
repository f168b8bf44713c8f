"""A developer of one team sees nothing of another team's apps, keys, subscriptions,
calls or spend: not on any page of the portal or the console, and not through the
admin API with a token of their team.

Team ``beta``'s developer signs up in the portal, creates an app and asks for a plan
of team ``payments``' API; its app's calls and AI spend are in the call log.  Team
``alpha``'s developer (a ``developer`` member, not an owner) does the same.  Then
every page the alpha developer can reach by following links from the portal's and
the console's home pages is read, and each of them again with ``?team=beta``, and
every admin API read of a token scoped to ``alpha``: none may show what is beta's.
"""

from __future__ import annotations

import html
import re
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from quiver.accounts.memberships import set_membership
from quiver.accounts.users import create_user
from quiver.calls import Ingester
from quiver.store import Store
from quiver.store.secrets import sha256_hash
from quiver.store.teams import create_team
from quiver.store.tokens import create_token
from tests.calls.synthetic import records, with_spend, write_spools
from tests.web.forms import PASSWORD, submit
from tests.web.test_console_helpers import operator_client
from tests.web.test_portal_pages import create_app, post, sign_up

#: the most pages a crawl reads (the pages of a surface are far fewer)
CRAWL_LIMIT = 400
_LINK = re.compile(r'href="(/(?:portal|console)[^"#]*)"')


def payments_document() -> dict[str, Any]:
    return {
        "targets": [{"name": "ledger", "url": "http://127.0.0.1:9"}],
        "routes": [{"name": "orders", "paths": ["/orders"], "target": "ledger"}],
        "apis": [
            {
                "name": "orders",
                "title": "Orders API",
                "routes": ["orders"],
                "state": "published",
                "plans": [{"name": "gold", "approval": "manual"}],
            }
        ],
    }


class Beta:
    """What team beta has that nobody else may see."""

    def __init__(self, key: str, request_ids: list[str]) -> None:
        self.key = key
        self.request_ids = request_ids
        self.markers = [
            "beta-secret-app",
            "beta@example.com",
            "beta-private-path",
            "beta-only-model",
            key,
            sha256_hash(key),
            *request_ids,
        ]

    def shown_in(self, text: str, asked: str = "") -> list[str]:
        """The markers in ``text`` (but those the request ``asked`` named itself)."""
        found = [marker for marker in self.markers if marker in text and marker not in asked]
        if re.search(r"\bbeta\b", text):  # (the team's name)
            found.append("beta")
        return found


@pytest.fixture
def beta(base_url: str, store: Store, tmp_path: Path) -> Beta:
    """Teams payments (a published API), beta and alpha, each with an app that asked
    for payments' plan and has calls and spend in the call log."""
    with operator_client(base_url, store) as operator:
        create_team(store, "payments")
        applied = operator.post(
            "/config/apply", params={"team": "payments"}, json={"document": payments_document()}
        )
        assert applied.status_code == 200, applied.text
    with httpx.Client(base_url=base_url, timeout=30, headers={"Origin": base_url}) as client:
        assert sign_up(client, "beta@example.com") == "beta"
        key = create_app(client, "beta", "beta-secret-app")
        _ask(client, "beta", "beta-secret-app")
    create_team(store, "alpha")
    dana = create_user(store, "dana@example.com", PASSWORD)
    set_membership(store, dana.id, "alpha", "developer")
    with httpx.Client(base_url=base_url, timeout=30, headers={"Origin": base_url}) as client:
        _portal_sign_in(client, "dana@example.com")
        create_app(client, "alpha", "alpha-app")
        _ask(client, "alpha", "alpha-app")
    ids = _log_calls(store, tmp_path)
    return Beta(key, ids)


def _ask(client: httpx.Client, team: str, app: str) -> None:
    page = "/portal/apis/payments.orders"
    asked = post(client, page, f"{page}/subscribe", team=team, app=app, plan="gold")
    assert asked.status_code == 303, asked.text[:500]


def _portal_sign_in(client: httpx.Client, email: str) -> None:
    signed = submit(client, "/portal/signin", "/portal/signin", email=email, password=PASSWORD)
    assert signed.status_code == 303, signed.text[:500]


def _console_sign_in(client: httpx.Client, email: str) -> None:
    signed = submit(client, "/console/signin", "/console/signin", email=email, password=PASSWORD)
    assert signed.status_code == 303, signed.text[:500]


def _log_calls(store: Store, tmp_path: Path) -> list[str]:
    """Calls of both apps to payments' API, half of them to a model, some failed;
    beta's request ids."""
    now = int(time.time() * 1000)
    made = with_spend(records(200, now - 1_800_000, 1_700_000))
    beta_ids = []
    for index, call in enumerate(made):
        team = "beta" if index % 2 else "alpha"
        call["route"] = "payments.orders"
        call["target"] = "payments.ledger"
        call["consumer"] = f"{team}.{team}-secret-app" if team == "beta" else "alpha.alpha-app"
        call["request_id"] = f"req-{team}-{index:04d}"
        call["path"] = f"/orders/{team}-private-path/{index}"
        if "ai" in call:
            call["ai"]["model"] = f"{team}-only-model"
            call["ai"].pop("team", None)
        if team == "beta":
            beta_ids.append(call["request_id"])
    write_spools(tmp_path / "calls", made, per_file=200)
    assert Ingester(store.engine, tmp_path / "calls").run_once() == len(made)
    return beta_ids


def crawl(client: httpx.Client, start: str) -> dict[str, httpx.Response]:
    """Every page reachable from ``start`` by following links of its surface."""
    surface = start.split("/")[1]
    seen: dict[str, httpx.Response] = {}
    waiting = deque([start])
    while waiting and len(seen) < CRAWL_LIMIT:
        url = waiting.popleft()
        if url in seen:
            continue
        answer = client.get(url)
        seen[url] = answer
        links = _LINK.findall(answer.text)
        if answer.is_redirect:
            links.append(answer.headers["location"])
        for link in links:
            link = html.unescape(link)
            if link.split("/")[1].partition("?")[0] == surface and link not in seen:
                waiting.append(link)
    assert len(seen) < CRAWL_LIMIT, "the crawl did not end"
    return seen


def with_team(url: str, team: str) -> str:
    parts = urlsplit(url)
    query = [(name, value) for name, value in parse_qsl(parts.query) if name != "team"]
    return f"{parts.path}?{urlencode([*query, ('team', team)])}"


@pytest.mark.parametrize("surface", ["portal", "console"])
def test_no_page_shows_another_teams_apps_keys_subscriptions_calls_or_spend(
    base_url: str, beta: Beta, surface: str
) -> None:
    with httpx.Client(base_url=base_url, timeout=30, headers={"Origin": base_url}) as client:
        if surface == "portal":
            _portal_sign_in(client, "dana@example.com")
        else:
            _console_sign_in(client, "dana@example.com")
        pages = crawl(client, f"/{surface}")
        assert len(pages) >= (5 if surface == "portal" else 8), sorted(pages)
        for url, answer in pages.items():
            assert answer.status_code in (200, 303), (url, answer.status_code)
            assert beta.shown_in(answer.text) == [], url
        mine = "\n".join(answer.text for answer in pages.values())
        assert "alpha-app" in mine  # (what the crawl read is alpha's own)
        if surface == "console":
            assert "req-alpha-" in mine and "alpha-only-model" in mine

        for url in sorted({with_team(url, "beta") for url in pages}):
            probed = client.get(url)
            assert probed.status_code in (200, 303, 404), (url, probed.status_code)
            shown = beta.shown_in(probed.text)
            assert shown in ([], ["beta"]) and (shown == [] or probed.status_code == 404), url

        direct = [
            f"/{surface}/apps/beta-secret-app",
            f"/{surface}/apps/beta-secret-app?team=beta",
            f"/{surface}/calls/{beta.request_ids[0]}",
            f"/{surface}/calls/{beta.request_ids[0]}?team=beta",
        ]
        for url in direct:
            refused = client.get(url)
            assert refused.status_code == 404, url
            assert beta.shown_in(refused.text, url) in ([], ["beta"]), url


def test_a_team_token_reads_nothing_of_another_team(
    base_url: str, store: Store, beta: Beta
) -> None:
    _, token = create_token(store, "alpha-dev", "editor", "alpha")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as api:
        day = {"from": datetime.fromtimestamp(time.time() - 86_400, UTC).isoformat()}
        reads: dict[str, dict[str, str | int]] = {
            "/consumers": {},
            "/subscriptions": {},
            "/calls": {"limit": 1000},
            "/analytics/requests": {**day, "by": "consumer", "bucket": "hour"},
            "/analytics/top": {**day, "dimension": "consumers"},
            "/analytics/ai/spend": {**day, "by": "consumer", "bucket": "hour"},
            "/analytics/ai/top": {**day, "dimension": "consumers"},
            "/revisions": {},
            "/config": {},
        }
        for path, params in reads.items():
            answer = api.get(path, params=params)
            assert answer.status_code == 200, (path, answer.text)
            assert beta.shown_in(answer.text) == [], path
            if path in ("/calls", "/analytics/top", "/consumers"):
                assert "alpha-app" in answer.text, path
            refused = api.get(path, params={**params, "team": "beta"})
            assert refused.status_code == 404, (path, refused.status_code)
            assert beta.shown_in(refused.text) in ([], ["beta"]), path
        for path in (
            "/consumers/beta-secret-app",
            "/consumers/beta-secret-app/credentials",
            f"/calls/{beta.request_ids[0]}",
        ):
            for query in ("", "?team=beta"):
                answer = api.get(path + query)
                assert answer.status_code == 404, (path, query, answer.status_code)
                assert beta.shown_in(answer.text, path) in ([], ["beta"]), path
        beta_requests = [
            item["id"]
            for item in api.get("/subscriptions", params={"api": "payments.orders"}).json()["data"]
        ]
        assert len(beta_requests) == 1  # alpha's own request, and not beta's
        assert api.get("/subscriptions/1").status_code == 404  # beta asked first
