"""WebSocket connections read back from the call log: ``GET /calls``, one call, CSV and
``quiver logs`` carry what went through the tunnel (null for any other call)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from quiver.calls import CallLog, Ingester
from quiver.calls.records import parse
from quiver.config.models import CallLogSettings
from quiver.observe.writer import writer_for
from quiver.store import Store
from quiver.store.tokens import create_token
from tests.calls.synthetic import records
from tests.observe.test_call_spool import spooled
from tests.support.nodes import wait_until
from tests.support.process import QUIVER, _environment
from tests.support.proxy import RunningProxy, make_config
from tests.support.websocket import echo_server

pytestmark = pytest.mark.timeout(60)

WS_FIELDS = (
    "ws_messages_in",
    "ws_messages_out",
    "ws_bytes_in",
    "ws_bytes_out",
    "ws_close_code",
    "ws_closed_by",
)


@pytest.fixture
def tunnels(store: Store, tmp_path: Path) -> list[dict[str, Any]]:
    """Two WebSocket connections through the proxy (one whose frames are read, one
    opaque) and one plain call, ingested; the spooled records of the connections."""
    directory = tmp_path / "calls"
    writer = writer_for(None, CallLogSettings(), directory)
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
        with RunningProxy(make_config({"chat": echo.url}, routes), record_writer=writer) as proxy:
            with connect(f"ws://127.0.0.1:{proxy.port}/ws", compression=None) as ws:
                for text in ("one", "two", "three"):
                    ws.send(text)
                    assert ws.recv(timeout=5) == text
            with connect(f"ws://127.0.0.1:{proxy.port}/plain", compression=None) as ws:
                ws.send("opaque")
                assert ws.recv(timeout=5) == "opaque"
            wait_until(lambda: len(spooled(directory)) == 2, "2 calls spooled")
    spool = spooled(directory)
    ingester = Ingester(store.engine, directory, CallLog())
    assert ingester.run_once() == 2
    plain = records(1, int(time.time() * 1000) - 60_000, 1000)
    ingester.insert([parse(json.dumps(item).encode()) for item in plain])
    return spool


def test_calls_of_status_101_carry_the_tunnels_counts(
    admin: httpx.Client, tunnels: list[dict[str, Any]]
) -> None:
    framed, opaque = tunnels
    page = admin.get("/calls", params={"status": "101"})
    assert page.status_code == 200, page.text
    by_route = {call["route"]: call for call in page.json()["data"]}
    assert set(by_route) == {"chat", "plain"}
    chat, plain = by_route["chat"], by_route["plain"]
    note = framed["websocket"]
    assert {name: chat[name] for name in WS_FIELDS} == {
        "ws_messages_in": 3,
        "ws_messages_out": 3,
        "ws_bytes_in": note["bytes_in"],
        "ws_bytes_out": note["bytes_out"],
        "ws_close_code": 1000,
        "ws_closed_by": "client",
    }
    assert (plain["ws_messages_in"], plain["ws_close_code"]) == (None, None)  # not read
    assert plain["ws_bytes_in"] == opaque["websocket"]["bytes_in"] > 0
    assert plain["ws_closed_by"] == "target"
    one = admin.get(f"/calls/{chat['request_id']}").json()
    assert {name: one[name] for name in WS_FIELDS} == {name: chat[name] for name in WS_FIELDS}
    other = admin.get("/calls", params={"status": "200-599"}).json()["data"]
    assert other and all(call[name] is None for call in other for name in WS_FIELDS)


def test_the_csv_of_the_calls_has_the_websocket_columns(
    admin: httpx.Client, tunnels: list[dict[str, Any]]
) -> None:
    answer = admin.get("/calls", params={"format": "csv"})
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 3
    chat = next(row for row in rows if row["route"] == "chat")
    assert (chat["ws_messages_in"], chat["ws_close_code"], chat["ws_closed_by"]) == (
        "3",
        "1000",
        "client",
    )
    other = next(row for row in rows if row["status"] != "101")
    assert all(other[name] == "" for name in WS_FIELDS)


def test_the_openapi_document_describes_the_websocket_members(
    admin: httpx.Client,
) -> None:
    schema = admin.get("/openapi.json").json()["components"]["schemas"]["CallDoc"]
    assert set(WS_FIELDS) <= set(schema["properties"])


def test_quiver_logs_shows_a_connection_compactly(
    store: Store, base_url: str, tunnels: list[dict[str, Any]]
) -> None:
    framed, opaque = tunnels
    _, token = create_token(store, "logs", "viewer", None)
    done = subprocess.run(
        [*QUIVER, "logs", "--admin", base_url, "--status", "101"],
        env=_environment({"QUIVER_ADMIN_TOKEN": token}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.split()[-1] == "detail"
    shown = {line.split()[4]: line[header.index("detail") :] for line in lines}
    note, bare = framed["websocket"], opaque["websocket"]
    assert shown == {
        "chat": f"ws msgs 3/3 bytes {note['bytes_in']}/{note['bytes_out']} close 1000 by client",
        "plain": f"ws bytes {bare['bytes_in']}/{bare['bytes_out']} by target",
    }
