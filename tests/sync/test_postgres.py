"""``quiver sync`` into the shared PostgreSQL, in a schema of its own per test.

Unreachable, these tests are skipped with the reason, or fail when ``CI=true``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.store.conftest import postgres_schema_url
from tests.sync.pages import serving
from tests.sync.test_merge import COMPOSITE, two_pages
from tests.sync.test_sync import SHOP, shop_pages, sync


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from postgres_schema_url()


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql.encode()).fetchall()


def test_merge_into_postgresql_holds_each_record_once(tmp_path: Path, postgres: str) -> None:
    text = SHOP.format(base="{base}", destination=postgres)
    with serving(shop_pages) as (base, _):
        assert sync(tmp_path, text.replace("{base}", base)) == 0
        assert sync(tmp_path, text.replace("{base}", base)) == 0
    assert rows(postgres, "SELECT count(*), count(DISTINCT id) FROM items") == [(50, 50)]
    assert rows(postgres, "SELECT count(*) FROM items__tags") == [(45,)]
    assert rows(postgres, "SELECT owner__email FROM items WHERE id = 4") == [("o1@example.com",)]
    [(status, cursor)] = rows(
        postgres, "SELECT status, cursor FROM _quiver_sync_state WHERE resource = 'items'"
    )
    assert (status, cursor) == ("done", '"2024-01-05T00:00:00Z"')


def test_postgresql_columns_widen_and_keep_nulls_apart_from_empty_text(
    tmp_path: Path, postgres: str
) -> None:
    def pages(path: str, query: dict[str, str]) -> Any:
        if query["page"] == "1":
            return {"data": [{"id": 1, "n": 1, "note": ""}], "total_pages": 2}
        return {"data": [{"id": 2, "n": 2.5, "note": None}], "total_pages": 2}

    text = (
        "sources:\n"
        "  - name: s\n"
        "    base_url: {base}\n"
        "    resources:\n"
        "      - name: t\n"
        "        path: /t\n"
        "        data_selector: data\n"
        "        paginator: {{type: page_number, base_page: 1, total_path: total_pages}}\n"
        f"destination: {postgres}\n"
    )
    with serving(pages) as (base, _):
        assert sync(tmp_path, text.format(base=base)) == 0
    assert rows(postgres, "SELECT id, n, note FROM t ORDER BY id") == [(1, 1.0, ""), (2, 2.5, None)]


def test_postgresql_merges_on_a_key_of_two_columns_with_the_last_lists(
    tmp_path: Path, postgres: str
) -> None:
    text = COMPOSITE.format(base="{base}", destination=postgres)
    with serving(two_pages) as (base, _):
        assert sync(tmp_path, text.replace("{base}", base)) == 0
        assert sync(tmp_path, text.replace("{base}", base)) == 0
    assert rows(postgres, "SELECT a, b, v FROM ck ORDER BY a") == [(1, "x", 2), (2, "x", 1)]
    assert rows(
        postgres,
        "SELECT ck.a, t.value FROM ck__tags AS t "
        "JOIN ck ON ck._quiver_row = t._parent_id ORDER BY ck.a, t._idx",
    ) == [(1, "t9"), (2, "t3")]
    assert rows(postgres, "SELECT count(*) FROM ck__tags") == [(2,)]
