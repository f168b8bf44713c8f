"""MCP messages in the call log, on SQLite and PostgreSQL: the spooled ``"mcp"``
member becomes the call row's mcp_method, mcp_tool and mcp_outcome, which
``list_calls`` filters on; and migration 0007 adds them to a call log that has rows."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import insert, select, text

from quiver.calls import CallLog, Ingester
from quiver.calls.queries import CallFilter, list_calls
from quiver.calls.records import parse
from quiver.store import open_store
from quiver.store.calltables import calls
from quiver.store.engine import WRITE, make_engine
from quiver.store.migrate import _alembic_config, schema_head
from tests.calls.synthetic import records, write_spools

#: the notes of the MCP calls, by position in the mix (every other call is not MCP)
NOTES: list[dict[str, Any]] = [
    {"method": "initialize", "outcome": "ok", "ms": 0.3},
    {"method": "tools/list", "outcome": "ok"},
    {"method": "tools/call", "tool": "getNote", "outcome": "ok", "ms": 4.2, "status": 200},
    {"method": "tools/call", "tool": "getNote", "outcome": "error", "status": 404},
    {"method": "tools/call", "tool": "addNote", "outcome": "failed", "server": "notes"},
    {"method": "tools/call", "tool": "nope", "outcome": "refused"},
    {"method": "prompts/get", "prompt": "summary", "outcome": "ok"},
    {"method": "resources/read", "resource": "note://1", "outcome": "ok"},
    {"method": "notifications/initialized"},
]


def with_mcp(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for index, item in enumerate(items):
        if index % 2 == 0:
            item["mcp"] = NOTES[index // 2 % len(NOTES)]
    return items


def test_mcp_members_become_columns_and_filters(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    now = int(time.time() * 1000)
    items = with_mcp(records(360, now - 600_000, 600_000))
    write_spools(tmp_path / "calls", items, per_file=100)
    assert Ingester(store.engine, tmp_path / "calls", CallLog(batch_rows=70)).run_once() == 360
    by_id = {item["request_id"]: item for item in items}
    with store.engine.connect() as connection:
        rows = list_calls(connection, CallFilter(), 1000, None)
        assert len(rows) == 360
        for row in rows:
            note = by_id[row["request_id"]].get("mcp") or {}
            named = note.get("tool") or note.get("prompt") or note.get("resource")
            assert (row["mcp_method"], row["mcp_tool"], row["mcp_outcome"]) == (
                note.get("method"),
                named,
                note.get("outcome"),
            )

        def ids(**where: Any) -> set[str]:
            found = list_calls(connection, CallFilter(**where), 1000, None)
            return {row["request_id"] for row in found}

        def expected(test: Any) -> set[str]:
            return {i["request_id"] for i in items if "mcp" in i and test(i["mcp"])}

        assert ids(mcp_tool="getNote") == expected(lambda n: n.get("tool") == "getNote")
        assert ids(mcp_method="tools/call") == expected(lambda n: n["method"] == "tools/call")
        assert ids(mcp_outcome="refused") == expected(lambda n: n.get("outcome") == "refused")
        assert ids(mcp_tool="note://1") == expected(lambda n: n.get("resource") == "note://1")
        both = ids(mcp_method="tools/call", mcp_outcome="ok", route="orders")
        assert both == {
            i["request_id"]
            for i in items
            if i["route"] == "orders" and i.get("mcp", {}).get("tool") == "getNote"
            and i["mcp"]["outcome"] == "ok"
        }  # fmt: skip
        assert ids(mcp_tool="getNote") and ids(mcp_tool="absent") == set()
    store.close()


def test_a_line_whose_mcp_is_not_an_object_is_not_a_record() -> None:
    item = records(1, 0, 1000)[0]
    with pytest.raises(ValueError, match="mcp"):
        parse(_line({**item, "mcp": "tools/call"}))
    record = parse(_line({**item, "mcp": {"method": 3, "tool": "t", "outcome": "ok"}}))
    assert (record.mcp_method, record.mcp_tool, record.mcp_outcome) == (None, "t", "ok")
    assert parse(_line({**item, "mcp": {}})).mcp_method is None


def _line(item: dict[str, Any]) -> bytes:
    return json.dumps(item).encode()


def test_migration_0007_keeps_the_calls_there_and_goes_back(store_url: str) -> None:
    engine = make_engine(store_url)
    config = _alembic_config()
    try:
        with engine.execution_options(**{WRITE: True}).begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0006")
            connection.execute(
                text(
                    "INSERT INTO calls (request_id, time_ms, route_id, target_id, "
                    "consumer_id, node_id, user_agent_id, method, path, status, bytes_in, "
                    "bytes_out, latency_us, retries) "
                    "VALUES ('old', 1, 0, 0, 0, 0, 0, 'GET', '/', 200, 0, 0, 1000, 0)"
                )
            )
    finally:
        engine.dispose()
    store = open_store(store_url)  # (migrates to the head)
    try:
        with store.engine.begin() as connection:
            old = connection.execute(select(calls).where(calls.c.request_id == "old")).one()
            assert (old.mcp_method, old.mcp_tool, old.mcp_outcome) == (None, None, None)
            connection.execute(
                insert(calls).values(
                    request_id="new", time_ms=2, route_id=0, target_id=0, consumer_id=0,
                    node_id=0, user_agent_id=0, method="POST", path="/mcp", status=200,
                    bytes_in=0, bytes_out=0, latency_us=1000, retries=0,
                    mcp_method="tools/call", mcp_tool="getNote", mcp_outcome="ok",
                )
            )  # fmt: skip
        with store.engine.execution_options(**{WRITE: True}).begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
            assert connection.execute(text("SELECT count(*) FROM calls")).scalar() == 2
            command.upgrade(config, "head")
            version = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert version.scalar() == schema_head()
    finally:
        store.close()
