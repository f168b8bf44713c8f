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

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from quiver.store import Store
from quiver.store.tokens import create_token
from tests.web.two_teams import (
    Beta,
    console_sign_in,
    crawl,
    populate,
    portal_sign_in,
    with_team,
)


@pytest.fixture
def beta(base_url: str, store: Store, tmp_path: Path) -> Beta:
    return populate(base_url, store, tmp_path)


@pytest.mark.parametrize("surface", ["portal", "console"])
def test_no_page_shows_another_teams_apps_keys_subscriptions_calls_or_spend(
    base_url: str, beta: Beta, surface: str
) -> None:
    with httpx.Client(base_url=base_url, timeout=30, headers={"Origin": base_url}) as client:
        if surface == "portal":
            portal_sign_in(client, "dana@example.com")
        else:
            console_sign_in(client, "dana@example.com")
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
