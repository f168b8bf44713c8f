"""WebSocket connections in the exchange record: the upgrade's record is made when
the tunnel closes, with what went through it, and reaches the access log's
``websocket`` field, the call spool, the call row's ws_* columns and the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client.core import Metric
from sqlalchemy import select
from websockets.sync.client import connect

from quiver.admin.metrics import _websocket_families
from quiver.calls import CallLog, Ingester
from quiver.config.access_log import ACCESS_LOG_FIELDS, AccessLog
from quiver.config.models import CallLogSettings
from quiver.observe.metrics import MetricsOutput
from quiver.observe.writer import writer_for
from quiver.proxy.status import open_websockets
from quiver.store import open_store
from quiver.store.calltables import calls
from tests.observe.support import wait_lines
from tests.observe.test_call_spool import spooled
from tests.support.nodes import wait_until
from tests.support.proxy import RunningProxy, make_config
from tests.support.websocket import echo_server

pytestmark = pytest.mark.timeout(30)


def samples(families: list[Metric]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in families
        for sample in family.samples
    }


def test_the_tunnel_note_goes_to_the_log_the_spool_the_row_and_the_counters(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "calls"
    log_path = tmp_path / "access.log"
    fields: list[Any] = ["request_id", "status", "route", "latency_ms", "websocket"]
    metrics = MetricsOutput()
    writer = writer_for(
        AccessLog(to=str(log_path), fields=fields), CallLogSettings(), directory, metrics
    )
    assert writer is not None
    with echo_server() as echo:
        routes: list[dict[str, Any]] = [
            {
                "name": "chat",
                "paths": ["/ws"],
                "target": "chat",
                "websocket": {"message_rate": 100},
            },
            {"name": "plain", "paths": ["/plain"], "target": "chat"},
        ]
        config = make_config({"chat": echo.url}, routes)
        with RunningProxy(config, record_writer=writer) as proxy:
            with connect(f"ws://127.0.0.1:{proxy.port}/ws", compression=None) as ws:
                for text in ("one", "two", "three"):
                    ws.send(text)
                    assert ws.recv(timeout=5) == text
                assert proxy.call(open_websockets, proxy.server.state) == {"chat": 1}  # type: ignore[union-attr]
            with connect(f"ws://127.0.0.1:{proxy.port}/plain", compression=None) as ws:
                ws.send("opaque")
                assert ws.recv(timeout=5) == "opaque"
            wait_until(lambda: len(spooled(directory)) == 2, "2 calls spooled")
            lines = wait_lines(log_path, 2)
            assert proxy.call(open_websockets, proxy.server.state) == {"chat": 0, "plain": 0}  # type: ignore[union-attr]
    framed, opaque = lines
    assert (framed["status"], framed["route"]) == (101, "chat")
    note = framed["websocket"]
    assert (note["messages_in"], note["messages_out"]) == (3, 3)
    assert note["close_code"] == 1000 and note["closed_by"] == "client"
    assert note["bytes_in"] > 3 * 6 and note["bytes_out"] > 3 * 2  # frames, headers included
    assert opaque["websocket"]["messages_in"] is None
    assert opaque["websocket"]["close_code"] is None
    assert opaque["websocket"]["bytes_in"] > 0 and opaque["websocket"]["bytes_out"] > 0
    first, second = spooled(directory)
    assert list(first) == [*ACCESS_LOG_FIELDS, "websocket"]
    assert first["websocket"] == note
    assert second["websocket"] == opaque["websocket"]

    counters = metrics.snapshot()["routes"]
    assert counters["chat"]["websocket"] == {"messages": {"in": 3, "out": 3}, "closes": {"1000": 1}}
    assert "websocket" in counters["plain"]  # bytes only: no messages, no code
    assert counters["plain"]["websocket"] == {"messages": {}, "closes": {}}
    exposed = samples(
        list(
            _websocket_families(
                counters, [{"websockets": {"chat": 2}}, {"websockets": {"chat": 1}}]
            )
        )
    )
    assert exposed[("quiver_websocket_connections", ("chat",))] == 3
    assert exposed[("quiver_websocket_messages_total", ("chat", "in"))] == 3
    assert exposed[("quiver_websocket_closes_total", ("chat", "1000"))] == 1

    store = open_store(str(tmp_path / "quiver.db"))
    try:
        assert Ingester(store.engine, directory, CallLog()).run_once() == 2
        with store.engine.connect() as connection:
            rows = connection.execute(select(calls).order_by(calls.c.id)).mappings().all()
    finally:
        store.close()
    assert [
        (r["ws_messages_in"], r["ws_messages_out"], r["ws_close_code"], r["ws_closed_by"])
        for r in rows
    ] == [(3, 3, 1000, "client"), (None, None, None, "target")]  # (opaque: the TCP close)
    assert rows[0]["ws_bytes_in"] == note["bytes_in"]
    assert rows[1]["ws_bytes_out"] == opaque["websocket"]["bytes_out"]


def test_websocket_is_an_access_log_field_written_only_when_listed() -> None:
    assert "websocket" not in ACCESS_LOG_FIELDS
    assert AccessLog(to="stdout", fields=["time", "websocket"]).fields == ["time", "websocket"]


@pytest.mark.parametrize(
    ("route", "code"),
    [({"websocket": {"idle_timeout": 0.2}}, 1001), ({"websocket": {"drain_timeout": "1s"}}, None)],
)
def test_a_connection_the_gateway_ends_idle_is_noted_as_closed_by_it(
    tmp_path: Path, route: dict[str, Any], code: int | None
) -> None:
    log_path = tmp_path / "access.log"
    writer = writer_for(
        AccessLog(to=str(log_path), fields=["path", "websocket"]), CallLogSettings(), None
    )
    assert writer is not None
    with echo_server() as echo:
        config = make_config(
            {"chat": {"url": echo.url, "timeouts": {"tunnel_idle": 0.2}}},
            [{"name": "chat", "paths": ["/ws"], "target": "chat", **route}],
        )
        with (
            RunningProxy(config, record_writer=writer) as proxy,
            connect(f"ws://127.0.0.1:{proxy.port}/ws", compression=None) as ws,
        ):
            ws.send("then silence")
            assert ws.recv(timeout=5) == "then silence"
            [line] = wait_lines(log_path, 1)
    assert line["websocket"]["closed_by"] == "gateway"
    assert line["websocket"]["close_code"] == code
