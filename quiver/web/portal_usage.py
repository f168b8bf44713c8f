"""An app's usage, on its page (``/portal/apps/NAME?window=1h|24h|7d``): its requests
and errors per interval, its latency percentiles, its totals and what its AI calls
spent, drawn as SVG on the server.

The numbers come from the functions behind the admin API's ``/analytics/requests``
and ``/analytics/ai/spend``, narrowed to the consumer the app is, named as the data
plane names it (``team.app``; ``app`` in the ``default`` team), within what its
team sees, which holds the app's calls to other teams' APIs too.  Nobody else's
calls are read.  The window ends at the end of the current interval, so that its
intervals are whole minutes (or hours), as the rollups count them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request

from quiver.admin import ai_analytics, analytics
from quiver.store.merged import qualified
from quiver.web.charts import line_chart
from quiver.web.series import BUCKET_SECONDS, analytics_series
from quiver.web.windows import WINDOWS, Window, WindowSpan


@dataclass(frozen=True)
class Spent:
    calls: int
    tokens: int
    cost: float  # US dollars


@dataclass(frozen=True)
class Usage:
    """What the app's page shows of its calls; the charts are SVG markup."""

    window: str
    span: WindowSpan
    calls: int
    errors: int
    requests_chart: str
    latency_chart: str
    spent: Spent | None  # None: no AI call in the window

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


def usage(request: Request, team: str, app: str, window: Window) -> Usage:
    """The usage of ``team``'s app ``app`` in ``window`` (checked by the caller: the
    person may see ``team``, which has the app)."""
    span = WINDOWS[window]
    step = BUCKET_SECONDS[span.bucket]
    end = datetime.fromtimestamp((time.time() // step + 1) * step, UTC)
    start = end - timedelta(seconds=span.seconds)
    consumer = qualified(team, app)
    answer = analytics.get_series(
        request, team, start, end, span.bucket, None, None, consumer=consumer
    )
    spend = ai_analytics.get_spend(
        request, team, start, end, span.bucket, None, None, consumer=consumer
    )
    per = span.bucket
    return Usage(
        window=window,
        span=span,
        calls=_sum(answer, "requests"),
        errors=_sum(answer, "errors"),
        requests_chart=line_chart(
            analytics_series(answer, ("requests", "errors")),
            title=f"Requests and errors per {per}",
            ident="app-requests",
        ),
        latency_chart=line_chart(
            analytics_series(answer, ("p50_ms", "p95_ms", "p99_ms")),
            title=f"Latency per {per}",
            unit="ms",
            ident="app-latency",
        ),
        spent=_spent(spend),
    )


def _sum(answer: dict[str, Any], field: str) -> int:
    return sum(int(point[field]) for point in answer["data"])


def _spent(answer: dict[str, Any]) -> Spent | None:
    calls = _sum(answer, "calls")
    if not calls:
        return None
    cost = sum(float(point["cost"]) for point in answer["data"])
    return Spent(calls, _sum(answer, "total_tokens"), cost)
