"""How lines leave: sampled, dropped (and counted) when their destination falls
behind, sent to syslog; requests never wait for their line."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quiver.config.access_log import AccessLog
from quiver.config.models import CallLogSettings
from quiver.observe.access_log import AccessLogOutput
from quiver.observe.call_spool import CallSpool
from quiver.observe.metrics import MetricsOutput
from quiver.observe.outputs import RecordOutput
from quiver.observe.writer import DEFAULT_QUEUE, RecordWriter, writer_for
from quiver.proxy.status import worker_metrics, worker_status
from tests.observe.support import lines_of, wait_lines
from tests.support.nodes import wait_until
from tests.support.proxy import Client, RunningProxy, make_config
from tests.support.upstream import Conn, Upstream

pytestmark = pytest.mark.timeout(30)


def by_path(conn: Conn) -> None:
    """Answers /fail/... with 500, everything else with 200."""
    while (request := conn.read_request()) is not None:
        conn.respond(500 if request.path.startswith("/fail") else 200, b"x")


class BlockedSink:
    """A destination whose writes wait until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lines: list[bytes] = []

    def write(self, lines: list[bytes]) -> None:
        self.entered.set()
        assert self.release.wait(20)
        self.lines += lines

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        self.release.set()


def access_log(settings: AccessLog, **options: Any) -> RecordWriter:
    """A worker's record writer with only the access log of ``settings``."""
    return RecordWriter([AccessLogOutput(settings, **options)], queue=settings.queue)


def running(writer: RecordWriter, node: Upstream) -> RunningProxy:
    return RunningProxy(make_config({"backend": node.url}), record_writer=writer)


def test_sampling_keeps_a_share_and_every_5xx(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    draws = itertools.cycle([0.1, 0.9])  # logged, not logged, logged, ...
    settings = AccessLog(to=str(path), sample=0.5, fields=["path", "status"])
    writer = access_log(settings, rng=lambda: next(draws))
    with Upstream(by_path) as node, running(writer, node) as proxy, Client(proxy.port) as client:
        for i in range(4):
            assert client.request("GET", f"/ok/{i}").status == 200
        for i in range(3):
            assert client.request("GET", f"/fail/{i}").status == 500
        lines = wait_lines(path, 5)
    assert lines == [
        {"path": "/ok/0", "status": 200},
        {"path": "/ok/2", "status": 200},
        *({"path": f"/fail/{i}", "status": 500} for i in range(3)),
    ]


@pytest.mark.parametrize("alone", [True, False])
def test_sample_zero_logs_only_server_errors(tmp_path: Path, alone: bool) -> None:
    """Alone, the access log draws before records are made; beside the call log, on
    the writer thread: the same lines either way."""
    path = tmp_path / "access.log"
    settings = AccessLog(to=str(path), sample=0, fields=["path"])
    writer = writer_for(settings, CallLogSettings(), None if alone else tmp_path / "calls")
    assert writer is not None
    assert (writer.keep is not None) == alone
    with Upstream(by_path) as node, running(writer, node) as proxy, Client(proxy.port) as client:
        for p in ("/a", "/fail/1", "/b", "/fail/2"):
            client.request("GET", p)
        assert wait_lines(path, 2) == [{"path": "/fail/1"}, {"path": "/fail/2"}]
        assert len(lines_of(path)) == 2


def test_a_destination_that_falls_behind_loses_only_its_own_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The access log's destination blocks (stdout to a pipe nobody reads): its own
    queue fills and drops, counted as its own; requests never wait, and the request
    counters and the call spool beside it still get every record."""
    sink = BlockedSink()
    counters = MetricsOutput()
    calls = tmp_path / "calls"
    outputs: list[RecordOutput] = [
        AccessLogOutput(AccessLog(to="stdout", queue=5), sink=sink),
        counters,
        CallSpool(calls, max_size=10**6),
    ]
    writer = RecordWriter(outputs, queue=DEFAULT_QUEUE)
    with Upstream(by_path) as node, running(writer, node) as proxy, Client(proxy.port) as client:
        assert client.request("GET", "/first").status == 200
        assert sink.entered.wait(10)  # the access log's thread is stuck on the first line
        started = time.monotonic()
        statuses = [client.request("GET", f"/{i}").status for i in range(30)]
        elapsed = time.monotonic() - started
        assert statuses == [200] * 30
        assert elapsed < 5  # answered while the destination stays blocked
        wait_until(lambda: counters.counted == 31, "every request counted")
        server = proxy.server
        assert server is not None
        document = proxy.call(worker_status, server.state)
        assert (document["access_log"]["dropped"], document["access_log"]["queued"]) == (25, 5)
        assert document["metrics"]["dropped"] == 0
        assert document["call_log"]["dropped"] == 0
        assert writer.dropped == 0
        lost = proxy.call(worker_metrics, server.state)["counters"]["dropped"]
        assert lost == {"access_log": 25, "metrics": 0, "call_log": 0}
        sink.release.set()
        output = writer.outputs[0]
        assert isinstance(output, AccessLogOutput)
        wait_until(lambda: output.written == 6, "the kept lines written")
    paths = [json.loads(line)["path"] for line in sink.lines]
    assert paths == ["/first", "/0", "/1", "/2", "/3", "/4"]
    assert len(lines_of_spools(calls)) == 31
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1  # at most one a minute
    assert "access log queue full" in warnings[0].getMessage()


def lines_of_spools(directory: Path) -> list[bytes]:
    return [line for path in directory.glob("*.jsonl*") for line in path.read_bytes().splitlines()]


@pytest.fixture
def syslog_socket() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def test_syslog_gets_one_datagram_per_line(syslog_socket: socket.socket) -> None:
    port = syslog_socket.getsockname()[1]
    settings: dict[str, Any] = {
        "to": "syslog",
        "syslog": {"address": f"127.0.0.1:{port}", "facility": "local3", "tag": "gw"},
        "fields": ["path", "status"],
    }
    with Upstream(by_path) as node:
        config = make_config({"backend": node.url}, access_log=settings)
        with RunningProxy(config) as proxy, Client(proxy.port) as client:
            client.request("GET", "/one")
            client.request("GET", "/two")
            datagrams = [syslog_socket.recv(4096) for _ in range(2)]
    for datagram, path in zip(datagrams, ("/one", "/two"), strict=True):
        head, _, message = datagram.partition(b": ")
        assert head.startswith(b"<158>")  # local3 (19) * 8 + info (6)
        assert b" gw[" in head
        assert json.loads(message) == {"path": path, "status": 200}
