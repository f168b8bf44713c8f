"""The schema is created on a fresh database, left alone on restart, and a schema
newer than the code is refused."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from quiver.errors import StoreError
from quiver.store import open_store
from quiver.store.migrate import schema_head
from quiver.store.models import Base, Head, Team


def test_a_fresh_database_gets_the_whole_schema(store_url: str) -> None:
    store = open_store(store_url)
    tables = set(inspect(store.engine).get_table_names())
    assert set(Base.metadata.tables) | {"alembic_version"} <= tables
    with store.engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        assert version == schema_head()
        assert connection.execute(select(Team.name)).scalars().all() == ["default"]
        assert connection.execute(select(Head.revision)).scalars().all() == [0]
    store.close()


def test_opening_again_changes_nothing(store_url: str) -> None:
    store = open_store(store_url)
    store.apply({"targets": [{"name": "a", "url": "http://127.0.0.1:9001"}]}, author="test")
    store.close()
    again = open_store(store_url)
    with again.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Team)).scalar_one() == 1
        assert connection.execute(select(Head.revision)).scalars().all() == [1]
    assert again.current() == {"targets": [{"name": "a", "url": "http://127.0.0.1:9001"}]}
    again.close()


def test_a_schema_newer_than_the_code_is_refused(store_url: str) -> None:
    store = open_store(store_url)
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    store.close()
    with pytest.raises(StoreError, match=r"'9999_from_the_future'.*newer Quiver"):
        open_store(store_url)


def test_the_migrations_build_the_schema_the_models_declare(store_url: str) -> None:
    store = open_store(store_url)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    store.close()
    assert differences == []
