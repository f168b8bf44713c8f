"""A fresh store per test, on SQLite and on PostgreSQL (skipped when it does not answer)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quiver.store import Store, open_store
from tests.store.conftest import postgres_schema_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_path(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store, on each database."""
    if request.param == "sqlite":
        yield str(tmp_path / "quiver.db")
    else:
        yield from postgres_schema_url()


@pytest.fixture
def store(store_path: str) -> Iterator[Store]:
    opened = open_store(store_path)
    try:
        yield opened
    finally:
        opened.close()
