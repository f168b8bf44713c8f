"""The ingester: finished spool files into call rows and rollups, exactly once.

One ingester runs per node, in the admin sidecar (a thread beside uvicorn), so a
SQLite store has a single writer of calls and no lock contention by design.  Each
batch is one transaction: the names it introduces, its call rows (one executemany),
the spend rows of its calls to models (quiver.calls.spend), the rollup increments
(one upsert per distinct minute x route x consumer x target x node x status class,
summed in memory first), those of the calls that ended in an error (per minute x
route x consumer x status x who answered: quiver.calls.causes) and the spool's new
offset.  The
spool protocol and why this loses and repeats nothing is in quiver.calls.spool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from operator import attrgetter, is_, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine, delete, select

from quiver.calls import causes, retention, spool
from quiver.calls.names import Names
from quiver.calls.records import Record, bucket, parse
from quiver.calls.settings import CallLog
from quiver.calls.spend import insert_spend, spend_names
from quiver.store.calltables import (
    BUCKETS,
    CONSUMER,
    NODE,
    ROUTE,
    TARGET,
    USER_AGENT,
    call_cause_rollups,
    call_cause_rollups_hourly,
    call_rollups,
    call_rollups_hourly,
    call_spools,
)
from quiver.store.engine import WRITE

if TYPE_CHECKING:  # (psycopg is installed with the postgres extra only)
    import psycopg

_log = logging.getLogger("quiver.calls")
_KEY = ("route_id", "consumer_id", "target_id", "node_id", "status_class")
#: the key of a cause rollup after its period
_CAUSE_KEY = ("route_id", "consumer_id", "status", "answered_by")
_SUMS = ("requests", "errors", "bytes_in", "bytes_out", "latency_sum_us", *BUCKETS)


def is_error(status: int) -> bool:
    """What the call log counts as an error: the gateway or its upstream failed."""
    return status >= 500


class Ingester:
    """Reads the spools in ``directory`` into the store behind ``engine``.

    ``clock`` (seconds) dates retention; ``crash_point`` is for tests: called with
    "committed" after a batch commits and before its spool is deleted, it may raise
    to stand for a process killed there.
    """

    def __init__(
        self,
        engine: Engine,
        directory: Path,
        settings: CallLog | None = None,
        clock: Callable[[], float] = time.time,
        crash_point: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.directory = directory
        self.settings = settings or CallLog()
        self._clock = clock
        self._crash_point = crash_point or (lambda _where: None)
        self._names = Names()
        self._writing = engine.execution_options(**{WRITE: True})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.skipped = 0  # lines that were not records

    def run_once(self) -> int:
        """Consume every finished spool; the number of calls inserted."""
        inserted = 0
        for found in spool.finished(self.directory):
            inserted += self._consume(found)
        return inserted

    def _consume(self, found: spool.Spool) -> int:
        inserted = 0
        head = spool.head(found.path)
        while True:
            with self.engine.connect() as connection:
                row = connection.execute(
                    select(call_spools.c.offset, call_spools.c.head).where(
                        call_spools.c.name == found.name
                    )
                ).first()
            # a row left by an earlier file of the same name (a pid used again after a
            # crash between deleting that file and its row) is not this file's offset
            offset = row.offset if row is not None and row.head == head else 0
            lines, end, at_end = spool.read_lines(found.path, offset, self.settings.batch_rows)
            if lines or end != offset:
                inserted += self._batch(found.name, head, lines, end, row is None)
                self._crash_point("committed")
                retention.enforce(self.engine, self.settings, int(self._clock() * 1000))
            if at_end:
                found.path.unlink(missing_ok=True)
                with self._writing.begin() as connection:
                    connection.execute(delete(call_spools).where(call_spools.c.name == found.name))
                return inserted

    def _batch(self, name: str, head: str, lines: list[bytes], end: int, first: bool) -> int:
        records: list[Record] = []
        for line in lines:
            try:
                records.append(parse(line))
            except ValueError as exc:  # (json.JSONDecodeError is one)
                self.skipped += 1
                _log.warning("call spool %s: a line is not a call record (%s)", name, exc)
        try:
            with self._writing.begin() as connection:
                self._insert(connection, records)
                if first:
                    connection.execute(
                        call_spools.insert(), {"name": name, "offset": end, "head": head}
                    )
                else:
                    connection.execute(
                        call_spools.update()
                        .where(call_spools.c.name == name)
                        .values(offset=end, head=head)
                    )
        except Exception:
            self._names.forget()  # names added in the rolled-back transaction are gone
            raise
        return len(records)

    def insert(self, records: list[Record]) -> None:
        """Write ``records`` in one transaction, as a batch from a spool would be
        (for loading a call log from elsewhere, and for benchmarks)."""
        with self._writing.begin() as connection:
            self._insert(connection, records)

    def _insert(self, connection: Connection, records: list[Record]) -> None:
        if not records:
            return
        wanted: set[tuple[int, str]] = set()
        for kind, field in _NAMED:
            names = set(map(field, records))
            names.discard(None)
            wanted.update((kind, name) for name in names)
        for record in records:
            if record.spend is not None:
                wanted.update(spend_names(record))
        ids = self._names.ids(connection, wanted)

        def id_of(kind: int, name: str | None) -> int:
            return 0 if name is None else ids[(kind, name)]

        rows: list[tuple[Any, ...]] = []
        rollups: dict[tuple[Any, ...], list[int]] = {}
        errors: dict[tuple[Any, ...], list[int]] = {}  # the cause rollups' increments
        for r in records:
            route_id = 0 if r.route is None else ids[(ROUTE, r.route)]
            target_id = 0 if r.target is None else ids[(TARGET, r.target)]
            consumer_id = 0 if r.consumer is None else ids[(CONSUMER, r.consumer)]
            node_id = 0 if r.node is None else ids[(NODE, r.node)]
            rows.append(
                (
                    r.request_id,
                    r.time_ms,
                    route_id,
                    target_id,
                    consumer_id,
                    node_id,
                    0 if r.user_agent is None else ids[(USER_AGENT, r.user_agent)],
                    *_as_they_are(r),
                )
            )
            status = r.status
            key: tuple[Any, ...] = (
                r.time_ms // 60_000,
                route_id,
                consumer_id,
                target_id,
                node_id,
                min(max(status // 100, 1), 5),
            )
            _count(rollups, key, r)
            if causes.is_cause(status):
                who = causes.answered_by(status, r.route, r.answered_by)
                _count(errors, (key[0], route_id, consumer_id, status, who), r)
        # straight to the driver: SQLAlchemy's per-row parameter handling cost more
        # than SQLite's inserts themselves
        if connection.dialect.name == "postgresql":
            _copy_calls(connection, rows)
        else:
            _insert_calls(connection, rows)
        captured = [(r.capture, r.request_id) for r in records if r.capture is not None]
        if captured:  # (the few calls of routes that keep bodies: by the id just given)
            mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            connection.exec_driver_sql(
                "INSERT INTO call_captures (call_id, capture) "
                f"SELECT max(id), {mark} FROM calls WHERE request_id = {mark}",
                captured,
            )
        for table, period, key_names, sums_of in (
            (call_rollups, "minute", _KEY, rollups),
            (call_rollups_hourly, "hour", _KEY, _hourly(rollups)),
            (call_cause_rollups, "minute", _CAUSE_KEY, errors),
            (call_cause_rollups_hourly, "hour", _CAUSE_KEY, _hourly(errors)),
        ):
            prefix, suffix = _upsert(table.name, (period, *key_names))
            _write(connection, prefix, suffix, [(*key, *sums) for key, sums in sums_of.items()])
        insert_spend(connection, records, id_of, _write)

    def start(self, interval: float = 1.0) -> None:
        """Ingest in a daemon thread every ``interval`` seconds until :meth:`stop`."""
        self._thread = threading.Thread(
            target=self._loop, args=(interval,), name="quiver-calls", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the admin API goes on; the spools wait for the next round
                _log.exception("call log ingest failed; retrying")
            self._stop.wait(interval)


#: the names a call row refers to by id: their kinds, and what reads them off a record
_NAMED = (
    (ROUTE, attrgetter("route")),
    (TARGET, attrgetter("target")),
    (CONSUMER, attrgetter("consumer")),
    (NODE, attrgetter("node")),
    (USER_AGENT, attrgetter("user_agent")),
)


_CALL_COLUMNS = (
    "request_id", "time_ms", "route_id", "target_id", "consumer_id", "node_id",
    "user_agent_id", "method", "path", "status", "bytes_in", "bytes_out", "latency_us",
    "upstream_us", "gateway_us", "client_ip", "retries", "cache", "answered_by",
    "mcp_method", "mcp_tool", "mcp_outcome",
    "ws_messages_in", "ws_messages_out", "ws_bytes_in", "ws_bytes_out", "ws_close_code",
    "ws_closed_by",
)  # fmt: skip


def _write(connection: Connection, prefix: str, suffix: str, rows: list[tuple[Any, ...]]) -> None:
    """``prefix VALUES (...) suffix`` for every row, in one executemany of the
    driver (psycopg pipelines it: no round trip per row)."""
    if not rows:
        return
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    marks = ", ".join([mark] * len(rows[0]))
    connection.exec_driver_sql(f"{prefix} VALUES ({marks}){suffix}", rows)


#: the columns after the ids: the record's fields of the same names, as they are
_as_they_are = itemgetter(*(Record._fields.index(name) for name in _CALL_COLUMNS[7:]))
#: a call row's values, all None (what a row's shape is matched against)
_NONES = (None,) * len(_CALL_COLUMNS)
#: by a row's shape (which of its values are None): the INSERT of its other columns,
#: and what picks their values out of the row
_SHAPES: dict[tuple[bool, ...], tuple[str, Callable[[tuple[Any, ...]], Any]]] = {}
_MOST_SHAPES = 256  # statements kept (a few shapes occur in practice): never unbounded


def _insert_calls(connection: Connection, rows: list[tuple[Any, ...]]) -> None:
    """SQLite: the call rows in one executemany per shape, each leaving out the
    columns its rows have no value for.  Binding a None costs Python's sqlite3
    module a search for an adapter (about 0.4 µs); a call row has ten or more (its
    MCP and WebSocket columns, often its cache status...), which cost more than
    the insert itself."""
    shapes: dict[tuple[bool, ...], list[tuple[Any, ...]]] = {}
    for row in rows:
        shape = tuple(map(is_, row, _NONES))
        same = shapes.get(shape)
        if same is None:
            shapes[shape] = [row]
        else:
            same.append(row)
    for shape, same in shapes.items():
        statement = _SHAPES.get(shape)
        if statement is None:
            if len(_SHAPES) >= _MOST_SHAPES:
                _SHAPES.clear()
            kept = [i for i, missing in enumerate(shape) if not missing]
            names = ", ".join(_CALL_COLUMNS[i] for i in kept)
            sql = f"INSERT INTO calls ({names}) VALUES ({', '.join('?' * len(kept))})"
            statement = _SHAPES[shape] = (sql, itemgetter(*kept))
        sql, pick = statement
        connection.exec_driver_sql(sql, list(map(pick, same)))


def _copy_calls(connection: Connection, rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: the call rows through COPY, several times faster than inserts."""
    driver = cast("psycopg.Connection[Any]", connection.connection.dbapi_connection)
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY calls ({', '.join(_CALL_COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _count(rollups: dict[tuple[Any, ...], list[int]], key: tuple[Any, ...], r: Record) -> None:
    """Add the call ``r`` to the sums of ``key`` (a minute first) in ``rollups``."""
    sums = rollups.get(key)
    if sums is None:
        sums = rollups[key] = [0] * len(_SUMS)
    sums[0] += 1
    sums[1] += is_error(r.status)
    sums[2] += r.bytes_in
    sums[3] += r.bytes_out
    sums[4] += r.latency_us
    sums[5 + bucket(r.latency_us)] += 1


def _hourly(rollups: dict[tuple[Any, ...], list[int]]) -> dict[tuple[Any, ...], list[int]]:
    """Per-minute sums (keys beginning with the minute) added up per hour."""
    hourly: dict[tuple[Any, ...], list[int]] = {}
    for key, sums in rollups.items():
        hour_key = (key[0] // 60, *key[1:])
        into = hourly.get(hour_key)
        if into is None:
            hourly[hour_key] = list(sums)
        else:
            for index, value in enumerate(sums):
                into[index] += value
    return hourly


def _upsert(table: str, key: tuple[str, ...]) -> tuple[str, str]:
    """INSERT ... ON CONFLICT (the rollup's ``key``) DO UPDATE adding the new sums (the
    same statement in SQLite and PostgreSQL; keys are distinct within a batch)."""
    columns = ", ".join((*key, *_SUMS))
    updates = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in _SUMS)
    return (
        f"INSERT INTO {table} ({columns})",
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
    )
