"""Merge on the primary key, lists in child tables: what a record loaded again replaces."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.sync.pages import serving
from tests.sync.test_sync import sync

#: a record with a key of two columns, seen again on the second page with a new list
TWO_PAGES = {
    "/q1": {
        "data": [
            {"a": 1, "b": "x", "v": 1, "tags": ["t1", "t2"]},
            {"a": 2, "b": "x", "v": 1, "tags": ["t3"]},
        ],
        "next": "/q2",
    },
    "/q2": {"data": [{"a": 1, "b": "x", "v": 2, "tags": ["t9"]}], "next": None},
}

COMPOSITE = """\
sources:
  - name: s
    base_url: {base}
    resources:
      - {{name: ck, path: /q1, data_selector: data, primary_key: [a, b], write_mode: merge}}
destination: {destination}
"""


def two_pages(path: str, query: dict[str, str]) -> Any:
    return TWO_PAGES[path]


def query(scheme: str, target: Path, sql: str) -> list[tuple[Any, ...]]:
    if scheme == "sqlite":
        with sqlite3.connect(target) as connection:
            return connection.execute(sql).fetchall()
    with duckdb.connect(str(target), read_only=True) as connection:
        return connection.execute(sql).fetchall()


@pytest.mark.parametrize("scheme", ["duckdb", "sqlite"])
@pytest.mark.parametrize("batch", ["", "batch_rows: 1\n"])
def test_a_key_of_two_columns_keeps_one_row_and_the_last_list_per_record(
    tmp_path: Path, scheme: str, batch: str
) -> None:
    target = tmp_path / "out.db"
    text = COMPOSITE.format(base="{base}", destination=f"{scheme}:///{target}") + batch
    with serving(two_pages) as (base, _):
        for _ in range(2):
            assert sync(tmp_path, text.replace("{base}", base)) == 0
            assert query(scheme, target, "SELECT a, b, v FROM ck ORDER BY a") == [
                (1, "x", 2),
                (2, "x", 1),
            ]
            assert query(
                scheme,
                target,
                "SELECT ck.a, t.value FROM ck__tags AS t "
                "JOIN ck ON ck._quiver_row = t._parent_id ORDER BY ck.a, t._idx",
            ) == [(1, "t9"), (2, "t3")]
            assert query(scheme, target, "SELECT count(*) FROM ck__tags") == [(2,)]


def test_an_empty_list_adds_no_rows_and_no_columns(tmp_path: Path) -> None:
    pages = {
        "/first": [{"id": 1, "lines": [{"sku": "a", "qty": 1}]}],
        "/later": [{"id": 2, "lines": []}],
        "/empty": [{"id": 3, "lines": []}],
    }
    database = tmp_path / "out.duckdb"
    text = textwrap.dedent(
        f"""\
        sources:
          - name: s
            base_url: {{base}}
            resources:
              - {{{{name: r1, path: /first, table_name: t, primary_key: id}}}}
              - {{{{name: r2, path: /later, table_name: t, primary_key: id}}}}
              - {{{{name: r3, path: /empty, primary_key: id}}}}
        destination: duckdb:///{database}
        """
    )
    with serving(lambda path, query: pages[path]) as (base, _):
        assert sync(tmp_path, text.format(base=base)) == 0
    assert query("duckdb", database, "SELECT column_name FROM (DESCRIBE t__lines)") == [
        ("_parent_id",),
        ("_idx",),
        ("sku",),
        ("qty",),
    ]
    assert query("duckdb", database, "SELECT _parent_id, sku FROM t__lines") == [(1, "a")]
    assert query("duckdb", database, "SELECT id FROM r3") == [(3,)]
    tables = query("duckdb", database, "SELECT table_name FROM information_schema.tables")
    assert ("r3__lines",) not in tables


@pytest.mark.parametrize(
    ("document", "selector"),
    [
        ([{"items": [1, 2]}, {"items": [3]}], None),
        ({"data": [{"items": [1, 2]}, {"items": [3]}]}, "data"),
        ({"data": [{"id": 1}, {"id": 2}], "next": None}, None),
    ],
)
def test_records_with_only_lists_get_row_numbers_for_their_items(
    tmp_path: Path, document: Any, selector: str | None
) -> None:
    database = tmp_path / "out.duckdb"
    selected = f", data_selector: {selector}" if selector else ""
    text = textwrap.dedent(
        f"""\
        sources:
          - name: s
            base_url: {{base}}
            resources:
              - {{{{name: ol, path: /onlylist{selected}}}}}
        destination: duckdb:///{database}
        """
    )
    with serving(lambda path, query: document) as (base, _):
        assert sync(tmp_path, text.format(base=base)) == 0
    records = document if isinstance(document, list) else document["data"]
    expected = 1 if selector is None and isinstance(document, dict) else len(records)
    assert query("duckdb", database, "SELECT count(*) FROM ol") == [(expected,)]
    [(children,)] = query(
        "duckdb",
        database,
        "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'ol__%'",
    )
    assert children == 1
