"""An admin API over a fresh SQLite store, served for real, and tokens of each role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from quiver.admin import create_app
from quiver.store import Store, open_store
from quiver.store.models import Role
from quiver.store.tokens import create_token
from tests.admin.server import serving
from tests.store.conftest import postgres_schema_url
from tests.support.browser import browser  # noqa: F401  (a fixture: /docs in Chromium)
from tests.support.catalog import built_in

MakeClient = Callable[..., httpx.Client]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(str(tmp_path / "quiver.db"), built_in())
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def base_url(store: Store) -> Iterator[str]:
    with serving(create_app(None, store, built_in())) as url:
        yield url


@pytest.fixture
def make_client(store: Store, base_url: str) -> Iterator[MakeClient]:
    """``make_client(role, team=None)``: a client holding a new token of that role."""
    clients: list[httpx.Client] = []
    made = 0

    def make(
        role: Role = "admin", team: str | None = None, name: str | None = None
    ) -> httpx.Client:
        nonlocal made
        made += 1
        _, token = create_token(store, name or f"{role}-{team or 'all'}-{made}", role, team)
        client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def admin(make_client: MakeClient) -> httpx.Client:
    return make_client("admin", name="root")


@pytest.fixture
def anonymous(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


@pytest.fixture
def pg_store_admin() -> Iterator[tuple[Store, httpx.Client]]:
    """The admin API over a PostgreSQL store (a schema of its own) and an admin
    client of it; skipped (failed under CI=true) when PostgreSQL is unreachable."""
    for url in postgres_schema_url():
        store = open_store(url, built_in())
        try:
            _, token = create_token(store, "root", "admin")
            with (
                serving(create_app(None, store, built_in())) as base,
                httpx.Client(
                    base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
                ) as client,
            ):
                yield store, client
        finally:
            store.close()
