"""Stores for the webhook tests: a SQLite file and the shared PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quiver.store import Store, open_store
from tests.store.conftest import postgres_schema_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = str(tmp_path / "quiver.db")
        opened = open_store(url)
        yield opened
        opened.close()
    else:
        for url in postgres_schema_url():
            opened = open_store(url)
            yield opened
            opened.close()
