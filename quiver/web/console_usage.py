"""The console's top consumers (``/console/consumers``) and AI spend
(``/console/spend``) over a window: the last hour, 24 hours (the default) or 7 days.

The numbers come from the functions behind the admin API's ``/analytics/top``,
``/analytics/ai/spend`` and ``/analytics/ai/top``, scoped as the overview's traffic
is (:mod:`quiver.web.console_scope`).  Each table lists up to :data:`MOST` rows, a
page at a time; each bar chart draws the first :data:`BARS` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from quiver.admin import ai_analytics, analytics
from quiver.calls.spend_queries import SpendDimension
from quiver.web.charts import Bar, Unit, bar_chart, line_chart
from quiver.web.console_nav import NAV
from quiver.web.console_scope import team_scope
from quiver.web.errors import PageRoute
from quiver.web.identity import ConsoleUser
from quiver.web.pages import render
from quiver.web.paging import Page
from quiver.web.series import analytics_series
from quiver.web.windows import WINDOWS, Window

#: included in the console's router, under ``/console``
router = APIRouter(route_class=PageRoute, include_in_schema=False)

MOST = 1000  # rows a table lists at most (the most the analytics API answers)
BARS = 10  # bars a chart draws at most


@dataclass(frozen=True)
class SpendTable:
    """One grouping of the AI spend: its rows, a page at a time, and its chart."""

    key: str  # its page parameter is ``{key}_page``
    title: str
    column: str  # the header of the names' column
    unnamed: str  # shown for a name the spend rows do not know
    rows: Page[dict[str, Any]]
    chart: str
    query: str  # the page's query but this table's page (the others' kept)


#: the spend page's groupings: the analytics' dimension, key, title, column, unnamed
_SPEND: tuple[tuple[SpendDimension, str, str, str, str], ...] = (
    ("teams", "teams", "Spend per team", "Team", "(no team)"),
    ("consumers", "keys", "Spend per key", "Key (consumer)", "(anonymous)"),
    ("models", "models", "Spend per model", "Model", "(unknown)"),
)


@router.get("/consumers")
def consumers_page(
    request: Request, who: ConsoleUser, team: str = "", window: Window = "24h", page: int = 1
) -> Response:
    scope = team_scope(who, team)
    start = WINDOWS[window].start()
    found = analytics.get_top(request, scope.team, "consumers", MOST, start, None)["data"]
    chart = bars(
        found,
        "requests",
        "(anonymous)",
        title="Top consumers by requests",
        ident="console-consumers",
    )
    return render(
        request,
        "console",
        "console/consumers.html",
        title="Top consumers",
        who=who,
        nav=NAV,
        scope=scope,
        window=window,
        windows={name: span.title for name, span in WINDOWS.items()},
        consumers=Page.of(found, page),
        chart=chart,
        query=scope.query(window=window),
    )


@router.get("/spend")
def spend_page(
    request: Request,
    who: ConsoleUser,
    team: str = "",
    window: Window = "24h",
    teams_page: int = 1,
    keys_page: int = 1,
    models_page: int = 1,
) -> Response:
    scope = team_scope(who, team)
    start = WINDOWS[window].start()
    bucket = WINDOWS[window].bucket
    spend = ai_analytics.get_spend(request, scope.team, start, None, bucket, None, "json")
    numbers = {"teams": teams_page, "keys": keys_page, "models": models_page}
    tables = []
    for dimension, key, title, column, unnamed in _SPEND:
        found = ai_analytics.get_spend_top(request, scope.team, dimension, "cost", MOST, start)
        chart = bars(
            found["data"], "cost", unnamed, title=title, ident=f"console-spend-{key}", unit="usd"
        )
        rows = Page.of(found["data"], numbers[key])
        others = {f"{k}_page": str(n) for k, n in numbers.items() if k != key and n > 1}
        query = scope.query(window=window, **others)
        tables.append(SpendTable(key, title, column, unnamed, rows, chart, query))
    return render(
        request,
        "console",
        "console/spend.html",
        title="AI spend",
        who=who,
        nav=NAV,
        scope=scope,
        window=window,
        windows={name: span.title for name, span in WINDOWS.items()},
        totals=totals(spend["data"]),
        cost_chart=line_chart(
            analytics_series(spend, ("cost",)),
            title=f"Cost per {bucket}",
            unit="usd",
            ident="console-spend-cost",
        ),
        bucket=bucket,
        tables=tables,
    )


def bars(
    rows: Sequence[dict[str, Any]],
    field: str,
    unnamed: str,
    *,
    title: str,
    ident: str,
    unit: Unit = "count",
) -> str:
    """A bar chart of ``field`` of the first :data:`BARS` rows (largest first)."""
    drawn = [Bar(row["name"] or unnamed, row[field]) for row in rows[:BARS]]
    return bar_chart(drawn, title=title, ident=ident, unit=unit)


def totals(points: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The window's AI calls, tokens and cost: the sums of its series' points."""
    fields = ("calls", "prompt_tokens", "completion_tokens", "total_tokens", "cost")
    return {field: sum(point[field] for point in points) for field in fields}
