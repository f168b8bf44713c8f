"""A fresh SQLite store per test, with its schema (accounts included)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from quiver.store import Store, open_store


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    return str(tmp_path / "quiver.db")


@pytest.fixture
def store(store_path: str) -> Iterator[Store]:
    opened = open_store(store_path)
    try:
        yield opened
    finally:
        opened.close()
