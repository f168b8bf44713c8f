"""``quiver logs``: the MCP filters go to ``GET /calls`` as they are, and an MCP
message's method, tool and outcome are its last column."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from quiver.declarative.logs import add_logs_command, render, run_logs

CALL = {
    "time": "2026-12-06T10:00:00.123000+00:00",
    "status": 200,
    "method": "POST",
    "path": "/mcp",
    "route": "notes",
    "consumer": "alice",
    "latency_ms": 4.5,
    "request_id": "r1",
}


class Recording:
    """An admin client that answers one page and keeps the queries asked."""

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self.pages = [calls]
        self.queries: list[dict[str, str | int]] = []

    def calls(self, query: dict[str, str | int]) -> dict[str, Any]:
        self.queries.append(dict(query))
        return {"data": self.pages[0], "next": None}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_logs_command(parser.add_subparsers())
    return parser.parse_args(["logs", *argv])


def test_mcp_filters_are_passed_on(capsys: pytest.CaptureFixture[str]) -> None:
    client = Recording([])
    args = parse("--mcp-tool", "getNote", "--mcp-method", "tools/call", "--mcp-outcome", "error")
    assert run_logs(args, client) == 0  # type: ignore[arg-type]
    assert client.queries == [
        {"limit": 50, "mcp_method": "tools/call", "mcp_tool": "getNote", "mcp_outcome": "error"}
    ]


def test_a_bad_outcome_is_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        parse("--mcp-outcome", "maybe")


def test_the_mcp_column_shows_method_tool_and_outcome() -> None:
    mcp = {"mcp_method": "tools/call", "mcp_tool": "getNote", "mcp_outcome": "ok"}
    lines = render([CALL, {**CALL, **mcp}], header=True).splitlines()
    assert lines[0].split() == [
        "time", "status", "method", "path", "route", "consumer", "latency", "detail"
    ]  # fmt: skip
    assert lines[1].endswith("4.5 ms")  # (nothing for a call that is not MCP)
    assert lines[2].endswith("4.5 ms     tools/call getNote ok")
    assert lines[2].index("tools/call") == lines[0].index("detail")
