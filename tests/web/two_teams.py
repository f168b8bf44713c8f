"""Two teams' developers and their apps, subscription requests, calls and spend, for
the tests of what each person sees; and a crawl of the pages a person can reach.
(No tests here.)"""

from __future__ import annotations

import html
import re
import time
from collections import deque
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from quiver.accounts.memberships import set_membership
from quiver.accounts.users import create_user
from quiver.calls import Ingester
from quiver.store import Store
from quiver.store.secrets import sha256_hash
from quiver.store.teams import create_team
from tests.calls.synthetic import records, with_spend, write_spools
from tests.web.forms import PASSWORD, submit
from tests.web.test_console_helpers import operator_client, payments_document
from tests.web.test_portal_pages import create_app, post, sign_up

#: the most pages a crawl reads (the pages of a surface are far fewer)
CRAWL_LIMIT = 400
_LINK = re.compile(r'href="(/(?:portal|console)[^"#]*)"')


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


def populate(base_url: str, store: Store, tmp_path: Path) -> Beta:
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
        portal_sign_in(client, "dana@example.com")
        create_app(client, "alpha", "alpha-app")
        _ask(client, "alpha", "alpha-app")
    ids = _log_calls(store, tmp_path)
    return Beta(key, ids)


def _ask(client: httpx.Client, team: str, app: str) -> None:
    page = "/portal/apis/payments.orders"
    asked = post(client, page, f"{page}/subscribe", team=team, app=app, plan="free")
    assert asked.status_code == 303, asked.text[:500]


def portal_sign_in(client: httpx.Client, email: str) -> None:
    signed = submit(client, "/portal/signin", "/portal/signin", email=email, password=PASSWORD)
    assert signed.status_code == 303, signed.text[:500]


def console_sign_in(client: httpx.Client, email: str) -> None:
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
