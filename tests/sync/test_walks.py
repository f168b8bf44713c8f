"""Walks that must load every record once: capped limits, pages numbered from 0, a
page naming itself, an integer cursor asked again with a lookback."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.sync.pages import serving
from tests.sync.test_sync import sync

pytestmark = pytest.mark.timeout(60)

RECORDS = [{"id": n} for n in range(1, 101)]


def config(base: str, database: Path, resource: str) -> str:
    return textwrap.dedent(
        f"""\
        sources:
          - name: api
            base_url: {base}
            resources:
              - {resource}
        destination: duckdb:///{database}
        """
    )


def loaded(database: Path, table: str = "r") -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}").fetchall()


@pytest.mark.parametrize("concurrency", [1, 8])
def test_an_offset_walk_loads_every_record_when_the_server_caps_the_limit(
    tmp_path: Path, concurrency: int
) -> None:
    def capped(path: str, query: dict[str, str]) -> Any:
        offset, limit = int(query["offset"]), min(int(query["limit"]), 10)
        return {"items": RECORDS[offset : offset + limit], "total": len(RECORDS)}

    paginator = "{type: offset, limit: 25, total_path: total}"
    resource = f"{{name: r, path: /o, data_selector: items, paginator: {paginator}}}"
    text = config("{base}", tmp_path / "out.duckdb", resource)
    text = text.replace("    resources:", f"    concurrency: {concurrency}\n    resources:")
    with serving(capped) as (base, _):
        assert sync(tmp_path, text.replace("{base}", base)) == 0
    assert loaded(tmp_path / "out.duckdb") == [(100, 100)]


def test_detected_pages_numbered_from_0_are_all_loaded(tmp_path: Path) -> None:
    def from_0(path: str, query: dict[str, str]) -> Any:
        page = int(query.get("page", "0"))
        return {"data": RECORDS[page * 10 : page * 10 + 10], "total_pages": 10}

    database = tmp_path / "out.duckdb"
    with serving(from_0) as (base, _):
        resource = "{name: r, path: /p, data_selector: data}"
        assert sync(tmp_path, config(base, database, resource)) == 0
    assert loaded(database) == [(100, 100)]


def test_a_page_naming_itself_as_the_next_is_loaded_once(tmp_path: Path) -> None:
    database = tmp_path / "out.duckdb"
    page = {"data": [{"id": 1}], "next": "/self"}
    with serving(lambda path, query: page) as (base, seen):
        resource = "{name: r, path: /self, data_selector: data}"
        assert sync(tmp_path, config(base, database, resource)) == 0
    assert seen == ["/self"]
    assert loaded(database) == [(1, 1)]


def test_an_integer_cursor_less_the_lookback_stays_an_integer(tmp_path: Path) -> None:
    database = tmp_path / "out.duckdb"
    incremental = "{cursor_path: id, start_param: since_id, initial_value: 0, lookback: 3}"
    resource = (
        f"{{name: r, path: /ids, primary_key: id, write_mode: merge, incremental: {incremental}}}"
    )
    asked: list[str] = []

    def ids(path: str, query: dict[str, str]) -> Any:
        asked.append(query["since_id"])
        return [r for r in RECORDS if r["id"] > int(query["since_id"])]

    with serving(ids) as (base, _):
        assert sync(tmp_path, config(base, database, resource)) == 0
        assert sync(tmp_path, config(base, database, resource)) == 0
    assert asked == ["0", "97"]
    with duckdb.connect(str(database), read_only=True) as connection:
        [(start, cursor)] = connection.execute(
            "SELECT start, cursor FROM _quiver_sync_state WHERE resource = 'r'"
        ).fetchall()
    assert (start, cursor) == ("97", "100")
    assert loaded(database) == [(100, 100)]
