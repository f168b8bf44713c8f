"""``quiver sync`` end to end: a real HTTP server, real destinations, the real CLI."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pytest

from quiver.cli import main
from tests.sync.pages import items, serving

SHOP = """\
sources:
  - name: shop
    base_url: {base}
    auth: {{type: bearer, token: "${{SHOP_TOKEN}}"}}
    resources:
      - name: items
        path: /items
        data_selector: data
        paginator: {{type: page_number, page_param: page, base_page: 1, total_path: total_pages}}
        primary_key: id
        write_mode: merge
        incremental: {{cursor_path: updated_at, start_param: since, initial_value: "2024-01-01T00:00:00Z"}}
destination: {destination}
"""  # noqa: E501 (the form users write, verbatim)


def shop_pages(path: str, query: dict[str, str]) -> Any:
    return {"data": items(int(query["page"])), "total_pages": 5}


def sync(tmp_path: Path, text: str, *args: str) -> int:
    config = tmp_path / "sources.yaml"
    config.write_text(text)
    return main(["sync", "-c", str(config), *args])


def rows(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def test_the_documented_config_loads_as_written(tmp_path: Path) -> None:
    database = tmp_path / "shop.duckdb"
    with serving(shop_pages) as (base, seen):
        assert sync(tmp_path, SHOP.format(base=base, destination=f"duckdb:///{database}")) == 0
    assert len(seen) == 5
    assert all("since=2024-01-01T00%3A00%3A00Z" in request for request in seen)
    assert rows(database, "SELECT count(*), count(DISTINCT id) FROM items") == [(50, 50)]
    columns = [c for (c,) in rows(database, "SELECT column_name FROM (DESCRIBE items)")]
    assert columns == ["id", "name", "updated_at", "owner__id", "owner__email"]
    assert rows(
        database, "SELECT _parent_id, _idx, k, v FROM items__tags WHERE _parent_id = 2"
    ) == [
        (2, 0, "a", 2),
        (2, 1, "b", 3),
    ]


def test_a_second_run_asks_from_the_cursor_less_the_lookback_and_merges(tmp_path: Path) -> None:
    database = tmp_path / "shop.duckdb"
    text = SHOP.format(base="{base}", destination=f"duckdb:///{database}").replace(
        'initial_value: "2024-01-01T00:00:00Z"}',
        'initial_value: "2024-01-01T00:00:00Z", lookback: 86400}',
    )
    with serving(shop_pages) as (base, _):
        assert sync(tmp_path, text.replace("{base}", base)) == 0

    def changed(path: str, query: dict[str, str]) -> Any:
        records = items(5)
        for record in records:
            record["name"] = "renamed"
            record["tags"] = []
        return {"data": records, "total_pages": 1}

    with serving(changed) as (base, seen):
        assert sync(tmp_path, text.replace("{base}", base)) == 0
    assert seen == ["/items?since=2024-01-04T00%3A00%3A00Z&page=1"]
    assert rows(database, "SELECT count(*) FROM items") == [(50,)]
    assert rows(database, "SELECT count(*) FROM items WHERE name = 'renamed'") == [(10,)]
    assert rows(database, "SELECT count(*) FROM items__tags WHERE _parent_id >= 40") == [(0,)]


def test_new_columns_are_added_and_widening_is_recorded(tmp_path: Path) -> None:
    def evolving(path: str, query: dict[str, str]) -> Any:
        page = int(query["page"])
        record: dict[str, Any] = {"id": page, "size": page}
        if page == 2:
            record.update(size=2.5, color="red")
        return {"data": [record], "total_pages": 2}

    database = tmp_path / "out.duckdb"
    text = textwrap.dedent(
        f"""\
        sources:
          - name: s
            base_url: {{base}}
            resources:
              - name: things
                path: /things
                data_selector: data
                paginator: {{{{type: page_number, base_page: 1, total_path: total_pages}}}}
        destination: duckdb:///{database}
        """
    )
    with serving(evolving) as (base, _):
        assert sync(tmp_path, text.format(base=base)) == 0
    assert rows(database, "SELECT id, size, color FROM things ORDER BY id") == [
        (1, 1.0, None),
        (2, 2.5, "red"),
    ]
    assert rows(
        database,
        "SELECT column_name, old_type, new_type FROM _quiver_sync_schema WHERE change = 'widen'",
    ) == [("size", "int64", "double")]


def test_children_are_fetched_per_parent_record(tmp_path: Path) -> None:
    def events(path: str, query: dict[str, str]) -> Any:
        if path == "/events":
            return [{"id": 1, "title": "a"}, {"id": 2, "title": "b"}]
        event = int(path.split("/")[2])
        return [{"guest": f"g{event}-{n}"} for n in range(event)]

    database = tmp_path / "ev.duckdb"
    text = textwrap.dedent(
        f"""\
        sources:
          - name: ev
            base_url: {{base}}
            resources:
              - name: events
                path: /events
                primary_key: id
              - name: guests
                path: /events/{{{{event_id}}}}/guests
                params: {{{{event_id: {{{{type: resolve, resource: events, field: id}}}}}}}}
        destination: duckdb:///{database}
        """
    )
    with serving(events) as (base, seen):
        assert sync(tmp_path, text.format(base=base)) == 0
    assert seen == ["/events", "/events/1/guests", "/events/2/guests"]
    assert rows(database, "SELECT _events_id, guest FROM guests ORDER BY guest") == [
        (1, "g1-0"),
        (2, "g2-0"),
        (2, "g2-1"),
    ]


@pytest.mark.parametrize("scheme", ["sqlite", "jsonl", "parquet"])
def test_other_destinations_hold_the_same_rows(tmp_path: Path, scheme: str) -> None:
    target = tmp_path / ("out.db" if scheme == "sqlite" else "out")
    text = SHOP.format(base="{base}", destination=f"{scheme}:///{target}")
    if scheme != "sqlite":
        text = text.replace("write_mode: merge", "write_mode: replace")
    with serving(shop_pages) as (base, _):
        assert sync(tmp_path, text.replace("{base}", base)) == 0
        assert sync(tmp_path, text.replace("{base}", base)) == 0  # merged or replaced: same rows
    query = "SELECT count(*), count(DISTINCT id) FROM {}"
    if scheme == "sqlite":
        with sqlite3.connect(target) as connection:
            counted = connection.execute(query.format("items")).fetchall()
    else:
        source = f"'{target}/items.jsonl'" if scheme == "jsonl" else f"'{target}/items/*.parquet'"
        with duckdb.connect() as connection:
            counted = connection.execute(query.format(source)).fetchall()
    assert counted == [(50, 50)]


def test_a_config_error_names_the_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHOP.format(base="http://127.0.0.1:1", destination="duckdb:///x.duckdb").replace(
        "        primary_key: id\n", ""
    )
    assert sync(tmp_path, text) == 1
    err = capsys.readouterr().err
    assert "sources.yaml:10: sources[0].resources[0].write_mode: merge needs a primary_key" in err


def test_a_failing_source_exits_non_zero_with_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHOP.format(base="http://127.0.0.1:1", destination=f"duckdb:///{tmp_path / 'x.duckdb'}")
    assert sync(tmp_path, text) == 1
    assert "quiver sync: shop.items: " in capsys.readouterr().err


def test_dry_run_shows_records_and_tables_and_loads_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "shop.duckdb"
    with serving(shop_pages) as (base, seen):
        text = SHOP.format(base=base, destination=f"duckdb:///{database}")
        assert sync(tmp_path, text, "--dry-run") == 0
    out = capsys.readouterr().out
    assert len(seen) == 1 and not database.exists()
    assert "owner__email" in out and "items__tags" in out and '"item 0"' in out


def test_an_unknown_paginator_is_named_where_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHOP.format(base="http://127.0.0.1:1", destination="duckdb:///x.duckdb").replace(
        "type: page_number,", "type: pages,"
    )
    assert sync(tmp_path, text) == 1
    err = capsys.readouterr().err
    assert "sources.yaml:9: sources[0].resources[0].paginator.type: 'pages' is not one of" in err


def test_nested_json_keeps_objects_as_json_text_and_lists_in_child_tables(
    tmp_path: Path,
) -> None:
    database = tmp_path / "shop.duckdb"
    text = SHOP.format(base="{base}", destination=f"duckdb:///{database}").replace(
        "write_mode: merge", "write_mode: merge\n        nested: json"
    )
    with serving(shop_pages) as (base, _):
        assert sync(tmp_path, text.replace("{base}", base)) == 0
    [(owner,)] = rows(database, "SELECT owner FROM items WHERE id = 2")
    assert json.loads(owner) == {"id": 2, "email": "o2@example.com"}
    assert rows(database, "SELECT k, v FROM items__tags WHERE _parent_id = 2 ORDER BY _idx") == [
        ("a", 2),
        ("b", 3),
    ]


def test_each_parent_record_keeps_its_own_cursor(tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    def pages(path: str, query: dict[str, str]) -> Any:
        if path == "/events":
            return [{"id": 1}, {"id": 2}]
        event = path.split("/")[2]
        asked.append((event, query["since"]))
        day = 3 if event == "1" else 7  # event 1's guests changed earlier than event 2's
        return [{"guest": f"{event}-{day}", "at": day}]

    database = tmp_path / "ev.duckdb"
    text = textwrap.dedent(
        f"""\
        sources:
          - name: ev
            base_url: {{base}}
            resources:
              - name: events
                path: /events
                primary_key: id
              - name: guests
                path: /events/{{{{event_id}}}}/guests
                params: {{{{event_id: {{{{type: resolve, resource: events, field: id}}}}}}}}
                incremental: {{{{cursor_path: at, start_param: since, initial_value: 0}}}}
        destination: duckdb:///{database}
        """
    )
    with serving(pages) as (base, _):
        assert sync(tmp_path, text.format(base=base)) == 0
        assert sync(tmp_path, text.format(base=base)) == 0
    assert asked == [("1", "0"), ("2", "0"), ("1", "3"), ("2", "7")]


def test_an_unknown_key_is_named_with_its_line_and_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHOP.format(base="http://127.0.0.1:1", destination="duckdb:///x.duckdb").replace(
        "data_selector:", "data_selecter:"
    )
    assert sync(tmp_path, text) == 1
    err = capsys.readouterr().err
    assert "sources.yaml:8: sources[0].resources[0].data_selecter: unknown key" in err
    assert "data_selector" in err


def test_no_batch_says_a_replace_is_done_without_swapping_it_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill lands between any two commits: the one that marks the resource done must
    be the one that swaps its tables in, even when its last page fills a batch."""
    from quiver.sync.destinations.base import Batch
    from quiver.sync.destinations.duckdb import DuckDBDestination

    batches: list[Batch] = []
    commit = DuckDBDestination.commit

    def recorded(self: DuckDBDestination, batch: Batch) -> None:
        batches.append(batch)
        commit(self, batch)

    monkeypatch.setattr(DuckDBDestination, "commit", recorded)
    config = """\
sources:
  - name: shop
    base_url: {base}
    resources:
      - name: items
        path: /items
        data_selector: data
        paginator: {{type: page_number, base_page: 1, total_path: total_pages}}
        write_mode: replace
destination: duckdb:///{database}
batch_rows: 10
"""
    with serving(shop_pages) as (base, _):
        assert sync(tmp_path, config.format(base=base, database=tmp_path / "out.duckdb")) == 0
    done = [
        batch
        for batch in batches
        if any(s.resource == "items" and not s.parent and s.status == "done" for s in batch.states)
    ]
    assert done and all(batch.swaps for batch in done)
    assert rows(tmp_path / "out.duckdb", "SELECT count(*) FROM items") == [(50,)]


@pytest.mark.parametrize(
    ("bounds", "batches"),
    [
        ("batch_rows: 1000000\nbatch_bytes: 1", 5),  # every page fills the bytes bound
        ("batch_rows: 20\nbatch_bytes: 1000000000", 3),  # pages of 10 records: 20, 20, 10
        ("", 1),  # the defaults hold the 50 records in one batch
    ],
)
def test_a_batch_ends_at_whichever_bound_it_reaches_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bounds: str, batches: int
) -> None:
    from quiver.sync.destinations.base import Batch
    from quiver.sync.destinations.duckdb import DuckDBDestination

    loaded: list[int] = []
    commit = DuckDBDestination.commit

    def recorded(self: DuckDBDestination, batch: Batch) -> None:
        items = [write.rows.num_rows for write in batch.writes if write.table == "items"]
        if items:
            loaded.append(sum(items))
        commit(self, batch)

    monkeypatch.setattr(DuckDBDestination, "commit", recorded)
    config = f"""\
sources:
  - name: shop
    base_url: {{base}}
    resources:
      - name: items
        path: /items
        data_selector: data
        paginator: {{{{type: page_number, base_page: 1, total_path: total_pages}}}}
destination: duckdb:///{{database}}
{bounds}
"""
    with serving(shop_pages) as (base, _):
        assert sync(tmp_path, config.format(base=base, database=tmp_path / "out.duckdb")) == 0
    assert len(loaded) == batches and sum(loaded) == 50
    assert rows(tmp_path / "out.duckdb", "SELECT count(*) FROM items") == [(50,)]
