"""The console overview's traffic charts over HTTP: from the call log, scoped to the
teams one sees, with an empty state when no call was logged."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from quiver.accounts.users import create_user
from quiver.calls import Ingester
from quiver.store import Store
from quiver.store.teams import create_team
from tests.calls.synthetic import records, seen_by, write_spools
from tests.web.forms import PASSWORD
from tests.web.test_console_helpers import member, sign_in


def _calls(store: Store, tmp_path: Path) -> list[dict[str, Any]]:
    """500 calls of the last hour (the routes and consumers of tests.calls.synthetic)."""
    now = int(time.time() * 1000)
    made = records(500, now - 3_000_000, 2_900_000)
    write_spools(tmp_path / "calls", made, per_file=500)
    assert Ingester(store.engine, tmp_path / "calls").run_once() == 500
    return made


def _requests_stat(page: str) -> int:
    found = re.search(r'Requests</p><p class="stat-value">(\d+)<', page)
    assert found, "no Requests figure"
    return int(found.group(1))


def test_an_operator_sees_every_teams_traffic(
    client: httpx.Client, store: Store, tmp_path: Path
) -> None:
    made = _calls(store, tmp_path)
    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    sign_in(client, "root@example.com")
    home = client.get("/console")
    assert home.status_code == 200
    assert "Teams and roles" in home.text
    assert "Traffic in the last hour" in home.text and "every team" in home.text
    for title in ("Requests and errors per minute", "Latency per minute", "Top consumers"):
        assert f">{title}" in home.text
    assert "p50" in home.text and "p95" in home.text and "p99" in home.text
    assert "alice" in home.text and "shop.carol" in home.text
    assert 'role="img"' in home.text
    assert _requests_stat(home.text) == len(made)


def test_a_team_member_sees_only_their_teams_calls(
    client: httpx.Client, store: Store, tmp_path: Path
) -> None:
    made = _calls(store, tmp_path)
    create_team(store, "shop")
    member(store, "sam@example.com", "shop", "viewer")
    sign_in(client, "sam@example.com")
    home = client.get("/console")
    assert 'team <span class="mono">shop</span>' in home.text
    shops = [call for call in made if seen_by(call, "shop")]  # to its routes, or by its apps
    assert 0 < _requests_stat(home.text) == len(shops) < len(made)
    assert '<a href="/console/errors?team=shop">See the recent errors</a>' in home.text
    assert client.get("/console?team=default").status_code == 404


def test_no_call_log_shows_an_empty_state(client: httpx.Client, store: Store) -> None:
    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    sign_in(client, "root@example.com")
    home = client.get("/console")
    assert "No calls in the last hour" in home.text and "Teams and roles" in home.text
