"""The call spool: every exchange, as the access log's line of every field, in
files the ingester reads; and the one writer it shares with the access log."""

from __future__ import annotations

import functools
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from quiver.calls import CallLog, Ingester
from quiver.config.access_log import ACCESS_LOG_FIELDS, AccessLog
from quiver.config.models import CallLogSettings
from quiver.observe.access_log import AccessLogOutput
from quiver.observe.call_spool import CallSpool
from quiver.observe.outputs import Batch, FullLines
from quiver.observe.record import ExchangeRecord
from quiver.observe.writer import RecordWriter, writer_for
from quiver.proxy.status import worker_status
from quiver.store import open_store
from quiver.store.calltables import calls
from tests.observe.support import lines_of
from tests.support.nodes import wait_until
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream

pytestmark = pytest.mark.timeout(30)


def ok(conn: Conn) -> None:
    while conn.read_request() is not None:
        conn.respond(200, b"fine")


def spooled(directory: Path) -> list[dict[str, Any]]:
    """Every line of the finished spools in ``directory``, in file order."""
    found = sorted(
        directory.glob("*.jsonl.done"), key=lambda p: int(p.name.split("-")[1].split(".")[0])
    )
    return [json.loads(line) for path in found for line in path.read_text().splitlines()]


def test_every_exchange_is_spooled_and_ingested_under_the_access_log_names(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "calls"
    log_path = tmp_path / "access.log"
    access_log = AccessLog(to=str(log_path))
    writer = writer_for(access_log, CallLogSettings(), directory)
    assert writer is not None
    with Upstream(ok) as node:
        config = make_config({"backend": node.url})
        with RunningProxy(config, record_writer=writer) as proxy, Client(proxy.port) as client:
            ids = [client.request("GET", f"/a/{i}").header("X-Request-ID") for i in range(20)]
            wait_until(lambda: len(spooled(directory)) == 20, "20 calls spooled")
    lines = spooled(directory)
    assert [line["request_id"] for line in lines] == ids
    assert list(lines[0]) == list(ACCESS_LOG_FIELDS)
    assert lines == lines_of(log_path)  # the same line, made once
    assert not list(directory.glob("*.jsonl"))  # the last file finished on stop

    store = open_store(str(tmp_path / "quiver.db"))
    try:
        assert Ingester(store.engine, directory, CallLog()).run_once() == 20
        with store.engine.connect() as connection:
            rows = connection.execute(select(calls).order_by(calls.c.id)).mappings().all()
    finally:
        store.close()
    assert [row["request_id"] for row in rows] == ids
    for row, line in zip(rows, lines, strict=True):
        assert row["upstream_us"] == round(line["upstream_ms"] * 1000)
        assert row["gateway_us"] == round(line["gateway_ms"] * 1000)
        assert row["latency_us"] == round(line["latency_ms"] * 1000)
        assert row["status"] == 200


def test_a_file_is_finished_at_its_size_and_every_second(tmp_path: Path) -> None:
    spool = CallSpool(tmp_path, max_size=1000, pid=4242)
    spool.open()
    full = FullLines()

    def batch(*numbers: int) -> Batch:
        return Batch(
            (ExchangeRecord(0.0, b"%d" % n, b"127.0.0.1", b"GET", b"/", 200) for n in numbers),
            full,
        )

    spool.write(batch(*range(10)))  # beyond 1000 bytes: finished at once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4242-1.jsonl.done", "4242-2.jsonl"]
    spool.tick()  # nothing written since: nothing to finish
    assert (tmp_path / "4242-2.jsonl").stat().st_mode & 0o777 == 0o600  # the user's only
    spool.write(batch(10, 11))
    spool.tick()
    finished = (tmp_path / "4242-2.jsonl.done").read_text().splitlines()
    assert [json.loads(line)["request_id"] for line in finished] == ["10", "11"]
    spool.close()  # the empty third file goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4242-1.jsonl.done", "4242-2.jsonl.done"]
    assert spool.status()["written"] == 12


def test_a_dead_process_spools_under_the_same_pid_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "77-1.jsonl.done").write_text('{"a":1}\n')
    (tmp_path / "77-2.jsonl").write_text('{"a":2}\n')  # left by a crash
    spool = CallSpool(tmp_path, max_size=10**6, pid=77)
    spool.open()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "77-1.jsonl.done",
        "77-2.jsonl",
        "77-3.jsonl",
    ]
    assert (tmp_path / "77-2.jsonl").read_text() == '{"a":2}\n'
    spool.close()


class BlockedOutput:
    """An output whose writes wait until released."""

    name = "blocked"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.records = 0

    def open(self) -> None:
        pass

    def write(self, batch: Batch) -> None:
        self.entered.set()
        assert self.release.wait(20)
        self.records += len(batch)

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        self.release.set()

    def status(self) -> dict[str, Any]:
        return {"written": self.records}


def test_a_blocked_output_fills_the_shared_queue_drops_are_counted_requests_never_wait(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "calls"
    blocked = BlockedOutput()
    writer = RecordWriter([CallSpool(directory, max_size=10**6), blocked], queue=5)
    with Upstream(ok) as node:
        config = make_config({"backend": node.url})
        with RunningProxy(config, record_writer=writer) as proxy, Client(proxy.port) as client:
            assert client.request("GET", "/first").status == 200
            assert blocked.entered.wait(10)  # the writer thread is stuck on it
            started = time.monotonic()
            statuses = [client.request("GET", f"/{i}").status for i in range(30)]
            assert time.monotonic() - started < 5  # answered while the writer stays blocked
            assert statuses == [200] * 30
            wait_until(lambda: writer.dropped == 25, "25 records dropped")
            server = proxy.server
            assert server is not None
            document = proxy.call(worker_status, server.state)
            for name in ("call_log", "blocked"):
                assert document[name]["dropped"] == 25
                assert document[name]["queued"] == 5
            assert document["call_log"]["dir"] == str(directory)
            blocked.release.set()
            wait_until(lambda: blocked.records == 6, "the kept records written")
    assert [line["path"] for line in spooled(directory)] == ["/first", *(f"/{i}" for i in range(5))]


class FailingOnce(BlockedOutput):
    """An output whose second write fails (a full disk, say)."""

    name = "failing"

    def write(self, batch: Batch) -> None:
        self.records += len(batch)
        if self.records == 2:
            raise OSError(28, "No space left on device")


def _written(output: AccessLogOutput, count: int) -> bool:
    return output.written == count


def test_an_output_that_fails_loses_its_batch_the_others_do_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_path = tmp_path / "access.log"
    access_log = AccessLogOutput(AccessLog(to=str(log_path)))
    writer = RecordWriter([FailingOnce(), access_log], queue=100)
    with Upstream(ok) as node:
        config = make_config({"backend": node.url})
        with RunningProxy(config, record_writer=writer) as proxy, Client(proxy.port) as client:
            for count, path in enumerate(("/kept", "/lost", "/again"), 1):
                client.request("GET", path)
                wait_until(functools.partial(_written, access_log, count), f"{path} logged")
            assert writer.failed == {"failing": 1, "access_log": 0}
    assert [line["path"] for line in lines_of(log_path)] == ["/kept", "/lost", "/again"]
    [warning] = [r.getMessage() for r in caplog.records if "not written" in r.getMessage()]
    assert (
        warning == "failing not written (1 records lost so far): [Errno 28] No space left on device"
    )
