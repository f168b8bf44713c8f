"""The console's recent errors (``/console/errors``) and the call log's record of one
call (``/console/calls/{request_id}``).

Both read the call log through the functions behind the admin API's ``/calls`` and
``/calls/{request_id}``, scoped as the overview's traffic is
(:mod:`quiver.web.console_scope`).  The errors are the calls answered 4xx or 5xx
(or one class of them, ``?status=4xx``), newest first, a page at a time with the
call list's cursor: calls logged meanwhile never shift one into two pages.  A call
of a team the person may not see is "not found", like one that is not logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from quiver.admin import analytics
from quiver.admin.problems import ApiProblem
from quiver.web.console_nav import NAV
from quiver.web.console_scope import team_scope
from quiver.web.errors import PageNotFound, PageRoute, page_error
from quiver.web.identity import ConsoleUser, SignedIn
from quiver.web.pages import render
from quiver.web.paging import PAGE_SIZE

#: included in the console's router, under ``/console``
router = APIRouter(route_class=PageRoute, include_in_schema=False)

ErrorClass = Literal["all", "4xx", "5xx"]
#: each choice of the errors page: the call list's ``status``, and its label
ERROR_CLASSES: dict[ErrorClass, tuple[str, str]] = {
    "all": ("400-599", "4xx and 5xx"),
    "4xx": ("4xx", "4xx (refused)"),
    "5xx": ("5xx", "5xx (failed)"),
}


@dataclass(frozen=True)
class Fact:
    """One line of a call's record: a label and its value as shown."""

    label: str
    value: str
    code: bool = False  # shown as code (a name, a path, an address)


@router.get("/errors")
def errors_page(
    request: Request,
    who: ConsoleUser,
    team: str = "",
    status: ErrorClass = "all",
    cursor: str = "",
    page: int = 1,
) -> Response:
    scope = team_scope(who, team)
    try:
        listed = analytics.get_calls(
            request,
            scope.team,
            status=ERROR_CLASSES[status][0],
            limit=PAGE_SIZE,
            cursor=cursor or None,
            format="json",
        )
    except ApiProblem as problem:
        raise page_error(problem) from None
    number = max(page, 1) if cursor else 1
    return render(
        request,
        "console",
        "console/errors.html",
        title="Recent errors",
        who=who,
        nav=NAV,
        scope=scope,
        chosen=status,
        classes={name: label for name, (_, label) in ERROR_CLASSES.items()},
        calls=listed["data"],
        number=number,
        following=listed["next"],
        query=scope.query(status="" if status == "all" else status),
    )


@router.get("/calls/{request_id:path}")
def call_page(request: Request, who: ConsoleUser, request_id: str) -> Response:
    call = visible_call(request, who, request_id)
    return render(
        request,
        "console",
        "console/call.html",
        title=f"Call {request_id}",
        who=who,
        nav=NAV,
        call=call,
        exchange=call_facts(call),
        mcp=mcp_facts(call),
        ai=ai_facts(call["ai"]),
    )


def visible_call(request: Request, who: SignedIn, request_id: str) -> dict[str, Any]:
    """The call's record, when it is one of the teams ``who`` may see (else 404)."""
    everything = who.everywhere is not None
    teams: list[str | None] = [None] if everything else [n for n, _ in who.team_roles()]
    for team in teams:
        try:
            return analytics.get_call(request, team, request_id)
        except ApiProblem as problem:
            if problem.status != 404:
                raise page_error(problem) from None
    raise PageNotFound(f"There is no call {request_id!r} in the call log.")


def call_facts(call: dict[str, Any]) -> list[Fact]:
    """What the call log keeps of every call, in the order one reads it."""
    return [
        Fact("Time", when(call["time"])),
        Fact("Status", str(call["status"])),
        Fact("Method", call["method"], code=True),
        Fact("Path", call["path"], code=True),
        Fact("Route", shown(call["route"]), code=True),
        Fact("Target", shown(call["target"]), code=True),
        Fact("Node", shown(call["node"]), code=True),
        Fact("Consumer", shown(call["consumer"], "(anonymous)"), code=True),
        Fact("Client address", shown(call["client_ip"]), code=True),
        Fact("User agent", shown(call["user_agent"])),
        Fact("Latency", millis(call["latency_ms"])),
        Fact("Upstream", millis(call["upstream_ms"])),
        Fact("Gateway", millis(call["gateway_ms"])),
        Fact("Bytes in", f"{call['bytes_in']:,}"),
        Fact("Bytes out", f"{call['bytes_out']:,}"),
        Fact("Retries", str(call["retries"])),
        Fact("Cache", shown(call["cache"])),
        Fact("Answered by", shown(call["answered_by"])),
    ]


def mcp_facts(call: dict[str, Any]) -> list[Fact]:
    """An MCP message's method, tool and outcome; none for another call."""
    if call.get("mcp_method") is None:
        return []
    return [
        Fact("MCP method", call["mcp_method"], code=True),
        Fact("Tool, prompt or resource", shown(call.get("mcp_tool")), code=True),
        Fact("Outcome", shown(call.get("mcp_outcome"), "(a notification)")),
    ]


def ai_facts(spent: dict[str, Any] | None) -> list[Fact]:
    """What a call to a model spent; none for another call."""
    if spent is None:
        return []
    return [
        Fact("Model", shown(spent["model"]), code=True),
        Fact("Provider", shown(spent["provider"]), code=True),
        Fact("Deployment", shown(spent["deployment"]), code=True),
        Fact("Team", shown(spent["team"]), code=True),
        Fact("Prompt tokens", f"{spent['prompt_tokens']:,}"),
        Fact("Completion tokens", f"{spent['completion_tokens']:,}"),
        Fact("Total tokens", f"{spent['total_tokens']:,}"),
        Fact("Cost", usd(spent["cost"])),
        Fact("Time to first token", millis(spent["ttft_ms"])),
    ]


def when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def shown(value: str | None, missing: str = "—") -> str:
    return missing if value is None or value == "" else value


def millis(value: float | None) -> str:
    """Milliseconds to the microsecond the call log keeps, without trailing zeros."""
    return "—" if value is None else f"{value:,.3f}".rstrip("0").rstrip(".") + " ms"


def usd(cost: float) -> str:
    """US dollars, to the cent above a dollar and to a hundredth of a cent below."""
    return f"${cost:,.2f}" if cost >= 1 else f"${cost:.4f}"
