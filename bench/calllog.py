"""The call log at size: ingest throughput, then every analytics query on 1,000,000 calls.

1. Ingest: INGEST records (synthetic, as workers would spool them) are written as
   spool files of 10,000 lines and consumed by the Ingester; rows/s is records
   over the wall time of ``run_once`` (parsing, names, call rows, rollups, offsets).
   On SQLite and, with --postgres URL, on PostgreSQL.
2. Queries: a SQLite call log of ROWS calls spread over the last 7 days (written
   by the ingester's own batch insert, in transactions of 20,000 rows, so rollups
   are built as in production) is queried through the admin API's handlers
   (FastAPI's TestClient, no network), each query 5 times; the median is reported.
   The goal is < 200 ms for every query.
3. With --floor N: SQLite's own cost of a call row, the least any ingester of an
   indexed call log pays.  N rows made before the clock starts (request ids as a
   worker numbers them, times in arrival order) go straight to the driver
   (``executemany``, 1,000 rows a transaction, WAL) into the store's ``calls``
   table: with its indexes, with the request id's alone, and with none.

Run: .venv/bin/python bench/calllog.py [--rows 1000000] [--postgres URL] [--floor 300000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quiver.admin import create_app
from quiver.calls import CallLog, Ingester
from quiver.calls.ingest import _CALL_COLUMNS
from quiver.store import open_store
from quiver.store.tokens import create_token
from tests.calls.synthetic import fill, records, write_spools

DAY = 86_400_000


def ingest(url: str, count: int, directory: Path) -> tuple[float, float]:
    """Rows per second (wall) and CPU microseconds per row of ingesting ``count``
    records (this process's CPU: the database server's, for PostgreSQL, is not in it)."""
    store = open_store(url)
    now = int(time.time() * 1000)
    write_spools(directory, records(count, now - DAY, DAY), per_file=10_000)
    began, cpu = time.perf_counter(), time.process_time()
    assert Ingester(store.engine, directory, CallLog(max_rows=10 * count)).run_once() == count
    elapsed, used = time.perf_counter() - began, time.process_time() - cpu
    store.close()
    return count / elapsed, used / count * 1e6


def fill_store(url: str, rows: int) -> None:
    store = open_store(url)
    fill(store.engine, rows, 7 * DAY)
    store.close()


def queries(url: str) -> list[tuple[str, float]]:
    store = open_store(url)
    _, token = create_token(store, "bench", "admin", None)
    client = TestClient(create_app(None, store))
    client.headers["Authorization"] = f"Bearer {token}"
    now = time.time()

    def iso(seconds_ago: float) -> str:
        from datetime import UTC, datetime

        return datetime.fromtimestamp(now - seconds_ago, UTC).isoformat()

    probe = client.get("/calls", params={"limit": 1}).json()["data"][0]["request_id"]
    asked: list[tuple[str, dict[str, str | int]]] = [
        ("/analytics/requests", {"from": iso(3600), "by": "route"}),
        ("/analytics/requests", {"from": iso(86400), "bucket": "hour", "by": "route"}),
        ("/analytics/requests", {"from": iso(6 * 3600), "bucket": "minute"}),
        ("/analytics/requests", {"from": iso(6 * 3600), "bucket": "minute", "by": "consumer"}),
        ("/analytics/requests", {"from": iso(7 * 86400), "bucket": "hour", "by": "consumer"}),
        ("/analytics/requests", {"from": iso(7 * 86400), "bucket": "day", "by": "status_class"}),
        ("/analytics/top", {"dimension": "consumers", "from": iso(7 * 86400)}),
        ("/analytics/top", {"dimension": "routes", "from": iso(7 * 86400)}),
        ("/analytics/top", {"dimension": "errors", "from": iso(7 * 86400)}),
        ("/analytics/top", {"dimension": "targets", "from": iso(86400)}),
        ("/calls", {"limit": 50}),
        ("/calls", {"route": "orders", "status": "5xx", "limit": 50}),
        ("/calls", {"consumer": "alice", "from": iso(86400), "limit": 50}),
        ("/calls", {"status": "418", "limit": 50}),  # matches nothing: the worst case
        (f"/calls/{probe}", {}),
        ("/analytics/requests", {"from": iso(86400), "bucket": "hour", "format": "csv"}),
    ]
    results = []
    for path, params in asked:
        times = []
        for _ in range(5):
            began = time.perf_counter()
            answer = client.get(path, params=params)
            times.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200, answer.text
        label = path + (
            "?" + "&".join(f"{k}={v}" for k, v in params.items() if k != "from") if params else ""
        )
        if "from" in params:
            label += f" (from {round((now - datetime_of(str(params['from']))) / 3600)} h ago)"
        results.append((label, statistics.median(times)))
    store.close()
    return results


#: the call table's indexes that lead to a time: the queries' filters and ranges
_BY_TIME = (
    "ix_calls_time",
    "ix_calls_route_time",
    "ix_calls_consumer_time",
    "ix_calls_status_time",
)


def insert_floor(directory: Path, count: int) -> list[tuple[str, float]]:
    """CPU microseconds a row of SQLite's own work, by the indexes kept: the rows
    are prepared first, so no parsing, names or rollups are in it."""
    columns = _CALL_COLUMNS[: _CALL_COLUMNS.index("mcp_method")]  # (no MCP or WebSocket ones)
    insert = f"INSERT INTO calls ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    now = int(time.time() * 1000)
    usual = ("GET", "/items/42", 200, 0, 56, 1500, 1200, 300, "127.0.0.1", 0, None, None)
    rows = [
        (f"{0x5EED:020x}{n:012x}", now + n // 10, 1 + n % 5, 1, 1 + n % 50, 1, 1, *usual)
        for n in range(count)
    ]
    results = []
    for label, dropped in (
        ("the store's indexes", ()),
        ("the request id's index only", _BY_TIME),
        ("no index", (*_BY_TIME, "ix_calls_request_id")),
    ):
        path = directory / f"floor-{len(dropped)}.db"
        open_store(f"sqlite:///{path}").close()  # (the schema, as migrations make it)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA synchronous = FULL")  # (as the store sets it)
        for name in dropped:
            db.execute(f"DROP INDEX {name}")
        cpu = time.process_time()
        for start in range(0, count, 1000):
            db.execute("BEGIN")
            db.executemany(insert, rows[start : start + 1000])
            db.execute("COMMIT")
        results.append((label, (time.process_time() - cpu) / count * 1e6))
        db.close()
    return results


def datetime_of(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--ingest", type=int, default=100_000)
    parser.add_argument("--postgres", default=None)
    parser.add_argument("--ingest-only", action="store_true", help="skip the queries")
    parser.add_argument("--floor", type=int, default=0, help="rows: SQLite's own cost alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        if args.floor:
            for label, micros in insert_floor(root, args.floor):
                print(f"SQLite alone, {label}: {micros:.2f} µs of CPU a row ({args.floor:,})")
            return
        rate, micros = ingest(str(root / "ingest.db"), args.ingest, root / "spools")
        print(f"ingest SQLite: {rate:,.0f} rows/s, {micros:.1f} µs of CPU a row ({args.ingest:,})")
        if args.postgres:
            rate, micros = ingest(args.postgres, args.ingest, root / "spools-pg")
            print(
                f"ingest PostgreSQL: {rate:,.0f} rows/s, {micros:.1f} µs of CPU a row"
                f" ({args.ingest:,}; the server's CPU not counted)"
            )
        if args.ingest_only:
            return
        began = time.perf_counter()
        fill_store(str(root / "big.db"), args.rows)
        print(f"filled {args.rows:,} calls in {time.perf_counter() - began:.1f} s")
        for label, ms in queries(str(root / "big.db")):
            print(f"{ms:8.1f} ms  {label}")


if __name__ == "__main__":
    main()
