"""``/calls`` filtered by MCP method, tool and outcome, with the columns in the
page, its CSV and the OpenAPI document."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import httpx

from quiver.calls import Ingester
from quiver.store import Store
from tests.calls.synthetic import records, write_spools
from tests.calls.test_mcp_calls import with_mcp


def _ingested(store: Store, tmp_path: Path) -> list[dict[str, Any]]:
    now = int(time.time() * 1000)
    items = with_mcp(records(200, now - 600_000, 600_000))
    write_spools(tmp_path / "calls", items, per_file=100)
    assert Ingester(store.engine, tmp_path / "calls").run_once() == 200
    return items


def test_calls_filter_on_mcp_tool_method_and_outcome(
    admin: httpx.Client, store: Store, tmp_path: Path
) -> None:
    items = _ingested(store, tmp_path)
    page = admin.get("/calls", params={"mcp_tool": "getNote", "limit": 1000}).json()
    wanted = [i for i in items if i.get("mcp", {}).get("tool") == "getNote"]
    assert {c["request_id"] for c in page["data"]} == {i["request_id"] for i in wanted}
    assert {(c["mcp_method"], c["mcp_tool"]) for c in page["data"]} == {("tools/call", "getNote")}
    assert {c["mcp_outcome"] for c in page["data"]} == {"ok", "error"}
    failed = admin.get("/calls", params={"mcp_method": "tools/call", "mcp_outcome": "failed"})
    assert {c["mcp_tool"] for c in failed.json()["data"]} == {"addNote"}
    plain = next(i for i in items if "mcp" not in i)
    one = admin.get(f"/calls/{plain['request_id']}").json()
    assert (one["mcp_method"], one["mcp_tool"], one["mcp_outcome"]) == (None, None, None)
    listed = admin.get("/calls", params={"mcp_tool": "summary", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(listed.text)))
    assert [(r["mcp_method"], r["mcp_tool"]) for r in rows] == [("prompts/get", "summary")] * len(
        [i for i in items if i.get("mcp", {}).get("prompt") == "summary"]
    )


def test_a_bad_outcome_is_a_problem(admin: httpx.Client) -> None:
    answer = admin.get("/calls", params={"mcp_outcome": "maybe"})
    assert answer.status_code == 422  # (the admin API's answer to any invalid parameter)
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_filters_are_in_the_openapi_document(anonymous: httpx.Client) -> None:
    document = anonymous.get("/openapi.json").json()
    parameters = {p["name"]: p for p in document["paths"]["/calls"]["get"]["parameters"]}
    for name in ("mcp_method", "mcp_tool", "mcp_outcome"):
        assert parameters[name]["in"] == "query" and parameters[name]["description"]
    assert set(document["components"]["schemas"]["CallDoc"]["properties"]) >= {
        "mcp_method",
        "mcp_tool",
        "mcp_outcome",
    }
