"""``quiver logs``: the call log from the admin API, as a table, like ``tail``.

Calls are asked newest first (``GET /calls``) and printed oldest first, so the
newest call is the last line; ``--follow`` then asks every ``--interval`` seconds
for every call stored since the last answer (``after`` its ``tail``), page after
page, in the order they were stored: each call is printed once, however many
came meanwhile, and so is a call stored late (by another worker's spool) with an
earlier time than those shown.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quiver.declarative.client import AdminClient

_COLUMNS = ("time", "status", "method", "path", "route", "consumer", "latency", "detail")
_WIDTHS = (12, 6, 7, 32, 20, 16, 10)
#: the filters passed on to ``GET /calls`` as they are
_FILTERS = ("route", "consumer", "status", "request_id", "mcp_method", "mcp_tool", "mcp_outcome")
_PAGE = 1000  # most calls a request asks for (the API's bound)


def add_logs_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    logs = commands.add_parser(
        "logs",
        help="print the call log: recent calls through the gateway",
        description="Print calls from the admin API's call log, newest last. The token is "
        "read from $QUIVER_ADMIN_TOKEN; a team-scoped token sees its team's calls only.",
    )
    logs.add_argument("--route", metavar="R", help="calls of this route")
    logs.add_argument("--consumer", metavar="C", help="calls of this consumer")
    logs.add_argument(
        "--status", metavar="S", help="a status (404), a class (5xx) or a range (400-599)"
    )
    logs.add_argument("--request-id", metavar="ID", help="the call with this request id")
    logs.add_argument(
        "--mcp-method", metavar="M", help="MCP messages of this JSON-RPC method (tools/call)"
    )
    logs.add_argument(
        "--mcp-tool", metavar="T", help="MCP messages naming this tool, prompt or resource"
    )
    logs.add_argument(
        "--mcp-outcome",
        choices=("ok", "error", "refused", "failed"),
        help="MCP messages that ended so",
    )
    logs.add_argument("--since", metavar="AGE", help="calls newer than this (10m, 2h, 1d)")
    logs.add_argument("-n", type=int, default=50, metavar="N", help="most calls (default 50)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new calls")
    logs.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="--follow's polling period"
    )


def run_logs(args: argparse.Namespace, client: AdminClient) -> int:
    from quiver.config.units import parse_duration
    from quiver.declarative.client import AdminError

    most = max(0, min(args.n, _PAGE))
    params: dict[str, str | int] = {"limit": max(1, most)}
    for key in _FILTERS:
        if getattr(args, key) is not None:
            params[key] = getattr(args, key)
    if args.since is not None:
        try:
            age = float(parse_duration(args.since))  # type: ignore[arg-type]
        except ValueError as exc:
            print(f"quiver logs: --since: {exc}", file=sys.stderr)
            return 2
        params["from"] = (datetime.now(UTC) - timedelta(seconds=age)).isoformat()
    try:
        page = client.calls(params)
        print(render(list(reversed(page["data"][:most])), header=True), flush=True)
        if args.follow:
            tail = page["tail"]
            params["limit"] = _PAGE
            while True:
                time.sleep(args.interval)  # (a polling period, not a synchronisation)
                tail = _print_since(client, params, tail)
    except AdminError as error:
        print(f"quiver logs: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _print_since(client: AdminClient, params: dict[str, str | int], tail: str) -> str:
    """Print every call stored after ``tail``, a page at a time; the new tail."""
    while True:
        page = client.calls({**params, "after": tail})
        if page["data"]:
            print(render(page["data"], header=False), flush=True)
        tail = page["tail"]
        if len(page["data"]) < _PAGE:
            return tail


def render(calls: list[dict[str, Any]], *, header: bool) -> str:
    """The calls as aligned columns (the header only when asked)."""
    rows = [_row(call) for call in calls]
    widths = list(_WIDTHS)
    lines = []
    if header:
        lines.append(_line(list(_COLUMNS), widths))
    lines += [_line(row, widths) for row in rows]
    return "\n".join(lines)


def _row(call: dict[str, Any]) -> list[str]:
    moment = datetime.fromisoformat(call["time"])
    return [
        moment.strftime("%H:%M:%S.%f")[:12],
        str(call["status"]),
        call["method"],
        call["path"],
        call["route"] or "-",
        call["consumer"] or "-",
        f"{call['latency_ms']:.1f} ms",
        _websocket(call) if call["status"] == 101 else _mcp(call),
    ]


def _mcp(call: dict[str, Any]) -> str:
    """An MCP message's method, what it named and its outcome (empty for other calls)."""
    parts = (call.get("mcp_method"), call.get("mcp_tool"), call.get("mcp_outcome"))
    return " ".join(part for part in parts if part)


def _websocket(call: dict[str, Any]) -> str:
    """A WebSocket connection: ``ws msgs 3/3 bytes 120/98 close 1000 by client``, each
    pair in (from the client), then out; messages and code only when frames were read."""
    parts = ["ws"]
    messages = (call.get("ws_messages_in"), call.get("ws_messages_out"))
    if messages != (None, None):
        parts.append("msgs " + "/".join(_count(n) for n in messages))
    sizes = (call.get("ws_bytes_in"), call.get("ws_bytes_out"))
    if sizes != (None, None):
        parts.append("bytes " + "/".join(_count(n) for n in sizes))
    if call.get("ws_close_code") is not None:
        parts.append(f"close {call['ws_close_code']}")
    if call.get("ws_closed_by"):
        parts.append(f"by {call['ws_closed_by']}")
    return " ".join(parts) if len(parts) > 1 else ""


def _count(number: int | None) -> str:
    return "-" if number is None else str(number)


def _line(cells: list[str], widths: list[int]) -> str:
    padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
    return " ".join([*padded, cells[-1]]).rstrip()
