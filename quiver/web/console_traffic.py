"""The console overview's traffic: the last hour's requests and errors per minute,
latency percentiles and top consumers, drawn as SVG on the server.

The numbers come from the functions behind the admin API's ``/analytics/requests``
and ``/analytics/top``, scoped as a token would be: a person who sees every team
sees every call (or one team's, chosen with ``?team=``); anybody else sees one of
their teams' calls at a time (their first, or the one chosen).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from quiver.admin import analytics
from quiver.web.charts import Bar, bar_chart, line_chart
from quiver.web.console_scope import team_scope
from quiver.web.identity import SignedIn
from quiver.web.series import analytics_series

TOP_CONSUMERS = 8


@dataclass(frozen=True)
class Traffic:
    """What the overview shows; the charts are SVG markup (escaped where made)."""

    team: str | None  # None: every team's calls
    teams: list[str]  # what the person may narrow it to
    everything: bool  # whether they may see every team's calls at once
    calls: int
    errors: int
    requests_chart: str
    latency_chart: str
    consumers_chart: str


def traffic(request: Request, who: SignedIn, team: str) -> Traffic:
    scope = team_scope(who, team)
    chosen = scope.team
    answer = analytics.get_series(request, chosen, None, None, "minute", None, "json")
    top = analytics.get_top(request, chosen, "consumers", TOP_CONSUMERS, None, None)
    calls = sum(point["requests"] for point in answer["data"])
    errors = sum(point["errors"] for point in answer["data"])
    bars = [Bar(item["name"] or "(anonymous)", item["requests"]) for item in top["data"]]
    return Traffic(
        team=chosen,
        teams=scope.teams,
        everything=scope.everything,
        calls=calls,
        errors=errors,
        requests_chart=line_chart(
            analytics_series(answer, ("requests", "errors")),
            title="Requests and errors per minute",
            ident="console-requests",
        ),
        latency_chart=line_chart(
            analytics_series(answer, ("p50_ms", "p95_ms", "p99_ms")),
            title="Latency per minute",
            unit="ms",
            ident="console-latency",
        ),
        consumers_chart=bar_chart(bars, title="Top consumers by requests", ident="console-top"),
    )
