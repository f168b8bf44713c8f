"""Stores for the tests: a SQLite file and, when it answers, the shared PostgreSQL.

PostgreSQL is at ``QUIVER_TEST_POSTGRES_URL`` (default the machine's own, trust
auth, database ``test``); each test gets a schema of its own, dropped afterwards.
Unreachable, its tests are skipped with the reason, or fail when ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from quiver.store import Store, open_store
from tests.support.catalog import built_in


def postgres_url() -> str:
    return os.environ.get("QUIVER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail when ``CI=true`` (CI always has the service)."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema of their own (dropped after)."""
    url = postgres_url()
    schema = f"quiver_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as connection:
            connection.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        where = make_url(url).render_as_string(hide_password=True)
        unavailable(f"PostgreSQL at {where} is unreachable ({exc}); set QUIVER_TEST_POSTGRES_URL")
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store, on each database."""
    if request.param == "sqlite":
        yield str(tmp_path / "quiver.db")
    else:
        yield from postgres_schema_url()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url, built_in())
    try:
        yield opened
    finally:
        opened.close()
