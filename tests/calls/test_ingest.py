"""Spools into the store: every record once, even across a crash, within the bounds."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quiver.calls import CallLog, Ingester, retention
from quiver.store import open_store
from quiver.store.calltables import call_captures, call_rollups, call_spools, calls
from tests.calls.synthetic import records, write_spools


class Crash(Exception):
    pass


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_every_record_becomes_one_row_and_the_spools_go(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    spools = tmp_path / "calls"
    write_spools(spools, records(3000, _now_ms() - 3_600_000, 3_600_000), per_file=700)
    ingester = Ingester(store.engine, spools, CallLog(batch_rows=500))
    assert ingester.run_once() == 3000
    assert list(spools.iterdir()) == []
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(calls)).scalar() == 3000
        assert connection.execute(select(func.sum(call_rollups.c.requests))).scalar() == 3000
        assert connection.execute(select(func.count()).select_from(call_spools)).scalar() == 0
    store.close()


@pytest.mark.parametrize("batch_rows", [100, 1000])
def test_a_crash_between_commit_and_delete_loses_and_repeats_nothing(
    store_url: str, tmp_path: Path, batch_rows: int
) -> None:
    store = open_store(store_url)
    spools = tmp_path / "calls"
    items = records(2500, _now_ms() - 600_000, 600_000)
    write_spools(spools, items, per_file=1000)
    crashes = iter(range(3))

    def crash(where: str) -> None:
        if next(crashes, None) is not None:
            raise Crash(where)

    for _ in range(3):  # the process dies three times after a commit, then runs on
        with pytest.raises(Crash):
            Ingester(
                store.engine, spools, CallLog(batch_rows=batch_rows), crash_point=crash
            ).run_once()
    Ingester(store.engine, spools, CallLog(batch_rows=batch_rows), crash_point=crash).run_once()
    with store.engine.connect() as connection:
        ids = connection.execute(select(calls.c.request_id)).scalars().all()
        assert sorted(ids) == sorted(item["request_id"] for item in items)
        assert connection.execute(select(func.sum(call_rollups.c.requests))).scalar() == 2500
    assert list(spools.iterdir()) == []
    store.close()


def test_a_crash_inside_the_batch_rolls_it_back(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    spools = tmp_path / "calls"
    items = records(500, _now_ms() - 600_000, 600_000)
    write_spools(spools, items, per_file=500)
    ingester = Ingester(store.engine, spools, CallLog(batch_rows=200))
    original = ingester._insert
    calls_made = iter(range(2))

    def failing(connection, batch):  # type: ignore[no-untyped-def]
        original(connection, batch)
        if next(calls_made, None) == 1:
            raise Crash("inside")

    ingester._insert = failing  # type: ignore[method-assign]
    with pytest.raises(Crash):
        ingester.run_once()
    Ingester(store.engine, spools, CallLog(batch_rows=200)).run_once()
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(calls)).scalar() == 500
        assert connection.execute(select(func.sum(call_rollups.c.requests))).scalar() == 500
    store.close()


def test_retention_holds_the_rows_within_max_rows_while_ingesting(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "quiver.db"))
    spools = tmp_path / "calls"
    now = _now_ms()
    old = records(300, now - 10 * 86_400_000, 3_600_000, seed=1)  # beyond 7 days
    write_spools(spools, old + records(5000, now - 3_600_000, 3_600_000), per_file=500)
    settings = CallLog(max_rows=1200, batch_rows=250, delete_chunk=100)
    seen: list[int] = []

    def count(_where: str) -> None:
        with store.engine.connect() as connection:
            seen.append(connection.execute(select(func.count()).select_from(calls)).scalar_one())

    Ingester(store.engine, spools, settings, crash_point=count).run_once()
    with store.engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(calls)).scalar_one()
        oldest = connection.execute(select(func.min(calls.c.time_ms))).scalar_one()
    assert total == 1200
    assert oldest >= now - 7 * 86_400_000
    assert max(seen) <= 1200 + 250  # before each trim: the bound plus one batch
    store.close()


def test_a_call_keeps_its_capture_until_the_call_itself_goes(
    store_url: str, tmp_path: Path
) -> None:
    store = open_store(store_url)
    spools = tmp_path / "calls"
    items = records(600, _now_ms() - 600_000, 600_000)
    items.sort(key=lambda item: item["time"])  # (ingested in this order: ids follow time)
    for index in (10, 400, 599):
        items[index]["capture"] = {"request": {"body": f"call {index}"}}
    write_spools(spools, items, per_file=100)
    Ingester(store.engine, spools, CallLog(max_rows=300, batch_rows=100)).run_once()
    with store.engine.connect() as connection:
        kept = connection.execute(
            select(calls.c.request_id, call_captures.c.capture).join(
                calls, calls.c.id == call_captures.c.call_id
            )
        ).all()
    store.close()
    assert dict(tuple(row) for row in kept) == {
        items[400]["request_id"]: '{"request":{"body":"call 400"}}',
        items[599]["request_id"]: '{"request":{"body":"call 599"}}',
    }  # the capture of call 10 went with it (max_rows)


def test_a_stale_offset_never_applies_to_a_new_file_of_the_same_name(
    store_url: str, tmp_path: Path
) -> None:
    store = open_store(store_url)
    spools = tmp_path / "calls"
    first = records(100, _now_ms() - 600_000, 600_000, seed=1)
    write_spools(spools, first, per_file=100)

    Ingester(store.engine, spools).run_once()
    with store.engine.begin() as connection:  # as if it crashed before deleting the row
        connection.execute(
            call_spools.insert(), {"name": "1-1.jsonl.done", "offset": 5000, "head": "x"}
        )
    second = records(100, _now_ms() - 600_000, 600_000, seed=2)
    write_spools(spools, second, per_file=100)  # the same name again
    assert Ingester(store.engine, spools).run_once() == 100
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(calls)).scalar() == 200
    store.close()


_KILLED_INGEST = """
import os, signal, sys
from pathlib import Path
from quiver.calls import CallLog, Ingester
from quiver.store import open_store

def die(where):
    os.kill(os.getpid(), signal.SIGKILL)  # committed, the spool not yet deleted

store = open_store(sys.argv[1])
Ingester(store.engine, Path(sys.argv[2]), CallLog(batch_rows=300), crash_point=die).run_once()
"""


def test_a_process_killed_after_a_commit_loses_and_repeats_nothing(
    store_url: str, tmp_path: Path
) -> None:
    spools = tmp_path / "calls"
    items = records(1000, _now_ms() - 600_000, 600_000)
    write_spools(spools, items, per_file=1000)
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_INGEST, store_url, str(spools)], check=False, timeout=60
    )
    assert killed.returncode == -signal.SIGKILL
    store = open_store(store_url)
    with store.engine.connect() as connection:  # the first batch is in, the spool is still there
        assert connection.execute(select(func.count()).select_from(calls)).scalar() == 300
    assert Ingester(store.engine, spools, CallLog(batch_rows=300)).run_once() == 700
    with store.engine.connect() as connection:
        ids = connection.execute(select(calls.c.request_id)).scalars().all()
        assert sorted(ids) == sorted(item["request_id"] for item in items)
        assert connection.execute(select(func.sum(call_rollups.c.requests))).scalar() == 1000
    assert list(spools.iterdir()) == []
    store.close()


def test_rows_of_every_shape_in_one_batch_keep_their_own_values(
    store_url: str, tmp_path: Path
) -> None:
    """Calls with and without a node, a cache status, a plugin that answered, an MCP
    message or a tunnel, in one batch: each row has its own values and nulls."""
    store = open_store(store_url)
    now = _now_ms()
    base = records(1, now - 1000, 1)[0]
    items = [
        {**base, "request_id": "plain"},
        {**base, "request_id": "cached", "cache": "HIT", "upstream_ms": None, "node": None},
        {**base, "request_id": "refused", "status": 429, "answered_by": "rate-limit"},
        {**base, "request_id": "tool", "mcp": {"method": "tools/call", "tool": "search"}},
        {**base, "request_id": "socket", "status": 101, "websocket": {"bytes_in": 7}},
        {**base, "request_id": "plain-2", "client_ip": None},
    ]
    write_spools(tmp_path / "calls", items, per_file=10)
    assert Ingester(store.engine, tmp_path / "calls").run_once() == len(items)
    columns = (calls.c.cache, calls.c.upstream_us, calls.c.node_id, calls.c.answered_by)
    more = (calls.c.mcp_tool, calls.c.ws_bytes_in, calls.c.ws_close_code, calls.c.client_ip)
    with store.engine.connect() as connection:
        rows = {
            row[0]: tuple(row[1:])
            for row in connection.execute(select(calls.c.request_id, *columns, *more))
        }
    node = rows["plain"][2]
    assert node > 0
    assert rows == {
        "plain": (None, 1500, node, None, None, None, None, "127.0.0.1"),
        "cached": ("HIT", None, 0, None, None, None, None, "127.0.0.1"),
        "refused": (None, 1500, node, "rate-limit", None, None, None, "127.0.0.1"),
        "tool": (None, 1500, node, None, "search", None, None, "127.0.0.1"),
        "socket": (None, 1500, node, None, None, 7, None, "127.0.0.1"),
        "plain-2": (None, 1500, node, None, None, None, None, None),
    }
    store.close()


def test_the_bounds_of_the_rows_are_read_off_the_index_not_by_a_scan(tmp_path: Path) -> None:
    """Retention reads the lowest and highest call id after every batch; SQLite must
    not scan the whole table for them (as it does for min() beside max())."""
    store = open_store(str(tmp_path / "calls.db"))
    query = retention._ends(calls.c.id).compile(store.engine)
    with store.engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}").all()
    steps = [str(step[-1]) for step in plan]
    assert not any(step.startswith("SCAN calls") for step in steps), steps
    store.close()
