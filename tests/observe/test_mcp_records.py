"""MCP messages in the exchange record: from what the endpoint leaves in
``request.ctx["mcp"]`` to the access log's ``mcp`` field, the call spool's ``"mcp"``
member, the call row's columns and the request counters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from quiver.calls import CallLog, Ingester
from quiver.config.access_log import ACCESS_LOG_FIELDS, AccessLog
from quiver.config.models import CallLogSettings
from quiver.observe.call_spool import _with_extras
from quiver.observe.formats import formatter
from quiver.observe.mcp_note import MAX_TEXT, compact, mcp_document
from quiver.observe.metrics import MetricsOutput
from quiver.observe.record import ExchangeRecord
from quiver.observe.writer import writer_for
from quiver.plugins.base import PluginRequest
from quiver.plugins.responder import Response, TargetOptions, TargetType
from quiver.store import open_store
from quiver.store.calltables import calls
from tests.observe.support import wait_lines
from tests.observe.test_call_spool import spooled
from tests.support.catalog import built_in
from tests.support.nodes import wait_until
from tests.support.proxy import Client, RunningProxy

pytestmark = pytest.mark.timeout(30)

NOTE = {
    "method": "tools/call",
    "tool": "getNote",
    "outcome": "ok",
    "ms": 4.2104,
    "status": 200,
    "server": "notes",
}


class NotingOptions(TargetOptions):
    pass


class Noting(TargetType[NotingOptions]):
    """Stands for an MCP endpoint: leaves the request body's note in ``ctx["mcp"]``
    (nothing for an empty body)."""

    name = "noting"
    Options = NotingOptions

    def handle(self, request: PluginRequest) -> Response:
        if request.body:
            request.ctx["mcp"] = orjson.loads(request.body)
        return Response(200, [(b"Content-Type", b"application/json")], b"{}")


def record(mcp: dict[str, Any] | None) -> ExchangeRecord:
    return ExchangeRecord(
        1_700_000_000.0, b"rid", b"127.0.0.1", b"POST", b"/mcp", 200, "notes", "notes",
        None, "alice", 10, 20, 5.0, None, 0, None, None, None, None, None, None, mcp,
    )  # fmt: skip


def test_the_note_goes_to_the_log_the_spool_the_row_and_the_counters(tmp_path: Path) -> None:
    directory = tmp_path / "calls"
    log_path = tmp_path / "access.log"
    access_log = AccessLog(to=str(log_path), fields=["request_id", "status", "mcp"])
    metrics = MetricsOutput()
    writer = writer_for(access_log, CallLogSettings(), directory, metrics)
    assert writer is not None
    config = {
        "listen": "127.0.0.1:0",
        "targets": [{"name": "notes", "type": "noting"}],
        "routes": [{"name": "notes", "paths": ["/mcp"], "target": "notes"}],
    }
    catalog = built_in().with_target_types(Noting)
    text = json.dumps(config)
    with (
        RunningProxy(text, catalog=catalog, record_writer=writer) as proxy,
        Client(proxy.port) as client,
    ):
        called = client.request("POST", "/mcp", body=orjson.dumps({**NOTE, "extra": "x"}))
        plain = client.request("POST", "/mcp")
        assert (called.status, plain.status) == (200, 200)
        wait_until(lambda: len(spooled(directory)) == 2, "2 calls spooled")
        lines = wait_lines(log_path, 2)
    mcp_line, plain_line = lines
    expected = {key: value for key, value in NOTE.items() if key != "ms"} | {"ms": 4.21}
    assert mcp_line == {"request_id": called.header("x-request-id"), "status": 200, "mcp": expected}
    assert plain_line["mcp"] is None
    first, second = spooled(directory)
    assert list(first) == [*ACCESS_LOG_FIELDS, "mcp"] and first["mcp"] == expected
    assert list(second) == list(ACCESS_LOG_FIELDS)  # (no member for other calls)
    counters = metrics.snapshot()["mcp"]
    assert counters["messages"] == {"notes\ttools/call\tok": 1}
    assert counters["tool_calls"] == {"notes\tgetNote\t\tok": 1}

    store = open_store(str(tmp_path / "quiver.db"))
    try:
        assert Ingester(store.engine, directory, CallLog()).run_once() == 2
        with store.engine.connect() as connection:
            rows = connection.execute(select(calls).order_by(calls.c.id)).mappings().all()
    finally:
        store.close()
    assert [(r["mcp_method"], r["mcp_tool"], r["mcp_outcome"]) for r in rows] == [
        ("tools/call", "getNote", "ok"),
        (None, None, None),
    ]


def test_mcp_is_an_access_log_field_written_only_when_listed() -> None:
    assert "mcp" not in ACCESS_LOG_FIELDS
    assert "mcp" not in AccessLog(to="stdout").fields
    assert AccessLog(to="stdout", fields=["time", "mcp"]).fields == ["time", "mcp"]


def test_the_json_line_carries_the_known_members() -> None:
    line = formatter("json", ["status", "mcp"])
    assert orjson.loads(line(record(NOTE))) == {"status": 200, "mcp": {**NOTE, "ms": 4.21}}
    assert orjson.loads(line(record(None))) == {"status": 200, "mcp": None}
    odd = {"method": "tools/call", "tool": 7, "outcome": "ok", "ms": True, "secret": "s"}
    assert orjson.loads(line(record(odd)))["mcp"] == {"method": "tools/call", "outcome": "ok"}


@pytest.mark.parametrize(
    ("note", "shown"),
    [
        (NOTE, "mcp=tools/call:getNote:ok:4.21ms"),
        ({"method": "prompts/get", "prompt": "summary", "outcome": "refused"},
         "mcp=prompts/get:summary:refused:-"),
        ({"method": "resources/read", "resource": "note://1", "outcome": "ok", "ms": 1},
         "mcp=resources/read:note://1:ok:1ms"),
        ({"method": "notifications/initialized", "ms": 0.05},
         "mcp=notifications/initialized:-:-:0.05ms"),
        ({"outcome": "refused"}, "mcp=-:-:refused:-"),
        (None, "mcp=-"),
    ],
)  # fmt: skip
def test_the_text_line_is_compact(note: dict[str, Any] | None, shown: str) -> None:
    line = formatter("text", ["status", "mcp"])(record(note)).decode()
    assert line == f"200 {shown}\n"


def test_a_tool_name_with_spaces_is_quoted_in_text() -> None:
    line = formatter("text", ["mcp"])(record({"method": "tools/call", "tool": "a b"})).decode()
    assert line == 'mcp="tools/call:a b:-:-"\n'
    assert compact({"method": "tools/call", "tool": "a b"}) == "tools/call:a b:-:-"


def test_texts_are_cut_and_unknown_members_dropped() -> None:
    document = mcp_document({"method": "tools/call", "tool": "x" * 1000, "status": 99, "y": 1})
    assert document == {"method": "tools/call", "tool": "x" * MAX_TEXT}


def test_the_spool_line_gets_the_member_after_the_fields() -> None:
    line = formatter("json", ACCESS_LOG_FIELDS)(record(NOTE))
    spooled_line = orjson.loads(_with_extras(line, record(NOTE)))
    assert spooled_line["mcp"] == {**NOTE, "ms": 4.21}
    assert _with_extras(line, record(None)) == line
